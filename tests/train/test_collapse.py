"""labelwise.train.collapse: per-class counts against sklearn, and the documented collapse rules at their edges.

The rule thresholds below are written from the module's documentation (3 items for never-predicted, 5 for zero
recall, 90 % of decisions and of >= 10 other items for dominant, 2 passes of patience), not imported from it.
"""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as skm
import torch

from _factories import make_batch
from labelwise.task import TaskKind
from labelwise.train.collapse import collapse_signs, collapse_streak, count_decisions, is_collapsed


def test_count_decisions_matches_a_confusion_matrix(kind: TaskKind) -> None:
    task, logits, targets = make_batch(kind, seed=3, n=80)
    z = logits.numpy()
    # The untuned rule, from the logits directly: a logit >= 0 is P >= 0.5; argmax of logits is argmax of softmax.
    if kind is TaskKind.MULTILABEL:
        decided, held = z >= 0, targets.numpy().astype(bool)
        expected = np.stack([decided.sum(0), held.sum(0), (decided & held).sum(0)])
    else:
        decided = (z[:, 0] >= 0).astype(int) if kind is TaskKind.BINARY else z.argmax(axis=1)
        matrix = skm.confusion_matrix(targets.long().numpy(), decided, labels=range(task.num_classes))
        expected = np.stack([matrix.sum(axis=0), matrix.sum(axis=1), np.diag(matrix)])  # predicted, held, hits
    counts = count_decisions(logits, targets, task)
    assert counts.dtype == torch.long
    np.testing.assert_array_equal(counts.numpy(), expected)


def _signs(pred: list[int], items: list[int], hits: list[int]) -> list[tuple[str, int]]:
    """The (rule, class) of each sign in one single-label pass; the counts of each case below are consistent."""
    found = collapse_signs(
        torch.tensor(pred), torch.tensor(items), torch.tensor(hits), num_items=sum(items), kind="multiclass"
    )
    return [(sign.rule, sign.index) for sign in found]


@pytest.mark.parametrize(
    ("pred", "items", "hits", "expected"),
    [
        # never predicted: from 3 items of the class on
        pytest.param([40, 20, 0], [37, 20, 3], [37, 20, 0], [("never_predicted", 2)], id="never-3-items"),
        pytest.param([40, 20, 0], [38, 20, 2], [38, 20, 0], [], id="never-2-items"),
        # zero recall: predicted for some items, none of its own, from 5 items on
        pytest.param([35, 20, 5], [35, 20, 5], [30, 20, 0], [("zero_recall", 2)], id="zero-recall-5-items"),
        pytest.param([36, 20, 4], [36, 20, 4], [32, 20, 0], [], id="zero-recall-4-items"),
        pytest.param([35, 20, 5], [35, 20, 5], [31, 20, 1], [], id="one-hit"),
        # dominant: 90 of 100 decisions and 9 of the 10 items of the other classes
        pytest.param([90, 6, 4], [90, 6, 4], [81, 1, 0], [("dominant", 0)], id="dominant"),
        pytest.param([89, 7, 4], [90, 6, 4], [80, 1, 0], [], id="89-percent-of-decisions"),
        pytest.param([90, 6, 4], [90, 6, 4], [82, 2, 0], [], id="8-of-10-others"),
        # 9 other items, all taken, are too few to say "almost all of them" (one item is 11 %)
        pytest.param([90, 4, 3, 3], [91, 4, 3, 2], [81, 0, 0, 0], [], id="9-others"),
    ],
)
def test_collapse_rules_at_their_edges(
    pred: list[int], items: list[int], hits: list[int], expected: list[tuple[str, int]]
) -> None:
    assert _signs(pred, items, hits) == expected


def test_dominant_applies_to_single_label_kinds_only(kind: TaskKind) -> None:
    """Multilabel: each label is its own yes/no decision, so one label flagged on almost every item is no collapse."""
    pred, items, hits = ([95, 50], [50, 50], [50, 50]) if kind is TaskKind.MULTILABEL else ([95, 5], [50, 50], [50, 5])
    signs = collapse_signs(torch.tensor(pred), torch.tensor(items), torch.tensor(hits), num_items=100, kind=kind)
    assert [sign.rule for sign in signs] == ([] if kind is TaskKind.MULTILABEL else ["dominant"])


def test_a_sign_describes_what_was_seen() -> None:
    classes = ("benign", "malignant")
    dominant, never = collapse_signs(
        torch.tensor([60, 0]), torch.tensor([50, 10]), torch.tensor([50, 0]), num_items=60, kind="binary"
    )
    assert (dominant.rule, never.rule) == ("dominant", "never_predicted")
    assert never.describe(classes, num_items=60) == "'malignant' (10 of 60 validation items, 16.7%) was never predicted"
    assert dominant.describe(classes, num_items=60) == (
        "'benign' took 10 of the 10 items of the other classes (100%) and 60 of all 60 decisions"
    )
    (zero,) = collapse_signs(
        torch.tensor([55, 5]), torch.tensor([55, 5]), torch.tensor([50, 0]), num_items=60, kind="binary"
    )
    assert zero.describe(classes, num_items=60) == (
        "'malignant' (5 of 60 validation items, 8.3%) was predicted 5 times but never for one of its own items "
        "(recall 0)"
    )


# (collapsed, improved) per validation pass
C, CI, OK = (True, False), (True, True), (False, True)


@pytest.mark.parametrize(
    ("passes", "streak", "during", "at_end"),
    [
        pytest.param([], 0, False, False, id="no-passes"),
        pytest.param([OK, C, C], 2, True, True, id="two-collapsed-not-improving"),
        pytest.param([C, OK, C], 1, False, False, id="interrupted"),
        pytest.param([CI, CI, CI], 0, False, True, id="improving-all-along-but-never-out"),
        pytest.param([C], 1, False, True, id="shorter-than-patience"),
        pytest.param([OK, C], 1, False, False, id="ends-on-one"),
        pytest.param([C, CI, C], 1, False, True, id="improvement-breaks-the-streak"),
    ],
)
def test_collapse_needs_two_passes_without_improvement(
    passes: list[tuple[bool, bool]], streak: int, during: bool, at_end: bool
) -> None:
    assert collapse_streak(passes) == streak
    assert is_collapsed(passes) is during
    assert is_collapsed(passes, final=True) is at_end


def test_patience_is_the_streak_that_makes_a_finding() -> None:
    passes = [OK, C, C]
    assert is_collapsed(passes, patience=3) is False
    assert is_collapsed([*passes, C], patience=3) is True
