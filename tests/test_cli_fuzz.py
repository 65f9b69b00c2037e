"""Fuzz the command line with malformed tables and images: each is refused in one line, and nothing is written.

Every generated input is bad *by construction* for the command it is fed to (each generator says why), so any
other outcome is a labelwise bug. For each case: exit code 2; stderr exactly one line ``labelwise: error: ...``
that matches the case's problem; no traceback; nothing on stdout; the case's folder lists the same files before
and after (no run directory, no staging folder, no predictions file); training never starts.

Warnings are filtered the way the console script filters them (Python's defaults), not turned into exceptions as
pytest's ``filterwarnings = error`` would: a warning the user would see is then one more stderr line and fails the
case, while as an exception it could be swallowed by labelwise's broad handlers around PIL.

`PLAN` holds the number of cases of every (category, command); each test asserts it ran its planned number and
prints it (``pytest -s``), and `test_plan_holds_at_least_1000_cases` checks the total.
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import io
import itertools
import random
import re
import shutil
import string
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import labelwise
import labelwise.pipeline.training
from labelwise.cli import main
from labelwise.train import TrainConfig

COMMANDS = ("inspect", "train", "predict", "evaluate")
LABELLED = ("inspect", "train", "evaluate")  # commands that read the labels
DECODING = ("train", "predict", "evaluate")  # commands that decode every image
_PREFIX = "labelwise: error: "
_MAX_LINE = 3500  # a message quotes values and paths, but stays readable
_COLUMNS = ("a", "b", "color", "label")  # the table run's training columns
_CLASSES = ("circle", "square")  # the image run's classes


@dataclass(frozen=True)
class Case:
    """One bad input: files to write (relative path -> bytes), the DATA path, and the problem the line must name."""

    files: dict[str, bytes]
    data: str
    problem: str  # regex searched in the error line
    run: str = "table"  # which trained run predict/evaluate use: "table" or "images"


@dataclass(frozen=True)
class Runs:
    table: Path
    images: Path
    listing: dict[str, list[str]]  # what each run folder held when trained


# -- the trained runs and the harness ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """A tiny table run and a tiny image run (1 epoch each), trained once per module."""
    root = tmp_path_factory.mktemp("fuzz-runs")
    rng = random.Random(0)
    pd.DataFrame(_cells(rng, 60), columns=_COLUMNS).to_csv(root / "train.csv", index=False)
    rows = []
    for i in range(60):
        name = f"imgs/{i}.png"
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_bytes(_good_image("png", seed=i))
        rows.append((name, _CLASSES[i % 2]))
    pd.DataFrame(rows, columns=["fname", "label"]).to_csv(root / "images.csv", index=False)
    config = TrainConfig(epochs=1, guards="off")  # runs to predict with, not models: noise may well collapse
    labelwise.fit(str(root / "train.csv"), config=config, progress=False, out=root / "table")
    labelwise.fit(str(root / "images.csv"), config=config, progress=False, out=root / "images")
    listing = {name: _listing(root / name) for name in ("table", "images")}
    return Runs(table=root / "table", images=root / "images", listing=listing)


class _TrainingStarted(BaseException):
    """Raised by the stand-in for the training loops: a bad input got as far as training (main does not catch it)."""


@pytest.fixture
def check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runs: Runs) -> Iterator[Callable[[str, Case, str], None]]:
    """``check(command, case, name)`` runs one case; afterwards the runs and the working directory are unchanged."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise _TrainingStarted("training started on a bad input")

    import labelwise.train.trainer  # each loop a training may run

    monkeypatch.setattr(labelwise.train.trainer, "fit_network", refuse)
    monkeypatch.setattr(labelwise.pipeline.training, "fit_bagged", refuse)
    monkeypatch.setattr(labelwise.pipeline.training, "solve_linear", refuse)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    folders = itertools.count()  # a fresh folder per call, also when hypothesis replays a failing example
    yield lambda command, case, name: _check(command, case, tmp_path / f"{next(folders):04d}", runs, name)
    assert not any(cwd.iterdir()), "a command wrote into the working directory"
    assert {name: _listing(getattr(runs, name)) for name in runs.listing} == runs.listing, "a run was modified"


