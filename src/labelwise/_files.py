"""The files labelwise writes for the user (``predictions.csv``, ``report.html``, ``model.onnx``).

Each is checked before any work (so a typo in a path costs nothing) and written whole: the bytes go to a temporary
file in the target's own folder, which `os.replace` then moves into place. A crash or a full disk leaves the
previous file or none, never half of one. ``mkstemp`` creates its file readable by its owner only; the file gets
the permissions a plain ``open()`` would have given (``0o666`` less the umask), since these files are meant to be
read, shared and shipped. The run directory itself has its own staging (`labelwise.artifact`).
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

from labelwise.errors import ArtifactError

__all__ = ["check_output_path", "file_mode", "is_stream", "write_atomically"]


def check_output_path(path: str | os.PathLike[str], *, option: str, example: str) -> Path:
    """Fail early when ``path`` cannot receive a file; ``option`` is the flag that named it (``--out``).

    Raises:
        ArtifactError: the folder does not exist or is not writable, or ``path`` is a folder.

    Example:
        >>> check_output_path("/no/such/folder/report.html", option="--report", example="report.html")
        Traceback (most recent call last):
        ...
        labelwise.errors.ArtifactError: the folder of --report '/no/such/folder/report.html' does not exist; \
create it or pass another path.
    """
    target = Path(path)
    folder = target.parent
    if str(path) == "-" or is_stream(target):
        return target  # standard output, a pipe or a device: written as it is, see `write_atomically`
    if target.is_dir():
        raise ArtifactError(f"{option} {str(target)!r} is a folder; expected a file name such as {example}.")
    if not folder.is_dir():
        raise ArtifactError(f"the folder of {option} {str(target)!r} does not exist; create it or pass another path.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ArtifactError(
            f"the folder of {option} {str(target)!r} is not writable; pass a path in a folder you can write to."
        )
    return target


def write_atomically(path: str | os.PathLike[str], data: bytes | str, *, option: str) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary file and `os.replace`; return the path.

    Raises:
        ArtifactError: the write failed (folder gone, disk full, no permission); nothing was left behind.

    Example:
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "a.csv"
        >>> write_atomically(out, "id\\n0\\n", option="--out").read_text()
        'id\\n0\\n'
    """
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if str(path) == "-" or is_stream(target):
        return _write_stream(target, payload, option=option)
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.chmod(tmp, file_mode())
        os.replace(tmp, target)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise ArtifactError(
                f"cannot write {option} {str(target)!r} ({err.strerror or err}); nothing was written. "
                "Pass a path in a folder you can write to."
            ) from err
        raise
    return target


def is_stream(path: Path) -> bool:
    """Whether ``path`` exists and is not a regular file: ``/dev/stdout``, a named pipe, a terminal, a device.

    Such a path is written to, never replaced: renaming a temporary file over ``/dev/stdout`` would print nothing
    and, as root, turn the device link into a plain file.
    """
    try:
        return not stat.S_ISREG(os.stat(path).st_mode) and not stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return False


def _write_stream(target: Path, payload: bytes, *, option: str) -> Path:
    """``payload`` to standard output (``-``) or into an existing pipe or device, as it comes."""
    try:
        if str(target) == "-":
            sys.stdout.flush()
            sys.stdout.buffer.write(payload)
            sys.stdout.flush()
        else:
            with open(target, "wb") as handle:
                handle.write(payload)
    except OSError as err:
        if isinstance(err, BrokenPipeError):
            raise
        raise ArtifactError(f"cannot write {option} {str(target)!r} ({err.strerror or err}).") from err
    return target


def file_mode() -> int:
    """The mode a file created by ``open()`` gets under the current umask (0o644 under the usual 022)."""
    return 0o666 & ~_umask()


def _umask() -> int:
    # The umask can only be read by setting it; put it straight back.
    current = os.umask(0)
    os.umask(current)
    return current
