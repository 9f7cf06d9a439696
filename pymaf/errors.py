"""The project's error hierarchy (DESIGN rule 11).

Library code raises one of these with a message that names the file / key / field, what was found and what
was expected; it never prints and exits. The entry points (``train.py``, ``eval.py``, ``demo.py``,
``scripts/*.py``) turn a :class:`PymafError` into one line ``error: ...`` on stderr and exit code 2
(the traceback only with ``--debug``). Any other exception is a bug and keeps its traceback.

The classes also derive from the built-in exception a caller would naturally catch (``ValueError`` for bad
content, ``OSError`` for files that cannot be read or written), so ``except ValueError`` keeps working.
"""
from __future__ import annotations


class PymafError(Exception):
    """Base of every error the project raises about its inputs (config, data, body model, checkpoint, files)."""


class ConfigError(PymafError, ValueError):
    """A config file or override has an unknown key, a value of the wrong type or out of range."""


class DataError(PymafError, ValueError):
    """A dataset file, image or annotation that is missing, unreadable or malformed."""


class BodyModelError(PymafError, ValueError):
    """An SMPL / body-model file that is missing, unreadable or malformed."""


class CheckpointError(PymafError, ValueError):
    """A checkpoint that cannot be read, is not trusted, or does not match the model."""


class InputError(PymafError, ValueError):
    """A user-given input (image, video, box file, command-line value) that cannot be used."""


class RunError(PymafError, RuntimeError):
    """A run that cannot start or go on as asked (log dir holds another run, changed settings on resume,
    a non-finite loss, an output that cannot be written)."""


class MissingFileError(PymafError, FileNotFoundError):
    """A file or folder the project needs does not exist (the message names it and where to get it)."""


class ImageError(DataError, FileNotFoundError):
    """An image that is missing, empty, truncated or cannot be decoded (also a FileNotFoundError: code that
    caught the missing-image case keeps catching every unusable image)."""


class WriteError(RunError, OSError):
    """An output (checkpoint, log, overlay) that cannot be written: read-only folder, full disk, ..."""


def write_error(path: object, err: BaseException, need: str = "") -> WriteError:
    """A :class:`WriteError` for ``err`` raised while writing ``path``: says read-only / no space left / ...
    in words, with ``need`` (e.g. "a checkpoint needs ~540 MB") appended when the disk is full."""
    import errno
    reason = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
              errno.EPERM: "permission denied", errno.ENOSPC: "no space left on device",
              errno.EDQUOT: "disk quota exceeded", errno.ENOENT: "folder does not exist",
              errno.ENOTDIR: "a parent of it is a file, not a folder"}.get(
        getattr(err, "errno", None) or _errno_in_text(str(err)), None)
    text = reason or (getattr(err, "strerror", None) or str(err))
    full = reason in ("no space left on device", "disk quota exceeded")
    if need and full:
        text += f" ({need})"
    return WriteError(f"cannot write {path}: {text}; " + ("free space or choose another folder" if full else
                                                          "choose another folder"))


def _errno_in_text(text: str) -> int | None:
    """torch.save wraps the OS error in a RuntimeError whose text holds 'errno 28' (inline_container.cc)."""
    import re
    m = re.search(r"errno[ =:]*(\d+)", text, flags=re.IGNORECASE)
    return int(m.group(1)) if m else None


__all__ = ["PymafError", "ConfigError", "DataError", "BodyModelError", "CheckpointError", "InputError",
           "RunError", "MissingFileError", "ImageError", "WriteError", "write_error"]
