"""Likely label errors: the rows whose given label a cross-fitted run's out-of-fold probabilities most contradict.

Confident learning (Northcutt et al., 2021, https://jair.org/index.php/jair/article/view/12125) as cleanlab
maintains it, not a rewrite: cleanlab's ``find_label_issues`` decides which rows are issues (``prune_by_noise_rate``,
its default: per pair of given and likely true class, the rows with the largest margin for the other class, as many
as the confident joint estimates are mislabelled) and orders them by its self-confidence label quality, which
`get_label_quality_scores` returns for every row. Multilabel rows go through ``cleanlab.multilabel_classification``
(one-vs-rest per label; per-label qualities pooled by cleanlab's default exponential moving average).

The probabilities must be out of fold (`labelwise.out_of_fold`): a model that trained on a row has learned its label,
right or wrong, and would vouch for it.

``score`` is ``1 - quality``, in [0, 1], higher meaning more likely wrong. For binary and multiclass rows it is one
minus the out-of-fold probability of the given label; for multilabel rows it pools one minus the probability of each
label's given state (present or absent), weighted towards the worst labels. ``suggested`` is the most probable answer
under the same probabilities: the argmax class, or the set of labels whose probability exceeds 0.5 (with independent
per-label probabilities, that set is the most probable one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypedDict

import numpy as np
import pandas as pd

from labelwise.errors import DataError
from labelwise.task import Task, TaskKind

__all__ = ["LabelIssue", "find_label_issues", "format_label_issues"]

SHOWN = 10  # issues in the text summary (`format_label_issues`); --json and `clf.label_issues()` give all


class LabelIssue(TypedDict):
    """One likely label error: ``row`` (0-based row of the input table), the ``given`` and ``suggested`` labels as
    written (multilabel sets joined by the task's ``label_sep``) and ``score`` (1 - cleanlab's label quality)."""

    row: int
    given: str
    suggested: str
    score: float


# (given labels, probs) -> (row positions flagged as issues, most likely first; every row's label quality)
_Ranker = Callable[[Any, np.ndarray], tuple[np.ndarray, np.ndarray]]


def find_label_issues(out_of_fold: pd.DataFrame, task: Task) -> list[LabelIssue]:
    """Rank the rows whose given label the out-of-fold probabilities most contradict, most likely first.

    Args:
        out_of_fold: a cross-fitted run's out-of-fold predictions (`Classifier.out_of_fold`, ``out_of_fold.csv``):
            ``row``, ``label`` (as written) and one ``p:<class>`` column per class of ``task``.
        task: the run's Task; its classes name the probability columns and read the labels.

    Returns:
        the rows cleanlab's confident learning finds mislabelled, as `LabelIssue` dicts ordered by ``score``
        (1 - cleanlab's self-confidence label quality) from the highest; empty when none is found.

    Raises:
        DataError: a ``p:<class>`` column is missing, or a label is not one of the task's classes.

    Example:
        >>> task = Task(kind="binary", classes=("no", "yes"))
        >>> probs = [0.9, 0.8, 0.85, 0.1, 0.2, 0.15, 0.05, 0.95, 0.9, 0.1]
        >>> frame = pd.DataFrame({"row": range(10), "label": ["no"] * 3 + ["yes"] * 3 + ["no", "yes"] * 2,
        ...                       "p:no": probs, "p:yes": [1 - p for p in probs]})
        >>> [(issue["row"], issue["given"], issue["suggested"]) for issue in find_label_issues(frame, task)]
        [(6, 'no', 'yes'), (7, 'yes', 'no')]
    """
    probs = _probs(out_of_fold, task)
    multilabel = task.kind is TaskKind.MULTILABEL
    given = _multilabel_indices(out_of_fold["label"], task) if multilabel else _class_indices(out_of_fold, task)
    flagged, quality = _RANKERS[task.kind](given, probs)
    suggested = _multilabel_suggested(probs, task) if multilabel else [str(task.classes[j]) for j in probs.argmax(1)]
    rows, labels = out_of_fold["row"].to_numpy(), out_of_fold["label"].astype(str).to_numpy()
    return [
        LabelIssue(row=int(rows[i]), given=str(labels[i]), suggested=suggested[i], score=float(1.0 - quality[i]))
        for i in flagged
    ]


def format_label_issues(issues: Sequence[LabelIssue], *, top: int = SHOWN) -> str:
    """The first ``top`` issues as an aligned text table (row, given, suggested, score), with how many there are.

    Example:
        >>> print(format_label_issues([LabelIssue(row=6, given="no", suggested="yes", score=0.95)]))
        likely label errors: 1 row (score = 1 - cleanlab's label quality of the given label, out of fold)
          row  given  suggested  score
            6  no     yes        0.950
    """
    if not issues:
        return "likely label errors: none found (cleanlab's confident learning on the out-of-fold probabilities)"
    shown = list(issues[:top])
    more = f", the {len(shown)} most likely shown" if len(issues) > len(shown) else ""
    head = f"likely label errors: {len(issues)} row{'s' if len(issues) != 1 else ''}{more} "
    head += "(score = 1 - cleanlab's label quality of the given label, out of fold)"
    cells = [("row", "given", "suggested", "score")]
    cells += [(str(i["row"]), _cell(i["given"]), _cell(i["suggested"]), f"{i['score']:.3f}") for i in shown]
    widths = [max(len(line[k]) for line in cells) for k in range(4)]
    lines = [
        f"  {row:>{widths[0]}}  {given:<{widths[1]}}  {suggested:<{widths[2]}}  {score}".rstrip()
        for row, given, suggested, score in cells
    ]
    return "\n".join([head, *lines])


def _cell(label: str) -> str:
    # An empty multilabel set would be an invisible cell; a long one would push the score off the line.
    text = label if label else "(none)"
    return text if len(text) <= 40 else text[:37] + "..."


# -- reading the frame ---------------------------------------------------------------------------------------------
def _probs(frame: pd.DataFrame, task: Task) -> np.ndarray:
    """``(N, C)`` float64 out-of-fold probabilities in ``task.classes`` order."""
    columns = [f"p:{cls}" for cls in task.classes]
    missing = [column for column in columns if column not in frame.columns]
    if missing or "label" not in frame.columns or "row" not in frame.columns:
        absent = [name for name in ("row", "label") if name not in frame.columns] + missing
        raise DataError(
            f"the out-of-fold predictions lack the column(s) {absent[:5]!r}; expected `row`, `label` and one "
            f"`p:<class>` column per class of the run ({len(columns)}). Read them from the run's out_of_fold.csv "
            "(`labelwise.load(RUN).out_of_fold`) rather than a copy edited by hand."
        )
    return np.asarray(frame[columns], dtype=np.float64)


def _class_indices(frame: pd.DataFrame, task: Task) -> np.ndarray:
    """Each row's given class as its index in ``task.classes``; labels are matched as written (``str``)."""
    index = {str(cls): j for j, cls in enumerate(task.classes)}
    labels = frame["label"].astype(str)
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise DataError(
            f"{len(unknown)} label(s) of the out-of-fold predictions are not classes of the run, e.g. {unknown[:5]!r}; "
            f"expected one of {list(index)[:5]!r}. The out-of-fold file belongs to another run."
        )
    return np.asarray(labels.map(index), dtype=np.int64)


def _multilabel_indices(labels: pd.Series, task: Task) -> list[list[int]]:
    """Each row's given label set as sorted indices into ``task.classes``, split on ``task.label_sep``."""
    index = {str(cls): j for j, cls in enumerate(task.classes)}
    sets = [[part for part in str(label).split(task.label_sep) if part] for label in labels]
    unknown = sorted({part for parts in sets for part in parts if part not in index})
    if unknown:
        raise DataError(
            f"{len(unknown)} label(s) of the out-of-fold predictions are not labels of the run, e.g. {unknown[:5]!r}, "
            f"reading each row's set split on {task.label_sep!r}; expected labels among {list(index)[:5]!r}. The "
            "out-of-fold file belongs to another run."
        )
    return [sorted(index[part] for part in parts) for parts in sets]


def _multilabel_suggested(probs: np.ndarray, task: Task) -> list[str]:
    return [task.label_sep.join(str(task.classes[j]) for j in np.flatnonzero(row > 0.5)) for row in probs]


# -- cleanlab, one ranker per kind ------------------------------------------------------------------------------------
# n_jobs=1: cleanlab otherwise forks a process pool inside a process that holds torch's threads, for arrays that
# one core handles in milliseconds.
def _single_label_issues(given: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from cleanlab.filter import find_label_issues as cleanlab_issues
    from cleanlab.rank import get_label_quality_scores

    _check_every_class_given(np.bincount(given, minlength=probs.shape[1]))
    flagged = cleanlab_issues(given, probs, return_indices_ranked_by="self_confidence", n_jobs=1)
    quality = get_label_quality_scores(given, probs, method="self_confidence")
    return np.asarray(flagged, dtype=np.int64), np.asarray(quality, dtype=np.float64)


def _multilabel_issues(given: list[list[int]], probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from cleanlab.multilabel_classification.filter import find_label_issues as cleanlab_issues
    from cleanlab.multilabel_classification.rank import get_label_quality_scores

    flagged = cleanlab_issues(given, probs, return_indices_ranked_by="self_confidence", n_jobs=1)
    quality = get_label_quality_scores(given, probs, method="self_confidence")
    return np.asarray(flagged, dtype=np.int64), np.asarray(quality, dtype=np.float64)


def _check_every_class_given(counts: np.ndarray) -> None:
    # cleanlab asserts that every class has a given label; a cross-fitted run always has (its folds are stratified
    # on every class), so only a hand-made frame gets here.
    if (counts == 0).any():
        raise DataError(
            f"{int((counts == 0).sum())} class(es) have no row with that given label among the out-of-fold "
            "predictions; confident learning estimates each class's noise from its own rows. Pass the whole "
            "out-of-fold frame of a cross-fitted run."
        )


_RANKERS: dict[TaskKind, _Ranker] = {
    TaskKind.BINARY: _single_label_issues,
    TaskKind.MULTICLASS: _single_label_issues,
    TaskKind.MULTILABEL: _multilabel_issues,
}
