"""Top-k outputs and ranking metrics for large label spaces.

With 10^5 classes a table of one probability per class is neither writable nor readable; what a user wants is
the k most probable classes of each item (`Ranked`) and metrics that score such rankings:

- ``precision@k``: true classes among the top k, divided by k (single-label ``precision@1`` is accuracy).
- ``recall@k``: true classes among the top k, divided by the item's number of true classes (single-label: the
  hit rate, sklearn's ``top_k_accuracy_score``).
- ``macro_recall@1/head``, ``/torso``, ``/tail``: per-class recall@1 (the fraction of a class's items whose top
  class is that class) averaged over the classes of one training-frequency segment that occur in the evaluated
  targets. A segment with no such class is left out of the metrics.

Both per-item averages run over the items with at least one true class (multilabel items with none have nothing
to rank). Segments (`frequency_segments`): sort classes by training rows (multilabel: positives), most frequent
first, ties by class index; **head** = the most frequent classes that together hold the first 50% of the training
rows, **torso** the next 30%, **tail** the remaining 20% plus every class with no training row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from labelwise._arrays import as_numpy
from labelwise.errors import ConfigError
from labelwise.task import Task, TaskKind

if TYPE_CHECKING:
    import torch

# torch is imported inside the functions that use it: `predict --backend onnx` writes `ranked_columns` from numpy
# arrays without it.

__all__ = [
    "AUTO_TOP_K",
    "AUTO_TOP_K_ABOVE",
    "SEGMENTS",
    "Ranked",
    "auto_top_k",
    "check_top_k",
    "frequency_segments",
    "rank",
    "ranked_columns",
    "ranking_metrics",
    "top_k_columns",
]

# Above this many classes predict writes top-k columns instead of one probability column per class: 256 columns
# are still a readable CSV, 10^5 are a gigabyte of mostly zeros. At or below it, asked-for top-k columns are added
# beside the p:<class> columns (design.md's predictions.csv contract keeps one column per class).
AUTO_TOP_K_ABOVE = 256
AUTO_TOP_K = 5
# Cumulative shares of the training rows where head and torso end (the rest is tail).
SEGMENTS = (("head", 0.5), ("torso", 0.8), ("tail", 1.0))


@dataclass(frozen=True)
class Ranked:
    """The k most probable classes of each item.

    Attributes:
        classes: ``(N, k)`` long class indices, most probable first (ties: lower index first).
        probs: ``(N, k)`` float calibrated probabilities of those classes.
    """

    classes: torch.Tensor
    probs: torch.Tensor

    @property
    def k(self) -> int:
        """Number of ranked classes per item."""
        return int(self.classes.shape[1])


def rank(probs: torch.Tensor, k: int) -> Ranked:
    """The ``k`` most probable classes of each row of full probabilities, in a stable order.

    Args:
        probs: ``(N, C)`` float probabilities in ``task.classes`` order.
        k: classes per item, ``1 <= k <= C``.

    Raises:
        ConfigError: ``probs`` is not 2-D, or ``k`` is outside ``1..C``.

    Example:
        >>> import torch
        >>> ranked = rank(torch.tensor([[0.2, 0.5, 0.3], [0.4, 0.2, 0.4]]), 2)
        >>> ranked.classes.tolist(), ranked.probs.tolist()
        ([[1, 2], [0, 2]], [[0.5, 0.30000001192092896], [0.4000000059604645, 0.4000000059604645]])
    """
    if probs.ndim != 2:
        raise ConfigError(f"probs must be (N, C) class probabilities, got shape {tuple(probs.shape)}.")
    check_top_k(k, num_classes=int(probs.shape[1]))
    import torch

    # A stable sort keeps tied classes in index order; torch.topk does not promise any order among ties.
    values, indices = torch.sort(probs, dim=1, descending=True, stable=True)
    return Ranked(classes=indices[:, :k].contiguous(), probs=values[:, :k].contiguous())


def check_top_k(k: Any, *, num_classes: int | None) -> int:
    """Return ``k`` when it is a number of classes ``1..num_classes``, else raise `ConfigError`.

    The one rule and message for ``--top-k`` (``top_k=``) at training, `predict` and in Python: any count from 1 up
    to every class. ``num_classes`` None (options checked before the data is read) checks that ``k`` is a count.

    Example:
        >>> check_top_k(5, num_classes=300), check_top_k(3, num_classes=3)
        (5, 3)
    """
    too_many = num_classes is not None and isinstance(k, int) and k > num_classes
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or too_many:
        upto = "the number of classes" if num_classes is None else f"{num_classes}, the number of classes"
        raise ConfigError(
            f"--top-k {k!r} is not a number of classes to rank; expected a whole number from 1 to {upto}. "
            "Pass --top-k (top_k=) in that range."
        )
    return k


def auto_top_k(num_classes: int) -> int | None:
    """`AUTO_TOP_K` when a run has more than `AUTO_TOP_K_ABOVE` classes, else None (one column per class).

    Example:
        >>> auto_top_k(10), auto_top_k(100_000)
        (None, 5)
    """
    return AUTO_TOP_K if num_classes > AUTO_TOP_K_ABOVE else None


def ranked_columns(ranked: Ranked, task: Task) -> dict[str, Any]:
    """The ``predictions.csv`` columns of a ranking: ``top1..topK`` (labels), then ``p_top1..p_topK``.

    Example:
        >>> task = Task(kind="multiclass", classes=("a", "b", "c"))
        >>> import torch
        >>> ranked_columns(rank(torch.tensor([[0.2, 0.5, 0.3]]), 2), task)["top1"]
        ['b']
    """
    return top_k_columns(as_numpy(ranked.classes), as_numpy(ranked.probs), task)


def top_k_columns(indices: np.ndarray, probs: np.ndarray, task: Task) -> dict[str, Any]:
    """`ranked_columns` from numpy arrays: ``(N, k)`` class indices and their ``(N, k)`` probabilities."""
    names = np.empty(task.num_classes, dtype=object)
    names[:] = list(task.classes)  # element-wise, so a class stays the str/int/bool it is
    probs = probs.astype(np.float64)
    labels = {f"top{j + 1}": names[indices[:, j]].tolist() for j in range(indices.shape[1])}
    return labels | {f"p_top{j + 1}": probs[:, j] for j in range(indices.shape[1])}


def frequency_segments(train_counts: np.ndarray) -> dict[str, np.ndarray]:
    """Class indices of the head, torso and tail segments by training frequency (the rule in the module doc).

    Example:
        >>> {name: idx.tolist() for name, idx in frequency_segments(np.array([50, 5, 30, 15, 0])).items()}
        {'head': [0], 'torso': [2], 'tail': [3, 1, 4]}
    """
    counts = np.asarray(train_counts, dtype=np.int64)
    order = np.argsort(-counts, kind="stable")
    total = max(int(counts.sum()), 1)
    before = (np.cumsum(counts[order]) - counts[order]) / total  # share of rows held by more frequent classes
    segment = np.searchsorted([bound for _, bound in SEGMENTS[:-1]], before, side="right")
    segment[counts[order] == 0] = len(SEGMENTS) - 1
    return {name: order[segment == i] for i, (name, _) in enumerate(SEGMENTS)}


def ranking_metrics(
    ranked: Ranked,
    targets: torch.Tensor,
    task: Task,
    *,
    train_counts: np.ndarray | None,
    ks: tuple[int, ...] = (1, 5),
) -> dict[str, float]:
    """``precision@k``, ``recall@k`` for each k in ``ks``, and the segment macro-recalls (see the module doc).

    Args:
        ranked: the top classes of each item, ``ranked.k >= max(ks)``.
        targets: `Task.encode` of the items' labels: ``(N,)`` class indices, or ``(N, C)`` 0/1 for multilabel.
        task: the Task.
        train_counts: ``(C,)`` training rows per class (multilabel: positives); None leaves out the segments.
        ks: the cut-offs.

    Raises:
        ConfigError: a k above ``ranked.k``, or targets or counts that do not fit the Task.

    Example:
        >>> task = Task(kind="multiclass", classes=("a", "b", "c"))
        >>> import torch
        >>> ranked = rank(torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]]), 2)
        >>> ranking_metrics(ranked, torch.tensor([1, 2]), task, train_counts=None, ks=(1, 2))
        {'precision@1': 0.5, 'recall@1': 0.5, 'precision@2': 0.5, 'recall@2': 1.0}
    """
    hits, num_true = _hits(ranked, targets, task)
    bad = [k for k in ks if not 1 <= k <= ranked.k]
    if bad:
        raise ConfigError(f"ks={ks!r} holds cut-offs {bad!r} outside 1..{ranked.k}, the ranked classes per item.")
    rows = num_true > 0
    metrics: dict[str, float] = {}
    for k in ks:
        found = hits[rows, :k].sum(dim=1).double()
        metrics[f"precision@{k}"] = (found / k).mean().item() if rows.any() else 0.0
        metrics[f"recall@{k}"] = (found / num_true[rows]).mean().item() if rows.any() else 0.0
    if train_counts is not None:
        metrics |= _segment_recalls(ranked, targets, hits, task=task, train_counts=train_counts)
    return metrics


def _hits(ranked: Ranked, targets: torch.Tensor, task: Task) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, k)`` bool: is each ranked class a true class; ``(N,)`` the number of true classes per item."""
    import torch

    classes = ranked.classes.long()
    if task.kind is TaskKind.MULTILABEL:
        if targets.ndim != 2 or targets.shape != (len(classes), task.num_classes):
            raise ConfigError(f"multilabel targets must be (N, {task.num_classes}) 0/1, got {tuple(targets.shape)}.")
        return targets.gather(1, classes) > 0.5, (targets > 0.5).sum(dim=1)
    if targets.ndim != 1 or len(targets) != len(classes):
        raise ConfigError(f"targets must be ({len(classes)},) class indices, got {tuple(targets.shape)}.")
    return classes == targets.long()[:, None], torch.ones(len(targets), dtype=torch.long)


