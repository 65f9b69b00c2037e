"""Which figures a report holds for each kind of task, and the worst-predicted items.

Every report: reliability before and after calibration, training curves (when the run kept its log) and the
worst-predicted items. Binary: ROC and precision–recall with the threshold marked. Multiclass: the confusion
matrix. Multilabel: ROC and precision–recall per label with each label's threshold, and per-label F1. A model
that may abstain adds the risk–coverage curve.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from labelwise.html_report import figures
from labelwise.html_report.collect import ReportData
from labelwise.html_report.page import FigureBlock, WorstItem
from labelwise.task import Task, TaskKind

__all__ = ["figure_blocks", "worst_items"]

_WORST = 12
_THUMB = 64  # pixels on the long side of a thumbnail


def figure_blocks(data: ReportData, task: Task) -> list[FigureBlock]:
    """The figures for ``task``'s kind, in reading order."""
    blocks = _KINDS[task.kind].blocks(data, task)
    blocks.append(_reliability(data, task))
    if data.unknown_score is not None and data.correct is not None:
        blocks.append(_risk_coverage(data))
    if data.history is not None and "epoch" in data.history:
        blocks.append(
            FigureBlock(
                name="training",
                title="Training curves",
                caption="Loss per epoch from the run's logs/metrics.csv; the run keeps the epoch with the lowest "
                "validation loss.",
                svg=figures.training_figure(data.history),
                wide=bool(figures.logged_extras(data.history)),
            )
        )
    return blocks


def _binary(data: ReportData, task: Task) -> list[FigureBlock]:
    positive = str(task.classes[1])
    curve = figures.Curve(positive, truth=data.targets == 1, score=data.probs[:, 1], threshold=data.thresholds[0])
    return _roc_pr([curve], what=f"P({positive!r}), threshold {data.thresholds[0]:.3f}")


def _multilabel(data: ReportData, task: Task) -> list[FigureBlock]:
    # The most frequent labels, where curves have enough positives to mean something.
    order = np.argsort(-data.targets.sum(axis=0), kind="stable")[: figures.MAX_CURVES]
    curves = [
        figures.Curve(
            str(task.classes[j]), truth=data.targets[:, j], score=data.probs[:, j], threshold=data.thresholds[j]
        )
        for j in sorted(order)
        if 0 < data.targets[:, j].sum() < len(data.targets)  # a curve needs both outcomes
    ]
    shown = f"{len(curves)} of {task.num_classes} labels (the most frequent with both outcomes)"
    blocks = _roc_pr(curves, what=f"{shown}, each with its own threshold") if curves else []
    f1 = _per_label_f1(data.targets, data.decisions)
    blocks.append(
        FigureBlock(
            name="per-label-f1",
            title="Per-label F1 and threshold",
            caption="F1 of each label's decisions on this data, with the threshold tuned for it on validation data.",
            svg=figures.per_label_f1_figure([str(c) for c in task.classes], f1=f1, thresholds=data.thresholds),
            wide=task.num_classes > 12,
        )
    )
    return blocks


def _multiclass(data: ReportData, task: Task) -> list[FigureBlock]:
    return [
        FigureBlock(
            name="confusion",
            title="Confusion matrix",
            caption="Rows: true class; columns: the predicted class (before abstaining); cells: counts, shaded by "
            "the share of the row.",
            svg=figures.confusion_figure(data.targets, data.decisions, classes=[str(c) for c in task.classes]),
        )
    ]


def _roc_pr(curves: list[figures.Curve], *, what: str) -> list[FigureBlock]:
    return [
        FigureBlock(
            name="roc",
            title="ROC curve",
            caption=f"{what}; the dot is the chosen threshold.",
            svg=figures.roc_figure(curves),
        ),
        FigureBlock(
            name="pr",
            title="Precision–recall curve",
            caption=f"{what}; the dot is the chosen threshold.",
            svg=figures.pr_figure(curves),
        ),
    ]


def _per_label_f1(targets: np.ndarray, decisions: np.ndarray) -> np.ndarray:
    from sklearn.metrics import f1_score

    return np.asarray(f1_score(targets, decisions, average=None, zero_division=0.0), dtype=float)


