"""`labelwise evaluate --report`: the HTML report's content per kind, in a real headless Chromium, and bad paths.

The browser tests drive Debian's ``chromium`` (``/usr/bin/chromium``) with playwright; they skip without it, and
fail without it when ``CI`` is set (CI installs it). Screenshots go to ``test-artifacts/report-<kind>.png``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import labelwise
from labelwise.cli import main
from labelwise.errors import ArtifactError
from labelwise.html_report import build_report, write_report
from labelwise.train import TrainConfig

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The figures each kind of run must show (the worst-predicted table is a `data-figure` too).
EXPECTED = {
    "binary": {"roc", "pr", "reliability", "training", "worst"},
    "multiclass": {"confusion", "reliability", "training", "worst"},
    "multilabel": {"roc", "pr", "per-label-f1", "reliability", "training", "worst"},
    "images": {"roc", "pr", "reliability", "training", "worst"},
    "abstain": {"confusion", "reliability", "risk-coverage", "training", "worst"},
}
KINDS = list(EXPECTED)


def _tables(root: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 3))
    features = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2]})
    labels = {
        "binary": np.where(x[:, 0] + 0.5 * x[:, 1] > 0, "yes", "no"),
        "multiclass": np.array(["a", "b", "c", "d"])[(x[:, 0] > 0) * 2 + (x[:, 1] > 0)],
        "multilabel": [" ".join(name for name, v in zip("xyz", row, strict=True) if v > 0) for row in x],
    }
    out: dict[str, tuple[Path, dict[str, Any]]] = {}
    for kind, label in labels.items():
        path = root / f"{kind}.csv"
        features.assign(label=label).to_csv(path, index=False)
        out[kind] = (path, {})
    out["abstain"] = (root / "multiclass.csv", {"allow_none": "max_prob"})
    # Evaluated on data where 20 items are of a class the model never saw: "none of these" is the right answer.
    open_set = pd.read_csv(root / "multiclass.csv").assign(label=["e"] * 20 + list(labels["multiclass"][20:]))
    open_set.to_csv(root / "open-set.csv", index=False)
    return out


def _image_folder(root: Path) -> Path:
    rng = np.random.default_rng(1)
    for label, level in (("dark", 60), ("light", 190)):
        (root / "imgs" / label).mkdir(parents=True)
        for i in range(24):
            pixels = np.clip(rng.normal(level, 40, size=(12, 12, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / "imgs" / label / f"{i}.png")
    return root / "imgs"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Tiny trained runs, one per entry of EXPECTED: ``kind -> (run_dir, labelled data)``."""
    root = tmp_path_factory.mktemp("report")
    data = _tables(root)
    data["images"] = (_image_folder(root), {"guards": "off"})
    out: dict[str, tuple[Path, Path]] = {}
    for kind, (path, options) in data.items():
        guards = options.pop("guards", "warn")
        run = root / f"run-{kind}"
        labelwise.fit(path, out=run, config=TrainConfig(epochs=3, guards=guards), progress=False, **options)
        out[kind] = (run, root / "open-set.csv" if kind == "abstain" else path)
    return out


@pytest.fixture(scope="module")
def reports(runs: dict[str, tuple[Path, Path]], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One written report per run."""
    root = tmp_path_factory.mktemp("html")
    return {
        kind: write_report(labelwise.load(run), data, root / f"{kind}.html", run_dir=run)
        for kind, (run, data) in runs.items()
    }


def _figures(html: str) -> set[str]:
    return set(re.findall(r'data-figure="([^"]+)"', html))


@pytest.mark.parametrize("kind", KINDS)
def test_report_holds_the_figures_of_its_kind_and_is_self_contained(kind: str, reports: dict[str, Path]) -> None:
    html = reports[kind].read_text(encoding="utf-8")
    assert _figures(html) == EXPECTED[kind]
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing to fetch
    sources = re.findall(r'src="([^"]*)"', html)
    assert sources and all(src.startswith("data:image/") for src in sources)
    assert "The task and why." in html and "Headline metrics" in html
    thumbnails = html.count('class="thumb"')
    assert (thumbnails > 0) == (kind == "images")
    assert ('<td>unknown_items</td><td class="num">20</td>' in html) == (kind == "abstain")


def test_cli_writes_the_report_and_prints_the_same_metrics(
    runs: dict[str, tuple[Path, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, data = runs["multiclass"]
    path = tmp_path / "report.html"
    assert main(["evaluate", str(run), str(data), "--report", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert printed == labelwise.load(run).evaluate(data)
    assert path.is_file() and "wrote the report" in captured.err
    # The headline cards show evaluate's numbers, not numbers computed another way.
    assert f'<div class="v">{printed["accuracy"]:.4f}</div><div class="k">accuracy</div>' in path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temp file left behind


def _unwritable_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    if os.geteuid() == 0:  # root writes into read-only folders: let `os.access` answer as for another user
        real = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == folder else real(path, mode))
    return folder / "report.html"


@pytest.mark.parametrize(
    ("make_path", "message"),
    [
        pytest.param(lambda tmp, _: tmp / "missing" / "report.html", "does not exist; create it", id="missing-folder"),
        pytest.param(lambda tmp, _: tmp, "is a folder; expected a file name", id="a-folder"),
        pytest.param(_unwritable_folder, "is not writable; pass a path", id="read-only-folder"),
    ],
)
def test_report_to_an_unwritable_path_is_one_line_and_writes_nothing(
    make_path: Any,
    message: str,
    runs: dict[str, tuple[Path, Path]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run, data = runs["binary"]
    path = make_path(tmp_path, monkeypatch)
    before = sorted(tmp_path.rglob("*"))
    assert main(["evaluate", str(run), str(data), "--report", str(path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("labelwise: error: ") and message in lines[0]
    assert captured.out == ""  # it failed before evaluating, rather than after printing the metrics
    assert sorted(tmp_path.rglob("*")) == before


def test_a_failed_write_leaves_neither_the_report_nor_a_temp_file(
    runs: dict[str, tuple[Path, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, data = runs["binary"]
    report = build_report(labelwise.load(run), data, run_dir=run)

    def full_disk(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(ArtifactError, match=r"No space left on device.*nothing was written\. Pass a path in a folder"):
        report.write(tmp_path / "report.html")
    assert list(tmp_path.iterdir()) == []


# -- in a real browser -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium under playwright, headless; skip without it (fail under CI)."""
    if not CHROMIUM.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; CI must install Debian's chromium package for the report tests.")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium) for the headless browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=_ARGS)
        yield chromium
        chromium.close()


@pytest.mark.parametrize("kind", KINDS)
def test_report_renders_in_chromium_with_every_figure(kind: str, reports: dict[str, Path], browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    fetched: list[str] = []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    page.on("request", lambda request: fetched.append(request.url))

    def block(route: Any) -> None:
        route.abort()

    page.route(re.compile(r"^(https?|wss?|ftp)://"), block)
    page.goto(reports[kind].resolve().as_uri(), wait_until="load")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"report-{kind}.png"), full_page=True)
    sizes = {}
    for element in page.query_selector_all("[data-figure]"):
        box = element.bounding_box()
        sizes[element.get_attribute("data-figure")] = (box or {}).get("width", 0) * (box or {}).get("height", 0)
    broken = page.evaluate("[...document.images].filter(i => !i.complete || i.naturalWidth === 0).length")
    page.close()
    assert problems == []
    assert [url for url in fetched if not url.startswith(("file:", "data:"))] == []
    assert set(sizes) == EXPECTED[kind] and all(area > 100 * 100 for area in sizes.values()), sizes
    assert broken == 0
