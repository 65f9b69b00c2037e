"""Runs saved by earlier labelwise versions load and predict exactly as they did (tests/fixtures/format2/README.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import labelwise
from labelwise import artifact
from labelwise.cli import main
from labelwise.errors import ArtifactError

FORMAT2 = Path(__file__).parent / "fixtures" / "format2"
RUNS = {
    "binary": "binary.csv",
    "twohead": "binary.csv",
    "ovr": "iris.csv",
    "multilabel": "tags.csv",
    "ranked": "ranked.csv",
}


@pytest.mark.parametrize("run", sorted(RUNS))
def test_a_format_2_run_predicts_what_it_predicted_when_saved(run: str, tmp_path: Path) -> None:
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(FORMAT2 / run), str(FORMAT2 / RUNS[run]), "--out", str(out)]) == 0
    expected, got = pd.read_csv(FORMAT2 / run / "expected.csv"), pd.read_csv(out)
    assert list(got.columns) == list(expected.columns)
    numbers = [c for c in expected.columns if pd.api.types.is_float_dtype(expected[c])]
    # float32 networks and the same operations: equal up to float32 rounding in the CSV's text.
    np.testing.assert_allclose(got[numbers].to_numpy(), expected[numbers].to_numpy(), rtol=0, atol=1e-6)
    others = [c for c in expected.columns if c not in numbers]
    pd.testing.assert_frame_equal(got[others], expected[others])


@pytest.mark.parametrize("run", sorted(RUNS))
def test_a_format_2_run_saves_again_as_the_current_format(run: str, tmp_path: Path) -> None:
    clf = labelwise.load(FORMAT2 / run)
    again = labelwise.load(clf.save(tmp_path / "again"))
    meta = json.loads((tmp_path / "again" / artifact.METADATA_FILE).read_text())
    assert meta["format_version"] == artifact.FORMAT_VERSION
    assert again.task == clf.task
    frame = pd.read_csv(FORMAT2 / RUNS[run]).head(20)
    np.testing.assert_array_equal(
        again.predict_source(_source(frame)).decisions, clf.predict_source(_source(frame)).decisions
    )


def _source(frame: pd.DataFrame) -> labelwise.data.sources.Source:
    from labelwise.data.sources import source_from_frame

    return source_from_frame(frame, target=None, image_col=None)


def test_an_unknown_format_version_is_refused_naming_the_readable_ones(tmp_path: Path) -> None:
    run = shutil.copytree(FORMAT2 / "binary", tmp_path / "run")
    meta = json.loads((run / artifact.METADATA_FILE).read_text())
    (run / artifact.METADATA_FILE).write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(ArtifactError, match=r"format_version 99; this labelwise reads versions 2, 3"):
        labelwise.load(run)
