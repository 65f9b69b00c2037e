"""`labelwise.label_issues`: the ranking against cleanlab called directly, on small synthetic out-of-fold frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _factories import make_task
from _references import reference_label_issues
from labelwise.errors import DataError
from labelwise.label_issues import LabelIssue, find_label_issues, format_label_issues
from labelwise.task import Task, TaskKind

_N = 120
_FLIPPED = (5, 17, 40, 77, 101)  # positions whose given label the probabilities contradict


def _out_of_fold(kind: TaskKind, *, seed: int = 0) -> tuple[pd.DataFrame, Task, object, np.ndarray]:
    """An out-of-fold frame whose rows are numbered out of order (as after dropping rows), its Task, the given
    labels as cleanlab takes them, and the probabilities; the rows at `_FLIPPED` carry a wrong label."""
    task = make_task(kind)
    rng = np.random.default_rng(seed)
    num = task.num_classes
    if kind is TaskKind.MULTILABEL:
        truth = (rng.random((_N, num)) < 0.4).astype(int)
        truth[:num] = np.eye(num, dtype=int)
        probs = np.clip(np.where(truth == 1, 0.85, 0.1) + rng.normal(0, 0.06, truth.shape), 0.01, 0.99)
        given = truth.copy()
        for position in _FLIPPED:
            given[position, position % num] ^= 1  # one label of the set is wrong, and clearly so
            probs[position, position % num] = 0.98 if truth[position, position % num] else 0.02
            probs[position, (position + 1) % num] = 0.45  # either side of one half: out of the suggested set
            probs[position, (position + 2) % num] = 0.55  # and in it
        labels = [" ".join(task.classes[j] for j in np.flatnonzero(row)) for row in given]
        cleanlab_given: object = [list(np.flatnonzero(row)) for row in given]
    else:
        truth = np.arange(_N) % num
        probs = rng.dirichlet(np.ones(num), _N) * 0.3
        probs[np.arange(_N), truth] += 0.7
        flipped = list(_FLIPPED)
        probs[flipped] = 0.02 / (num - 1)
        probs[flipped, truth[flipped]] = 0.98  # a clear error: confidently another class
        given = truth.copy()
        given[flipped] = (truth[flipped] + 1) % num
        labels = [task.classes[j] for j in given]
        cleanlab_given = given
    rows = rng.permutation(_N) * 3 + 7
    frame = pd.DataFrame({"row": rows, "fold": np.arange(_N) % 5, "label": labels})
    frame = pd.concat([frame, pd.DataFrame(probs, columns=[f"p:{c}" for c in task.classes])], axis=1)
    return frame, task, cleanlab_given, probs


def test_ranking_matches_cleanlab(kind: TaskKind) -> None:
    frame, task, given, probs = _out_of_fold(kind)
    issues = find_label_issues(frame, task)
    expected = reference_label_issues(kind, given, probs)
    assert [issue["row"] for issue in issues] == [int(frame["row"][i]) for i, _ in expected]
    np.testing.assert_allclose([issue["score"] for issue in issues], [s for _, s in expected], rtol=0, atol=1e-12)
    assert [issue["given"] for issue in issues] == [frame["label"][i] for i, _ in expected]
    # The planted errors lead: the probabilities contradict them most.
    assert {issue["row"] for issue in issues[: len(_FLIPPED)]} == {int(frame["row"][i]) for i in _FLIPPED}


def test_issue_fields(kind: TaskKind) -> None:
    frame, task, _, probs = _out_of_fold(kind)
    issues = find_label_issues(frame, task)
    assert issues and all(set(issue) == set(LabelIssue.__annotations__) for issue in issues)
    scores = [issue["score"] for issue in issues]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    position = {int(row): i for i, row in enumerate(frame["row"])}
    for issue in issues:
        p = probs[position[issue["row"]]]
        if kind is TaskKind.MULTILABEL:  # the most probable set: every label above one half
            assert issue["suggested"] == " ".join(task.classes[j] for j in np.flatnonzero(p > 0.5))
        else:
            assert issue["suggested"] == task.classes[int(p.argmax())]
            assert issue["score"] == pytest.approx(1.0 - p[task.classes.index(issue["given"])], abs=1e-12)
        assert isinstance(issue["row"], int) and isinstance(issue["score"], float)


def test_reads_the_frame_loaded_from_csv(kind: TaskKind, tmp_path: pytest.TempPathFactory) -> None:
    """Integer classes come back from out_of_fold.csv as strings; they are matched as written."""
    frame, task, _, _ = _out_of_fold(kind)
    if kind is not TaskKind.MULTILABEL:
        task = Task(kind=kind, classes=tuple(range(task.num_classes)))
        frame = frame.assign(label=frame["label"].map({c: str(i) for i, c in enumerate(make_task(kind).classes)}))
        frame.columns = [*frame.columns[:3], *(f"p:{i}" for i in range(task.num_classes))]
    path = tmp_path / "oof.csv"  # type: ignore[operator]
    frame.to_csv(path, index=False)
    loaded = pd.read_csv(path, keep_default_na=False, dtype={"label": str})
    assert find_label_issues(loaded, task) == find_label_issues(frame, task)


def test_confident_right_labels_give_no_issue() -> None:
    task = make_task("multiclass")
    given = np.arange(40) % task.num_classes
    probs = np.full((40, task.num_classes), 0.02)
    probs[np.arange(40), given] = 0.94
    frame = pd.DataFrame({"row": range(40), "label": [task.classes[j] for j in given]})
    frame = pd.concat([frame, pd.DataFrame(probs, columns=[f"p:{c}" for c in task.classes])], axis=1)
    assert find_label_issues(frame, task) == []


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        pytest.param(lambda f: f.drop(columns="p:cat"), r"lack the column\(s\) \['p:cat'\].*expected `row`", id="col"),
        pytest.param(lambda f: f.drop(columns="row"), r"lack the column\(s\) \['row'\]", id="row"),
        pytest.param(
            lambda f: f.assign(label=["cow", *f["label"][1:]]),
            r"1 label\(s\) .* not classes of the run, e.g. \['cow'\]; expected one of \['bird'",
            id="unknown-label",
        ),
        pytest.param(
            lambda f: f.assign(label=f["label"].replace("fish", "dog")),
            r"1 class\(es\) have no row with that given label.*Pass the whole out-of-fold frame",
            id="class-without-rows",
        ),
    ],
)
def test_bad_frames_are_refused(change: object, fragment: str) -> None:
    frame, task, _, _ = _out_of_fold(TaskKind.MULTICLASS)
    with pytest.raises(DataError, match=fragment):
        find_label_issues(change(frame), task)  # type: ignore[operator]


def test_unknown_multilabel_label_is_refused() -> None:
    frame, task, _, _ = _out_of_fold(TaskKind.MULTILABEL)
    frame.loc[3, "label"] = "cloud fog"
    with pytest.raises(DataError, match=r"not labels of the run, e.g. \['fog'\], reading each row's set split on ' '"):
        find_label_issues(frame, task)


def test_format_shows_the_top_rows() -> None:
    issues = [LabelIssue(row=i, given="a", suggested="" if i == 0 else "b", score=1 - i / 100) for i in range(12)]
    lines = format_label_issues(issues, top=3).splitlines()
    assert lines[0].startswith("likely label errors: 12 rows, the 3 most likely shown (score = 1 - cleanlab's")
    assert lines[1:] == [
        "  row  given  suggested  score",
        "    0  a      (none)     1.000",
        "    1  a      b          0.990",
        "    2  a      b          0.980",
    ]
    assert format_label_issues([]).startswith("likely label errors: none found")