def _reliability(data: ReportData, task: Task) -> FigureBlock:
    kind = _KINDS[task.kind]
    before, after = (kind.confidence(probs, data.targets) for probs in (data.raw_probs, data.probs))
    ece = (data.metrics.get("ece_uncalibrated", float("nan")), data.metrics.get("ece", float("nan")))
    what = kind.reliability.format(positive=task.positive)
    return FigureBlock(
        name="reliability",
        title="Reliability before and after calibration",
        caption=f"{what}, in 15 bins; bars on the diagonal are calibrated. ECE as `labelwise evaluate` reports it.",
        svg=figures.reliability_figure(before, after, ece=ece),
        wide=True,
    )


# The (probability, outcome) pairs each kind's ECE bins (see `labelwise.metrics`).
def _binary_confidence(probs: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return probs[:, 1], targets == 1


def _multiclass_confidence(probs: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return probs.max(axis=1), probs.argmax(axis=1) == targets


def _multilabel_confidence(probs: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return probs.ravel(), targets.ravel()


def _risk_coverage(data: ReportData) -> FigureBlock:
    import torch

    from labelwise.decide.ood import risk_coverage

    assert data.unknown_score is not None and data.correct is not None  # noqa: S101 - checked by the caller
    rows = risk_coverage(
        torch.from_numpy(data.unknown_score),
        torch.from_numpy(data.correct),
        coverages=tuple(np.linspace(1.0, 0.02, 50).tolist()),
    )
    chosen = None
    if "coverage" in data.metrics and "selective_accuracy" in data.metrics:
        chosen = (data.metrics["coverage"], data.metrics["selective_accuracy"])
    return FigureBlock(
        name="risk-coverage",
        title="Risk–coverage",
        caption="Accuracy of the answered items as the model answers fewer, least unknown first (unknown-class "
        "items count as wrong); the dot is the model's reject rule on this data.",
        svg=figures.risk_coverage_figure(rows, chosen=chosen),
    )


def worst_items(data: ReportData, task: Task) -> list[WorstItem]:
    """The items whose true answer got the lowest probability, worst first."""
    kind = _KINDS[task.kind]
    p_truth = kind.p_truth(data.probs, data.targets)
    order = np.argsort(p_truth, kind="stable")[:_WORST]
    return [
        WorstItem(
            id=data.ids[i],
            truth=kind.names(data.targets[i], task),
            prediction=kind.names(data.decisions[i], task),
            p_truth=float(p_truth[i]),
            thumbnail=_thumbnail(data.image_paths[i]) if data.image_paths else None,
            text=data.texts[i] if data.texts else None,
        )
        for i in order
    ]


def _single_p_truth(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    return np.asarray(probs[np.arange(len(targets)), targets])


def _multilabel_p_truth(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    # An item is as wrong as its worst label: the lowest probability of that label's true outcome.
    return np.asarray(np.where(targets, probs, 1.0 - probs).min(axis=1))


def _single_names(value: np.ndarray, task: Task) -> str:
    return str(task.classes[int(value)])


def _multilabel_names(value: np.ndarray, task: Task) -> str:
    return ", ".join(str(c) for c, on in zip(task.classes, value, strict=True) if on) or "(none)"


def _thumbnail(path: str) -> str | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            small = image.convert("RGB")
            small.thumbnail((_THUMB, _THUMB))
    except (OSError, UnidentifiedImageError):
        return None  # the image was readable for prediction; a thumbnail is not worth failing the report for
    buffer = io.BytesIO()
    small.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


_Pairs = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class _KindFigures:
    """What a report shows for one kind of task."""

    blocks: Callable[[ReportData, Task], list[FigureBlock]]  # the kind's own figures, first in the report
    reliability: str  # what the reliability diagram plots; ``{positive}`` is the binary positive class
    confidence: _Pairs  # (probs, targets) -> the (probability, outcome) pairs its ECE bins
    p_truth: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (probs, targets) -> P(the true answer) per item
    names: Callable[[np.ndarray, Task], str]  # one item's targets or decisions, written out


_KINDS: dict[TaskKind, _KindFigures] = {
    TaskKind.BINARY: _KindFigures(
        _binary,
        "P({positive!r}) against how often it is the true class",
        _binary_confidence,
        _single_p_truth,
        _single_names,
    ),
    TaskKind.MULTICLASS: _KindFigures(
        _multiclass,
        "the top class's probability against how often it is right",
        _multiclass_confidence,
        _single_p_truth,
        _single_names,
    ),
    TaskKind.MULTILABEL: _KindFigures(
        _multilabel,
        "every label's probability against how often the label is present",
        _multilabel_confidence,
        _multilabel_p_truth,
        _multilabel_names,
    ),
}
