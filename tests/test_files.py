"""The files written for the user: checked before the work, written whole, readable like any other file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from labelwise._files import _umask, check_output_path, is_stream, write_atomically
from labelwise.errors import ArtifactError


def test_a_written_file_gets_the_permissions_of_a_plain_open(tmp_path: Path) -> None:
    out = write_atomically(tmp_path / "predictions.csv", "id\n0\n", option="--out")
    # mkstemp alone would leave 0600: a report or predictions file nobody else can read.
    assert out.stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert out.read_text() == "id\n0\n"


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "report.html"
    out.write_text("old")

    def full_disk(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(ArtifactError, match=r"cannot write --report .*No space left on device.*nothing was written"):
        write_atomically(out, b"new", option="--report")
    assert out.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        pytest.param(lambda tmp: tmp / "missing" / "a.csv", "does not exist; create it or pass", id="no-folder"),
        pytest.param(lambda tmp: tmp, "is a folder; expected a file name such as predictions.csv", id="a-folder"),
    ],
)
def test_an_unusable_path_is_refused_before_any_work(tmp_path: Path, where: object, message: str) -> None:
    path = where(tmp_path)  # type: ignore[operator]
    with pytest.raises(ArtifactError, match=message):
        check_output_path(path, option="--out", example="predictions.csv")


def test_dash_writes_to_standard_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert str(write_atomically("-", "id\n0\n", option="--out")) == "-"
    assert capsys.readouterr().out == "id\n0\n"
    assert check_output_path("-", option="--out", example="p.csv") == Path("-")


def test_a_device_is_written_to_never_replaced() -> None:
    # Renaming a temporary file over /dev/stdout printed nothing and, as root, turned the link into a plain file.
    devnull = Path(os.devnull)
    assert is_stream(devnull) and not is_stream(Path(__file__))
    write_atomically(devnull, "id\n0\n", option="--out")
    assert stat.S_ISCHR(os.stat(devnull).st_mode)