def _check(command: str, case: Case, folder: Path, runs: Runs, name: str) -> None:
    folder.mkdir()
    for relative, content in case.files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(content)
    before = _listing(folder)
    argv = _argv(command, folder / case.data, folder, runs.table if case.run == "table" else runs.images)
    code, out, err = _cli(argv)
    where = f"case {name}: labelwise {' '.join(argv)}"
    assert "Traceback" not in out + err, f"{where}\n{err[-3000:]}"
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith(_PREFIX), f"{where}\nexit {code}\n{err[:3000]}"
    assert re.search(case.problem, lines[0]), f"{where}\n{lines[0][:3000]}\ndoes not match {case.problem!r}"
    assert len(lines[0]) <= _MAX_LINE, f"{where}: a {len(lines[0])}-character line"
    assert out == "", f"{where}: printed {out[:500]!r}"
    assert _listing(folder) == before, f"{where}: wrote {sorted(set(_listing(folder)) - set(before))}"
    shutil.rmtree(folder)


def _argv(command: str, data: Path, folder: Path, run: Path) -> list[str]:
    return {
        "inspect": ["inspect", str(data)],
        "train": ["train", str(data), "--out", str(folder / "run"), "--epochs", "1", "--quiet"],
        "predict": ["predict", str(run), str(data), "--out", str(folder / "predictions.csv")],
        "evaluate": ["evaluate", str(run), str(data)],
    }[command]


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        warnings.resetwarnings()  # the interpreter's defaults, as the console script runs with
        warnings.simplefilter("always")
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's usage errors
            code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


def _listing(folder: Path) -> list[str]:
    """Every file and folder under ``folder`` (hidden ones too), with file sizes."""
    return sorted(f"{p.relative_to(folder)}{'/' if p.is_dir() else f' {p.stat().st_size}'}" for p in folder.rglob("*"))


# -- tables ------------------------------------------------------------------------------------------------------
def _cells(rng: random.Random, n: int) -> list[list[str]]:
    """Rows of the table run's columns: two numbers, a color, a balanced yes/no label."""
    return [
        [f"{rng.uniform(-3, 3):.4f}", f"{rng.uniform(-3, 3):.4f}", rng.choice(("red", "blue")), ("no", "yes")[i % 2]]
        for i in range(n)
    ]


def _csv(header: list[str] | tuple[str, ...], rows: list[list[str]], *, sep: str = ",", eol: str = "\n") -> str:
    return "".join(sep.join(row) + eol for row in [list(header), *rows])


def _features(rows: list[list[str]]) -> dict[str, object]:
    return {name: [row[j] for row in rows] for j, name in enumerate(_COLUMNS[:3])}