def _segment_recalls(
    ranked: Ranked, targets: torch.Tensor, hits: torch.Tensor, *, task: Task, train_counts: np.ndarray
) -> dict[str, float]:
    counts = np.asarray(train_counts)
    if counts.shape != (task.num_classes,):
        raise ConfigError(f"train_counts must be ({task.num_classes},), one per class, got {counts.shape}.")
    import torch

    top1 = ranked.classes[:, 0].long()
    found = torch.bincount(top1[hits[:, 0]], minlength=task.num_classes).numpy()
    if task.kind is TaskKind.MULTILABEL:
        support = (targets > 0.5).sum(dim=0).numpy()
    else:
        support = torch.bincount(targets.long(), minlength=task.num_classes).numpy()
    metrics = {}
    for name, members in frequency_segments(counts).items():
        present = members[support[members] > 0]
        if present.size:
            metrics[f"macro_recall@1/{name}"] = float(np.mean(found[present] / support[present]))
    return metrics


def output_top_k(top_k: int | None, *, num_classes: int) -> int | None:
    """Classes per item ``predictions.csv`` ranks: ``top_k`` when given (checked), else `auto_top_k`.

    Example:
        >>> output_top_k(None, num_classes=1000), output_top_k(3, num_classes=10)
        (5, 3)
    """
    return auto_top_k(num_classes) if top_k is None else check_top_k(top_k, num_classes=num_classes)


def dense_ranking_metrics(
    probs: torch.Tensor, targets: torch.Tensor, task: Task, *, train_counts: np.ndarray | None, top_k: int | None
) -> dict[str, float]:
    """`ranking_metrics` at k = 1 and 5 (those up to the class count) from full ``(N, C)`` probabilities.

    Only for runs above `AUTO_TOP_K_ABOVE` classes or that give top-k sets (``top_k``); others get ``{}``, so the
    metrics of small runs stay as they were.
    """
    if task.num_classes <= AUTO_TOP_K_ABOVE and top_k is None:
        return {}
    ks = tuple(k for k in (1, 5) if k <= task.num_classes)
    return ranking_metrics(rank(probs, max(ks)), targets, task, train_counts=train_counts, ks=ks)
