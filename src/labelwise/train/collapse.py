"""Collapse: the rule `labelwise.train.guards.CollapseGuard` applies, as pure functions over per-class counts.

After each validation pass, the decisions the untuned model would make (`DecisionRule.default`: P >= 0.5 for
binary and for each multilabel label, argmax for multiclass) are counted per class against the labels
(`count_decisions`), and `collapse_signs` looks for three signs:

- ``never_predicted``: a class with at least `MIN_NEVER_PREDICTED` = 3 validation items is decided for none of
  the N items. Zero decisions in N items bound the rate at which the model decides the class below
  ``1 - 0.05 ** (1 / N)`` < 3/N at 95% confidence (the "rule of three"); with 3 or more items of the class,
  its frequency n/N is at or above that bound, so the model decides it less often than it occurs, for any N.
  With fewer items "never predicted" is what a working model often shows by chance.
- ``zero_recall``: a class with at least `MIN_ZERO_RECALL` = 5 items is decided for some items, but for none
  of its own. Zero hits in n items bound the recall below ``1 - 0.05 ** (1 / n)`` at 95%: below one half
  (0.45) from n = 5 on, so the model misses most of the class; with fewer items a fair model can miss them all.
- ``dominant`` (binary and multiclass): one class takes at least `DOMINANT_SHARE` = 90% of all decisions and
  at least 90% of the items of the *other* classes, counted over at least `MIN_DOMINATED` = 10 of them: "one
  class takes almost all predictions while the labels say otherwise". The second share is what the labels say:
  on an imbalanced validation set (95% one class) 95% of the decisions for the majority is no collapse by
  itself; the first keeps a model that is merely wrong, spreading its decisions, from counting. 90% is "almost
  all" with room for a few stray decisions; 9 of 10 items still have a 95% lower bound of 0.61, a majority,
  where with fewer items one item would swing the share by more than the 10% margin.
  For a multilabel task each label is its own yes/no decision, so only the two per-label signs apply.

A pass showing any sign is a collapsed pass (``collapse = 1`` in ``metrics.csv``). The finding (`is_collapsed`)
needs `COLLAPSE_PATIENCE` = 2 consecutive passes that show a sign *and do not lower the best validation loss*:

- A model learning its way out of its initial output bias shows signs while its loss falls every pass: the
  digits CNN decides 262 of its 270 validation items as one class in its first pass and some digits for no
  item until its fourth; the multilabel demo predicts some labels for no item in its first ten passes. Those
  passes improve the loss, so they do not count.
- Training at a high learning rate swings through single collapsed passes and recovers: one pass is noise, two
  in a row without improvement is a collapse that lasted an epoch of updates. Measured on the imbalanced cancer
  demo with ``balance="none"`` (3 malignant of 60 validation items): at lr 1 to 10 the MLP mostly collapses for
  single passes; the guard reports 0 of 4 seeds at lr 3, 1 at lr 10, 2 at lr 30, 3 at lr 100, 4 at lr 300.

When fit ends, a run whose every pass collapsed is a finding too: the model returned never decided every class
(this covers runs shorter than the patience, and a model that never left its initial bias).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from labelwise.decide.rule import DecisionRule
from labelwise.task import Task, TaskKind

__all__ = [
    "COLLAPSE_PATIENCE",
    "DOMINANT_SHARE",
    "MIN_DOMINATED",
    "MIN_NEVER_PREDICTED",
    "MIN_ZERO_RECALL",
    "CollapseSign",
    "collapse_signs",
    "collapse_streak",
    "count_decisions",
    "is_collapsed",
]

MIN_NEVER_PREDICTED = 3
MIN_ZERO_RECALL = 5
DOMINANT_SHARE = 0.9
MIN_DOMINATED = 10
COLLAPSE_PATIENCE = 2


def count_decisions(logits: torch.Tensor, targets: torch.Tensor, task: Task) -> torch.Tensor:
    """Per-class counts of the untuned decisions (0.5 / argmax) on one batch.

    Args:
        logits: ``(N, task.head_width)`` raw head outputs.
        targets: ``task.encode(labels)`` for the same rows.
        task: the Task.

    Returns:
        ``(3, num_classes)`` long: row 0 items decided as each class (multilabel: given the label), row 1 items of
        each class (multilabel: holding the label), row 2 items of each class decided as it (hits).

    Example:
        >>> task = Task(kind="binary", classes=("benign", "malignant"))
        >>> count_decisions(torch.tensor([[-2.0], [-1.0], [3.0]]), torch.tensor([0.0, 1.0, 1.0]), task).tolist()
        [[2, 1], [1, 2], [1, 1]]
    """
    decisions = DecisionRule.default(task).decide(task.probabilities(logits.detach().float().cpu()))
    targets = targets.detach().cpu()
    if task.kind is TaskKind.MULTILABEL:
        decided, held = decisions.bool(), targets.bool()
        return torch.stack([decided.sum(dim=0), held.sum(dim=0), (decided & held).sum(dim=0)]).long()
    labels, width = targets.long(), task.num_classes
    hits = labels[decisions == labels]
    return torch.stack([torch.bincount(v, minlength=width) for v in (decisions, labels, hits)])


@dataclass(frozen=True)
class CollapseSign:
    """One sign of collapse in one validation pass (see the module docstring for the rules).

    Attributes:
        rule: ``"never_predicted"``, ``"zero_recall"`` or ``"dominant"``.
        index: the class (index into ``task.classes``).
        items: validation items of the class (multilabel: items holding the label).
        predicted: items decided as the class.
        hits: items of the class decided as it.
        others: ``dominant`` only: items of the other classes, and ``taken`` how many of them were decided as
            this class.
    """

    rule: Literal["never_predicted", "zero_recall", "dominant"]
    index: int
    items: int
    predicted: int
    hits: int
    others: int = 0
    taken: int = 0

    def describe(self, classes: tuple[Any, ...], *, num_items: int) -> str:
        """One clause saying what was seen, naming the class."""
        name = repr(classes[self.index])
        of = f"{self.items} of {num_items} validation items, {self.items / max(num_items, 1):.1%}"
        if self.rule == "never_predicted":
            return f"{name} ({of}) was never predicted"
        if self.rule == "zero_recall":
            return f"{name} ({of}) was predicted {self.predicted} times but never for one of its own items (recall 0)"
        return (
            f"{name} took {self.taken} of the {self.others} items of the other classes "
            f"({self.taken / self.others:.0%}) and {self.predicted} of all {num_items} decisions"
        )


def collapse_signs(
    pred_counts: torch.Tensor,
    label_counts: torch.Tensor,
    hits: torch.Tensor,
    *,
    num_items: int,
    kind: TaskKind | str,
) -> list[CollapseSign]:
    """The signs of collapse in one validation pass's per-class counts (`count_decisions`).

    Args:
        pred_counts: ``(C,)`` items decided as each class.
        label_counts: ``(C,)`` items of each class (multilabel: items holding each label).
        hits: ``(C,)`` items of each class decided as it.
        num_items: items in the pass (rows; for single-label tasks the sum of ``label_counts``).
        kind: the Task kind; ``dominant`` applies to binary and multiclass only.

    Returns:
        the signs found, by class; empty when the pass shows no collapse.

    Example:
        >>> signs = collapse_signs(torch.tensor([60, 0]), torch.tensor([57, 3]), torch.tensor([57, 0]),
        ...                        num_items=60, kind="binary")
        >>> [(sign.rule, sign.index) for sign in signs]
        [('never_predicted', 1)]
    """
    predicted, items, correct = (torch.as_tensor(t).long().tolist() for t in (pred_counts, label_counts, hits))
    signs = []
    for index, (n_pred, n_items, n_hits) in enumerate(zip(predicted, items, correct, strict=True)):
        if n_pred == 0 and n_items >= MIN_NEVER_PREDICTED:
            signs.append(CollapseSign("never_predicted", index, n_items, n_pred, n_hits))
        elif n_pred > 0 and n_hits == 0 and n_items >= MIN_ZERO_RECALL:
            signs.append(CollapseSign("zero_recall", index, n_items, n_pred, n_hits))
        others, taken = num_items - n_items, n_pred - n_hits
        # Almost all decisions, and almost all of the items the labels give to other classes: a model that is
        # merely wrong (e.g. anti-correlated) spreads its decisions and takes only the first.
        dominant = n_pred >= DOMINANT_SHARE * num_items and others >= MIN_DOMINATED and taken >= DOMINANT_SHARE * others
        if dominant and TaskKind(kind) is not TaskKind.MULTILABEL:
            signs.append(CollapseSign("dominant", index, n_items, n_pred, n_hits, others=others, taken=taken))
    return signs


def is_collapsed(passes: list[tuple[bool, bool]], *, patience: int = COLLAPSE_PATIENCE, final: bool = False) -> bool:
    """Whether the validation passes so far make a collapse finding.

    Args:
        passes: per pass, ``(collapsed, improved)``: whether it showed any `collapse_signs`, and whether it
            lowered the best validation loss so far.
        patience: the streak that makes a finding.
        final: fit has ended.

    Returns:
        True when the last ``patience`` passes all collapsed without improving the validation loss; when fit has
        ended, also when every pass collapsed (the returned model never decided every class; this covers runs
        shorter than ``patience``).

    Example:
        >>> is_collapsed([(False, True), (True, False), (True, False)]), is_collapsed([(True, True), (True, True)])
        (True, False)
        >>> falling, ends_on_one = [(True, True), (True, True)], [(False, True), (True, False)]
        >>> is_collapsed(falling, final=True), is_collapsed(ends_on_one, final=True)
        (True, False)
    """
    ended_collapsed = final and bool(passes) and all(collapsed for collapsed, _ in passes)
    return ended_collapsed or collapse_streak(passes) >= patience


def collapse_streak(passes: list[tuple[bool, bool]]) -> int:
    """How many passes at the end of ``passes`` (``(collapsed, improved)`` each) collapsed without improving.

    Example:
        >>> collapse_streak([(True, True), (False, True), (True, False), (True, False)])
        2
    """
    streak = 0
    for collapsed, improved in reversed(passes):
        if not collapsed or improved:
            break
        streak += 1
    return streak
