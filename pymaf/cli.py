"""The one error convention of every entry point (``train.py``, ``eval.py``, ``demo.py``, ``scripts/*.py``).

A project error (:class:`pymaf.errors.PymafError`: config, data, body model, checkpoint, input files, a run
that cannot go on) becomes one line on stderr and exit code 2::

    error: <what is wrong> (<file / key / field>): <what was expected>; <what to do>

``--debug`` on the command line (or ``PYMAF_DEBUG=1`` in the environment) prints the traceback as well.
Any other exception is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Any, Callable, Sequence

from pymaf.errors import PymafError

EXIT_ERROR = 2          # a project error (bad input, run cannot go on)
EXIT_INTERRUPTED = 130  # Ctrl-C


def debug_enabled(argv: Sequence[str] | None = None) -> bool:
    """True when ``--debug`` is among the arguments or ``PYMAF_DEBUG`` is set to anything but '' / '0'."""
    args = sys.argv[1:] if argv is None else argv
    return "--debug" in args or os.environ.get("PYMAF_DEBUG", "") not in ("", "0")


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--debug`` (handled by :func:`run_cli`; the entry point itself ignores it)."""
    parser.add_argument("--debug", action="store_true",
                        help="on an error, print the full traceback too (also: PYMAF_DEBUG=1)")


def format_error(err: BaseException) -> str:
    """``error: <message>`` on one line (inner line breaks of the message become '; ')."""
    text = str(err)
    if "Original Traceback" in text:  # re-raised by a DataLoader worker: keep the original message only
        first, last = text.splitlines()[0], text.strip().splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
        text += f" ({first.removeprefix('Caught ').rstrip('.')})"
    lines = [line.strip().rstrip(",;") for line in text.splitlines() if line.strip().rstrip(",;")]
    return "error: " + ("; ".join(lines) if lines else type(err).__name__)


def run_cli(main: Callable[[list[str]], Any], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)`` under the error convention; returns the exit code (``main``'s int, else 0)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = debug_enabled(args)
    try:
        rc = main(args)
    except PymafError as e:
        sys.stdout.flush()
        if debug:
            traceback.print_exc()
        print(format_error(e), file=sys.stderr, flush=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    return rc if isinstance(rc, int) else 0


__all__ = ["run_cli", "add_debug_flag", "debug_enabled", "format_error", "EXIT_ERROR"]
