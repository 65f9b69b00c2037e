"""The ``labelwise`` command: parse arguments -> call the public API -> format the result. Nothing else.

Exit codes: 0 ok, 2 bad input or usage (one line on stderr, no traceback), 1 internal error.
`labelwise.cli._parser` defines the subcommands and their options; `labelwise.cli._handlers` runs each one.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from labelwise.cli._parser import build_parser
from labelwise.errors import LabelwiseError, LabelwiseWarning

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (tests call this in process)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    shown, warnings.showwarning = warnings.showwarning, _show_warning
    try:
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except LabelwiseError as err:
        if args.debug:
            traceback.print_exc()
        print(f"labelwise: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"labelwise: interrupted; {_kept_for_resume(args)}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _reader_went_away()
    except SystemExit as err:
        # Lightning turns SIGTERM into SystemExit(None) once the current step is done; that is no success.
        if err.code not in (None, 0):
            raise
        print(f"labelwise: terminated (SIGTERM); {_kept_for_resume(args)}", file=sys.stderr)
        return 143
    except Exception as err:  # noqa: BLE001 - the last line of defence turns any bug into a report request
        if args.debug:
            traceback.print_exc()
        print(f"labelwise: internal error: {type(err).__name__}: {_one_line(err)}", file=sys.stderr)
        print(
            "labelwise: this is a bug; please report it with the command you ran (add --debug for the traceback).",
            file=sys.stderr,
        )
        return 1
    finally:
        warnings.showwarning = shown


def _reader_went_away() -> int:
    """The reader closed our stdout (``labelwise inspect data.csv | head -1``): stop quietly, as cat and git do.

    stdout is pointed at /dev/null first, or Python's final flush at exit would fail on the closed pipe again and
    print "Exception ignored ... BrokenPipeError" (https://docs.python.org/3/library/signal.html#note-on-sigpipe).
    Exit 141 is what a shell reports for a command ended by SIGPIPE (128 + 13).
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 128 + signal.SIGPIPE


def _kept_for_resume(args: argparse.Namespace) -> str:
    partial = Path(f"{args.out}.partial") if args.command == "train" and args.out else None
    if partial is not None and (partial / "checkpoints" / "last.ckpt").is_file():
        return f"the finished epochs are kept in {str(partial)!r}; add --resume to the same command to continue."
    return "no run was written."


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    # Our warnings are messages for the user, not for a developer: one line, no source location.
    if issubclass(category, LabelwiseWarning):
        print(f"labelwise: warning: {_one_line(message)}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno), end="", file=sys.stderr)


def _one_line(err: BaseException | Warning | str) -> str:
    # Messages quote the offending values; a 1 MB CSV cell must not become a 1 MB line on the terminal.
    words = (_shorten(word, _MAX_WORD) for word in str(err).split())
    return _shorten(" ".join(words), _MAX_LINE)


_MAX_WORD = 300  # longer than any path or value a person reads
_MAX_LINE = 3000


def _shorten(text: str, limit: int) -> str:
    """``text``, or its start and end around a note of how much was left out (the found value, then the fix)."""
    if len(text) <= limit:
        return text
    head, tail = limit * 2 // 3, limit // 6
    return f"{text[:head]}[...{len(text) - head - tail:,} characters...]{text[-tail:]}"