def _parquet(columns: dict[str, object] | pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(columns if isinstance(columns, pa.Table) else pa.table(columns), buffer)
    return buffer.getvalue()


def _table(content: str | bytes, problem: str, *, suffix: str = ".csv") -> Case:
    data = content.encode() if isinstance(content, str) else content
    return Case(files={f"data{suffix}": data}, data=f"data{suffix}", problem=problem)


def _for(command: str, **problems: str) -> str:
    """The problem a command meets first: ``_for(command, train=..., default=...)``."""
    return problems.get(command, problems.get("default", ""))


def _invalid_utf8(rng: random.Random, command: str) -> Case:
    # The table is ASCII, so one byte >= 0x80 anywhere is an invalid sequence; "late" puts it past the 64 KiB
    # that are checked before parsing.
    late = rng.random() < 0.3
    text = _csv(_COLUMNS, _cells(rng, 4000 if late else rng.randint(20, 40))).encode()
    at = rng.randrange(70_000, len(text)) if late else rng.randrange(len(text))
    return _table(text[:at] + bytes([rng.randint(0x80, 0xFF)]) + text[at:], "is not UTF-8 text")


def _wrong_delimiter(rng: random.Random, command: str) -> Case:
    rows = _cells(rng, rng.randint(20, 40))
    if rng.random() < 0.5:  # a separator labelwise does not look for: one column named "a:b:color:label"
        text = _csv(_COLUMNS, rows, sep=rng.choice(":#^~!/ "))
        problem = _for(command, predict="lacks 3 feature column", evaluate="target='label' is not a column",
                       default="has no target column")  # fmt: skip
        return _table(text, problem)
    # The header and the rows use different separators: each row is one value in the first column ("a").
    header_sep, row_sep = rng.sample([",", ";", "\t", "|"], 2)
    text = _csv(_COLUMNS, [], sep=header_sep) + "".join(row_sep.join(row) + "\n" for row in rows)
    return _table(text, _for(command, train="missing or empty labels", inspect="missing or empty labels",
                             default="hold values that are not numbers"))  # fmt: skip


def _bom(rng: random.Random, command: str) -> Case:
    text = _csv(_COLUMNS, _cells(rng, rng.randint(20, 40)))
    variant = rng.choice(("wide", "joined", "header-only"))
    if variant == "wide":  # UTF-16 or UTF-32 with its byte-order mark
        encoding, bom = rng.choice(
            [("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE), ("utf-32-le", codecs.BOM_UTF32_LE)]
        )
        return _table(bom + text.encode(encoding), r"is UTF-(16|32) text")
    if variant == "header-only":
        return _table("\ufeff" + _csv(_COLUMNS, []) + "\n" * rng.randint(0, 3), "holds no rows")
    # Exports joined one after the other, each with its byte-order mark: the second header is a data row.
    parts = ["\ufeff" + _csv(_COLUMNS, _cells(rng, rng.randint(10, 20))) for _ in range(rng.randint(2, 3))]
    return _table("".join(parts), "holds? the header again")


def _ragged(rng: random.Random, command: str) -> Case:
    rows = _cells(rng, rng.randint(20, 40))
    variant = rng.choice(("some-rows", "every-row", "first-row") + (("short",) if command in LABELLED else ()))
    extra = [str(rng.randint(0, 9)) if rng.random() < 0.5 else "" for _ in range(rng.randint(1, 3))]
    if variant == "short":  # rows that stop before the label: pandas reads the label as missing
        for i in rng.sample(range(len(rows)), rng.randint(1, len(rows))):
            rows[i] = rows[i][: rng.randint(1, 3)]
        return _table(_csv(_COLUMNS, rows), "missing or empty labels")
    chosen = {
        "every-row": range(len(rows)),
        "first-row": [0],
        "some-rows": rng.sample(range(1, len(rows)), rng.randint(1, 5)),
    }[variant]
    for i in chosen:
        rows[i] = rows[i] + extra
    return _table(_csv(_COLUMNS, rows), r"more field\(s\) than its header|Expected \d+ fields in line \d+, saw \d+")


def _huge_value(rng: random.Random, *, spaces: bool) -> str:
    size = rng.randint(70_000, 400_000)
    alphabet = rng.choice((string.ascii_letters, "x") + ((string.ascii_lowercase + "     ",) if spaces else ()))
    return "z" + "".join(rng.choices(alphabet, k=size))  # starts with a letter: never a number


def _huge_fields(rng: random.Random, command: str) -> Case:
    rows = _cells(rng, rng.randint(20, 40))
    choices = ["extra-field", "open-quote"]
    choices += ["text-in-numbers"] if command != "inspect" else []
    choices += ["one-class"] if command in ("train", "inspect") else []
    variant = rng.choice(choices)
    huge = _huge_value(rng, spaces=variant != "one-class")  # a label with spaces would be several labels
    row = rng.randrange(1, len(rows))
    if variant == "text-in-numbers":  # one text cell among >= 20 numbers: a typo, not a category
        rows[row][rng.randrange(2)] = huge
        # Training meets it when fitting the columns (the row is a training row) or when encoding every row.
        problem = "holds text, while the other|hold values that are not numbers"
    elif variant == "extra-field":
        rows[row] = [*rows[row], huge]
        problem = r"Expected \d+ fields in line \d+, saw \d+"
    elif variant == "open-quote":
        rows[row][2] = '"' + huge
        problem = "EOF inside string"
    else:
        rows = [[*r[:3], huge] for r in rows]
        problem = "holds one class"
    return _table(_csv(_COLUMNS, rows), problem)


def _mixed_target(rng: random.Random, command: str) -> Case:
    rows = _cells(rng, rng.randint(20, 40))
    labels: list[int | float] = [rng.randint(0, 2) for _ in rows]
    for i in rng.sample(range(len(rows)), rng.randint(1, 3)):
        labels[i] = round(rng.randint(0, 5) + rng.choice((0.5, 0.25, 0.1, 0.75)), 2)  # never an integer
    problem = _for(command, evaluate="non-integer numbers|never trained on", default="non-integer numbers")
    if rng.random() < 0.3:
        return _table(_parquet({**_features(rows), "label": [float(v) for v in labels]}), problem, suffix=".parquet")
    return _table(_csv(_COLUMNS, [[*r[:3], str(v)] for r, v in zip(rows, labels, strict=True)]), problem)


def _duplicate_columns(rng: random.Random, command: str) -> Case:
    rows = _cells(rng, rng.randint(20, 40))
    if command in ("train", "inspect") and rng.random() < 0.3:  # two target-like names: which one is the target?
        other = rng.choice(("Label", "LABEL", "labels", "target", "class", "y"))
        rows = [[*r, rng.choice(("no", "yes"))] for r in rows]
        return _table(_csv([*_COLUMNS, other], rows), "several possible target columns")
    repeated = rng.choices(_COLUMNS, k=rng.randint(1, 3))
    header = [*_COLUMNS, *repeated]
    rows = [[*r, *(r[_COLUMNS.index(c)] for c in repeated)] for r in rows]
    if rng.random() < 0.3:
        arrays = [pa.array([r[j] for r in rows]) for j in range(len(header))]
        return _table(_parquet(pa.Table.from_arrays(arrays, names=header)), "duplicate column names", suffix=".parquet")
    return _table(_csv(header, rows), "duplicate column names")


def _empty(rng: random.Random, command: str) -> Case:
    content, suffix = rng.choice(
        [
            (b"", ".csv"), (b"", ".tsv"), (b"", ".txt"), (b"\n" * rng.randint(1, 5), ".csv"),
            (b"\r\n" * rng.randint(1, 5), ".csv"), (codecs.BOM_UTF8, ".csv"), (codecs.BOM_UTF8 + b"\n\n", ".csv"),
            (gzip.compress(b""), ".gz"), (b"", ".parquet"),
        ]
    )  # fmt: skip
    return _table(content, r"is empty \(0 bytes\)|holds no header row|as Parquet", suffix=suffix)


def _header_only(rng: random.Random, command: str) -> Case:
    header = [*rng.sample(_COLUMNS, len(_COLUMNS)), *rng.sample(["id", "x", "notes"], rng.randint(0, 2))]
    if rng.random() < 0.3:
        empty = pa.table({name: pa.array([], type=pa.string()) for name in header})
        return _table(_parquet(empty), "holds no rows", suffix=".parquet")
    sep, eol = rng.choice([",", ";", "\t", "|"]), rng.choice(["\n", "\r\n"])
    return _table(_csv(header, [], sep=sep, eol=eol) + eol * rng.randint(0, 3), "holds no rows")


def _nan_target(rng: random.Random, command: str) -> Case:
    rows = _cells(rng, rng.randint(20, 40))
    missing = set(rng.sample(range(len(rows)), rng.choice((len(rows), rng.randint(1, len(rows))))))
    labels = [None if i in missing else r[3] for i, r in enumerate(rows)]
    if rng.random() < 0.3:
        typed = pa.array(labels, type=pa.string()) if rng.random() < 0.5 else pa.array([None] * len(rows), pa.float64())
        return _table(_parquet({**_features(rows), "label": typed}), "missing or empty labels", suffix=".parquet")
    return _table(
        _csv(_COLUMNS, [[*r[:3], v or ""] for r, v in zip(rows, labels, strict=True)]), "missing or empty labels"
    )


def _garbage_parquet(rng: random.Random, command: str) -> Case:
    rows = _cells(rng, rng.randint(20, 40))
    good = _parquet({**_features(rows), "label": [row[3] for row in rows]})
    variant = rng.choice(("truncated", "footer-too-long", "csv", "random", "folder"))
    if variant == "folder":  # a Parquet folder with one good part and one truncated part
        files = {"parts/part-0.parquet": good, "parts/part-1.parquet": good[: rng.randrange(len(good))]}
        return Case(files=files, data="parts", problem="as Parquet")
    if variant == "truncated":  # the footer's magic is gone
        content = good[: rng.randrange(len(good))]
    elif variant == "footer-too-long":  # the footer claims more bytes than the file holds
        body = b"PAR1" + rng.randbytes(rng.randint(0, 500))
        content = body + struct.pack("<I", len(body) + 1 + rng.randrange(1 << 20)) + b"PAR1"
    elif variant == "csv":
        content = _csv(_COLUMNS, rows).encode()
    else:
        content = rng.randbytes(rng.randint(0, 2000)) + b"\0"  # cannot end in PAR1
    return _table(content, "as Parquet", suffix=".parquet")


# -- images ------------------------------------------------------------------------------------------------------
_FORMATS = {"png": "PNG", "jpg": "JPEG", "gif": "GIF", "bmp": "BMP", "webp": "WEBP", "tif": "TIFF"}


@cache
def _good_image(ext: str, *, seed: int) -> bytes:
    pixels = (np.random.default_rng(seed).random((16, 16, 3)) * 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    (image.convert("P") if ext == "gif" else image).save(buffer, _FORMATS[ext])
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _huge_header(ext: str, width: int, height: int) -> bytes:
    """A file whose header claims ``width x height`` pixels (with little or no pixel data)."""
    if ext == "png":
        ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        return b"\x89PNG\r\n\x1a\n" + ihdr + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")
    if ext == "bmp":
        info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
        return b"BM" + struct.pack("<IHHI", 70, 0, 0, 54) + info + b"\0" * 16
    if ext == "gif":
        screen = struct.pack("<HHBBB", width, height, 0, 0, 0)
        return b"GIF89a" + screen + b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x08\x02\x4c\x01\x00;"
    if ext == "jpg":
        return b"\xff\xd8\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00\xff\xd9"
    # TIFF: width, height, bits, no compression, grayscale, strip offset, 1 sample, rows per strip, strip bytes
    strip = min(width * height, 2**32 - 1)
    tags = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
            (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, strip)]  # fmt: skip
    ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", *tag) for tag in tags) + b"\0\0\0\0"
    return b"II*\x00" + struct.pack("<I", 8) + ifd


def _bad_truncated(rng: random.Random) -> tuple[str, bytes, str]:
    ext = rng.choice(list(_FORMATS))
    good = _good_image(ext, seed=rng.randrange(8))
    return ext, good[: rng.randint(1, len(good) // 2)], ""  # the pixel data is cut short: any reason


def _bad_zero_bytes(rng: random.Random) -> tuple[str, bytes, str]:
    return rng.choice(list(_FORMATS)), b"", r"empty file \(0 bytes\)"


def _bad_non_image(rng: random.Random) -> tuple[str, bytes, str]:
    # Text, or a PNG signature followed by junk (PIL then finds no valid chunk): no format PIL can open.
    prefix = rng.choice([b"not an image: ", b"<html>", b'{"json": ', b"a,b\n", b"%PDF-1.4\n", b"\x89PNG\r\n\x1a\n"])
    return rng.choice(list(_FORMATS)), prefix + rng.randbytes(rng.randint(0, 300)), "not an image format"


def _bad_huge(rng: random.Random) -> tuple[str, bytes, str]:
    ext = rng.choice(("png", "bmp", "gif", "jpg", "tif"))
    limit = Image.MAX_IMAGE_PIXELS or 0
    side = 65535 if ext in ("gif", "jpg") else 2**31 - 1  # the largest side the format can state
    # Above the limit PIL warns and decodes; above twice the limit it refuses: both are refused.
    pixels = rng.choice((rng.randint(limit + 1, 2 * limit), rng.randint(2 * limit + 1, min(40 * limit, side**2))))
    width = rng.randint(-(-pixels // side), min(side, pixels))
    return ext, _huge_header(ext, width, -(-pixels // width)), "over PIL's limit of [0-9,]+ against decompression"


def _image_content(bad: Callable[[random.Random], tuple[str, bytes, str]], layout: str) -> Generator:
    """Good images of two classes plus 1-3 bad files, as a class tree or as a table of image paths."""

    def make(rng: random.Random, command: str) -> Case:
        per_class = 6 if command == "train" else rng.randint(1, 3)  # enough for a stratified split when training
        items = _good_items(per_class)
        bad_names = []
        for j in range(rng.randint(1, 3)):
            ext, content, problem = bad(rng)
            label = rng.choice(_CLASSES)
            bad_names.append(f"bad{j}.{ext}")
            items.insert(rng.randrange(len(items) + 1), (f"{label}/bad{j}.{ext}", label, content))
        named = "|".join(re.escape(name) for name in bad_names)
        return _images_case(items, layout, rf"image files cannot be read: .*({named})' \(.*{problem}")

    return make


def _good_items(per_class: int) -> list[tuple[str, str, bytes]]:
    """(path under the class, label, bytes) of ``per_class`` good PNGs of each class."""
    return [(f"{label}/{i}.png", label, _good_image("png", seed=i)) for label in _CLASSES for i in range(per_class)]


def _images_case(items: list[tuple[str, str, bytes]], layout: str, problem: str) -> Case:
    if layout == "tree":
        return Case(files={f"tree/{path}": content for path, _, content in items}, data="tree", problem=problem,
                    run="images")  # fmt: skip
    files = {f"imgs/{path}": content for path, _, content in items}
    table = pd.DataFrame([(f"imgs/{path}", label) for path, label, _ in items], columns=["fname", "label"])
    files["table.csv"] = table.to_csv(index=False).encode()
    return Case(files=files, data="table.csv", problem=problem, run="images")


def _wrong_extension(rng: random.Random, command: str) -> Case:
    # Real images, but under names the folder scan skips: other extensions, hidden files, hidden folders.
    files = {}
    for label in _CLASSES:
        for i in range(rng.randint(1, 4)):
            name = rng.choice(
                [f"{i}.txt", f"{i}.png.bak", f"{i}.jpg~", f"{i}", f"{i}.dat", f".{i}.png", f"__MACOSX/{i}.png"]
            )
            files[f"tree/{label}/{name}"] = _good_image(rng.choice(list(_FORMATS)), seed=i)
    return Case(files=files, data="tree", problem=r"no images under .*\(found files of types", run="images")


def _image_paths(rng: random.Random, command: str) -> Case:
    per_class = 6 if command == "train" else rng.randint(1, 3)
    case = _images_case(_good_items(per_class), "table", "")
    table = pd.read_csv(io.BytesIO(case.files["table.csv"]))
    rows = rng.sample(range(len(table)), rng.randint(1, min(3, len(table) - 1)))
    if command == "inspect" or rng.random() < 0.5:  # empty path cells
        table.loc[rows, "fname"] = None
        problem = "image column 'fname' is empty in"
    else:  # paths to files that are not there, or (given the run's image column) to a folder
        folders = ["imgs/circle"] if command != "train" else []  # training detects the column by its extensions
        table.loc[rows, "fname"] = [rng.choice([f"imgs/missing{j}.png", *folders]) for j in range(len(rows))]
        problem = r"image files cannot be read: .*' \((file not found|IsADirectoryError)"
    files = {**case.files, "table.csv": table.to_csv(index=False).encode()}
    return Case(files=files, data="table.csv", problem=problem, run="images")


def _folder_layout(rng: random.Random, command: str) -> Case:
    image = _good_image("png", seed=0)
    tree = {f"tree/{label}/{i}.png": image for label in _CLASSES for i in range(2)}
    one_class = ("one-class",) if command in ("train", "inspect") else ()  # prediction needs no second class
    variant = rng.choice(("empty", "loose-and-classes", "splits-and-others", *one_class))
    if variant == "empty":
        files = {"tree/.keep": b""}
        problem = "no images under"
    elif variant == "loose-and-classes":
        files = {**tree, f"tree/loose{rng.randint(0, 9)}.png": image}
        problem = "holds class folders .* and also loose images"
    elif variant == "splits-and-others":
        files = {f"tree/{split}/{path[5:]}": content for split in ("train", "valid") for path, content in tree.items()}
        files[rng.choice(["tree/extra/x.png", "tree/loose.png"])] = image
        problem = "holds split folders"
    else:
        files = {path: content for path, content in tree.items() if "circle" in path}
        problem = "has one class folder"
    return Case(files=files, data="tree", problem=problem, run="images")


# -- the plan ----------------------------------------------------------------------------------------------------
Generator = Callable[[random.Random, str], Case]
_BAD_IMAGES = {
    "truncated-image": _bad_truncated,
    "zero-byte-image": _bad_zero_bytes,
    "non-image-bytes": _bad_non_image,
    "huge-dimensions": _bad_huge,
}
# category -> (generator, the commands its inputs are bad for, cases per command)
CATEGORIES: dict[str, tuple[Generator, tuple[str, ...], int]] = {
    "invalid-utf8": (_invalid_utf8, COMMANDS, 16),
    "wrong-delimiter": (_wrong_delimiter, COMMANDS, 16),
    "bom": (_bom, COMMANDS, 16),
    "ragged-rows": (_ragged, COMMANDS, 16),
    "huge-fields": (_huge_fields, COMMANDS, 10),
    "mixed-target": (_mixed_target, LABELLED, 16),
    "duplicate-columns": (_duplicate_columns, COMMANDS, 14),
    "empty-file": (_empty, COMMANDS, 10),
    "header-only": (_header_only, COMMANDS, 14),
    "nan-target": (_nan_target, LABELLED, 16),
    "garbage-parquet": (_garbage_parquet, COMMANDS, 14),
    **{
        f"{name}-{layout}": (_image_content(bad, layout), DECODING, 10)
        for name, bad in _BAD_IMAGES.items()
        for layout in ("tree", "table")
    },
    "wrong-extension": (_wrong_extension, COMMANDS, 10),
    "image-paths": (_image_paths, COMMANDS, 10),
    "folder-layout": (_folder_layout, COMMANDS, 10),
}
PLAN: dict[tuple[str, str], int] = {
    **{(name, command): count for name, (_, commands, count) in CATEGORIES.items() for command in commands},
    ("random-bytes", "*"): 120,  # hypothesis, each example with a drawn command
    ("unicode-junk", "*"): 120,
}


def test_plan_holds_at_least_1000_cases() -> None:
    total = sum(PLAN.values())
    print(f"\nCLI fuzz plan: {total} bad inputs")
    assert total >= 1000


@pytest.mark.parametrize(("category", "command"), [key for key in PLAN if key[1] != "*"])
def test_bad_input_is_refused_in_one_line(check: Callable[[str, Case, str], None], category: str, command: str) -> None:
    count = PLAN[category, command]
    for i in range(count):
        case = CATEGORIES[category][0](random.Random(f"{category}/{command}/{i}"), command)
        check(command, case, f"{category}-{command}-{i}")
    print(f"\n{category} x {command}: {count} cases refused")


# -- hypothesis: random bytes and unicode junk -------------------------------------------------------------------
_POISON = (b"\x00", b"\xff", b"\xc3(", b"\xfe")  # NUL (in no CSV), or bytes no UTF-8 text holds
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar")
_JUNK_PROBLEMS = {
    "train": "has no target column",
    "inspect": "has no target column",
    "predict": "lacks 3 feature column|cannot parse|holds no rows|more field",
    "evaluate": "target='label' is not a column",
}
_JUNK_READING = r"holds binary data|is empty|holds no header row|cannot read the header|duplicate column names"


def _random_bytes(raw: bytes, at: int, poison: bytes, suffix: str, command: str) -> tuple[str, Case]:
    # A compressed file starts with the poison (no compression's magic number) and no file ends in PAR1 (the
    # Parquet footer's magic), so none is a readable table of any kind.
    at = 0 if suffix in _COMPRESSED else at % (len(raw) + 1)
    content = raw[:at] + poison + raw[at:]
    content += b"\0" if content.endswith(b"PAR1") else b""
    if suffix in (".xlsx", ".ods"):
        problem = "is a spreadsheet"
    elif suffix == ".parquet" or content.startswith(b"PAR1"):
        problem = "as Parquet"
    elif suffix in _COMPRESSED:
        problem = "cannot decompress|needs an optional package"
    else:
        problem = r"holds binary data|is not UTF-8 text|is UTF-(16|32) text"
    return command, _table(content, problem, suffix=suffix)


def _unicode_junk(text: str, suffix: str, command: str) -> tuple[str, Case]:
    # Without ASCII letters no column is named `label`, `a`, `b` or `color`, and no cell ends in .png: training
    # finds no target, prediction lacks the features, evaluation the label column (if reading gets that far).
    return command, _table(text.encode(), f"{_JUNK_PROBLEMS[command]}|{_JUNK_READING}", suffix=suffix)


def _no_ascii_letters(char: str) -> bool:
    return not any(c in string.ascii_letters for c in char.lower() + char.upper())


_EXAMPLES = {
    "random-bytes": st.builds(
        _random_bytes,
        st.binary(max_size=2048),
        st.integers(min_value=0),
        st.sampled_from(_POISON),
        st.sampled_from((".csv", ".tsv", ".txt", "", ".dat", ".parquet", ".xlsx", ".ods", *_COMPRESSED)),
        st.sampled_from(COMMANDS),
    ),
    "unicode-junk": st.builds(
        _unicode_junk,
        st.text(st.characters(codec="utf-8").filter(_no_ascii_letters), max_size=300),
        st.sampled_from((".csv", ".tsv", ".txt")),
        st.sampled_from(COMMANDS),
    ),
}


@pytest.mark.parametrize("category", list(_EXAMPLES))
def test_hypothesis_inputs_are_refused(check: Callable[[str, Case, str], None], category: str) -> None:
    seen: list[str] = []

    @settings(derandomize=True, database=None, deadline=None, max_examples=PLAN[category, "*"],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(example=_EXAMPLES[category])
    def refused(example: tuple[str, Case]) -> None:
        command, case = example
        check(command, case, f"{category}-{len(seen)}")
        seen.append(command)

    refused()
    print(f"\n{category}: {len(seen)} cases refused ({', '.join(f'{c} {seen.count(c)}' for c in COMMANDS)})")
    assert len(seen) >= PLAN[category, "*"]
