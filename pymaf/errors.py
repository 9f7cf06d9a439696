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


__all__ = ["PymafError", "ConfigError", "DataError", "BodyModelError", "CheckpointError", "InputError",
           "RunError"]
