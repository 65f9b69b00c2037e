"""The report's figures, drawn with matplotlib's object API (no pyplot: no global state, no GUI backend).

Each function takes plain numpy values and returns one figure as SVG text. matplotlib is imported here only, and
this module only when a report is written, so that ``labelwise --help`` stays fast.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

__all__ = [
    "Curve",
    "confusion_figure",
    "logged_extras",
    "per_label_f1_figure",
    "pr_figure",
    "reliability_figure",
    "risk_coverage_figure",
    "roc_figure",
    "training_figure",
]

_BLUE, _ORANGE, _GREY = "#1f5fa8", "#d9731a", "#8a8f98"
_BINS = 15  # labelwise.metrics.ECE_BINS: the bins of the ECE the report quotes beside the diagram
# Where two or more curves share axes, more than this many labels would be unreadable.
MAX_CURVES = 10


class Curve:
    """One label's scores against its 0/1 truth, and the threshold the model decides with."""

    def __init__(self, name: str, *, truth: np.ndarray, score: np.ndarray, threshold: float) -> None:
        """Hold ``truth`` ``(N,)`` bool, ``score`` ``(N,)`` P(label), and the decision threshold."""
        self.name, self.truth, self.score, self.threshold = name, truth.astype(bool), score, float(threshold)

    @property
    def chosen(self) -> np.ndarray:
        """``(N,)`` bool: the items the threshold calls positive (``score >= threshold``, as `DecisionRule`)."""
        return self.score >= self.threshold


def _new(width: float = 5.2, height: float = 4.0, *, ncols: int = 1) -> tuple[Figure, Any]:
    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.subplots(1, ncols, squeeze=False)[0]
    for ax in axes:
        ax.grid(True, color="#e3e6ea", linewidth=0.8)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return figure, axes


def _svg(figure: Figure) -> str:
    import matplotlib

    buffer = io.StringIO()
    # A fixed hash salt and no date: the same data gives the same file.
    with matplotlib.rc_context({"svg.hashsalt": "labelwise", "svg.fonttype": "path"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def roc_figure(curves: Sequence[Curve]) -> str:
    """ROC curves with each curve's operating point (its threshold) marked."""
    figure, (ax,) = _new()
    for i, curve in enumerate(curves):
        fpr, tpr, _ = roc_curve(curve.truth, curve.score)
        line = ax.plot(fpr, tpr, color=_color(i, len(curves)), linewidth=1.8, label=curve.name)[0]
        point_fpr = curve.chosen[~curve.truth].mean() if (~curve.truth).any() else 0.0
        point_tpr = curve.chosen[curve.truth].mean() if curve.truth.any() else 0.0
        ax.plot([point_fpr], [point_tpr], "o", color=line.get_color(), markersize=8, markeredgecolor="black")
    ax.plot([0, 1], [0, 1], linestyle="--", color=_GREY, linewidth=1)
    ax.plot([], [], "o", color="white", markeredgecolor="black", label="chosen threshold")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))
    ax.legend(loc="lower right", fontsize=8)
    return _svg(figure)


def pr_figure(curves: Sequence[Curve]) -> str:
    """Precision–recall curves with each curve's operating point (its threshold) marked."""
    figure, (ax,) = _new()
    for i, curve in enumerate(curves):
        precision, recall, _ = precision_recall_curve(curve.truth, curve.score)
        line = ax.step(recall, precision, where="post", color=_color(i, len(curves)), linewidth=1.8, label=curve.name)
        chosen = curve.chosen
        point_precision = curve.truth[chosen].mean() if chosen.any() else 1.0
        point_recall = chosen[curve.truth].mean() if curve.truth.any() else 0.0
        ax.plot([point_recall], [point_precision], "o", color=line[0].get_color(), markersize=8, markeredgecolor="k")
    ax.plot([], [], "o", color="white", markeredgecolor="black", label="chosen threshold")
    ax.set(xlabel="recall", ylabel="precision", xlim=(-0.01, 1.01), ylim=(-0.01, 1.03))
    ax.legend(loc="lower left", fontsize=8)
    return _svg(figure)


def confusion_figure(targets: np.ndarray, decisions: np.ndarray, *, classes: Sequence[str]) -> str:
    """Confusion matrix, rows normalised to the true class (color), with counts written in the cells."""
    num = len(classes)
    counts = confusion_matrix(targets, decisions, labels=list(range(num)))
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = min(max(3.6, 0.45 * num + 2), 12)
    figure, (ax,) = _new(side + 1, side)
    ax.grid(False)
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    if num <= 30:  # beyond that, numbers in the cells are too small to read
        for (row, col), count in np.ndenumerate(counts):
            color = "white" if share[row, col] > 0.5 else "black"
            ax.text(col, row, str(count), ha="center", va="center", color=color, fontsize=8 if num > 12 else 10)
    ticks = list(range(num)) if num <= 40 else []
    ax.set_xticks(
        ticks, [classes[t] for t in ticks], rotation=45 if num > 6 else 0, ha="right" if num > 6 else "center"
    )
    ax.set_yticks(ticks, [classes[t] for t in ticks])
    ax.set(xlabel="predicted", ylabel="true")
    figure.colorbar(image, ax=ax, label="share of the true class", shrink=0.8)
    return _svg(figure)


def reliability_figure(
    before: tuple[np.ndarray, np.ndarray], after: tuple[np.ndarray, np.ndarray], *, ece: tuple[float, float]
) -> str:
    """Reliability diagrams before and after calibration: observed frequency against confidence per bin.

    Args:
        before: ``(confidence, outcome)`` ``(N,)`` each, before calibration; ``after`` the same after.
        ece: the ECE `labelwise.evaluate` reports for each (``ece_uncalibrated``, ``ece``).
    """
    figure, axes = _new(9.5, 4.0, ncols=2)
    edges = np.linspace(0.0, 1.0, _BINS + 1)
    for ax, (confidence, outcome), title, error in zip(
        axes, (before, after), ("before calibration", "after calibration"), ece, strict=True
    ):
        which = np.clip(np.digitize(confidence, edges[1:-1]), 0, _BINS - 1)
        counts = np.bincount(which, minlength=_BINS)
        filled = counts > 0
        observed = np.bincount(which, weights=outcome.astype(float), minlength=_BINS) / np.maximum(counts, 1)
        centers = (edges[:-1] + edges[1:]) / 2
        ax.bar(centers[filled], observed[filled], width=1 / _BINS, color=_BLUE, alpha=0.8, edgecolor="white")
        ax.plot([0, 1], [0, 1], linestyle="--", color=_GREY, linewidth=1, label="perfectly calibrated")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted probability", title=f"{title} (ECE {error:.3f})")
        ax.legend(loc="upper left", fontsize=8)
    axes[0].set_ylabel("observed frequency")
    return _svg(figure)


def per_label_f1_figure(names: Sequence[str], *, f1: np.ndarray, thresholds: np.ndarray) -> str:
    """Horizontal bars of each label's F1, annotated with its decision threshold."""
    figure, (ax,) = _new(6.5, min(max(2.2, 0.38 * len(names) + 1.2), 14))
    rows = np.arange(len(names))
    ax.barh(rows, f1, color=_BLUE, height=0.7)
    for row, (score, threshold) in enumerate(zip(f1, thresholds, strict=True)):
        ax.text(score + 0.02, row, f"F1 {score:.2f}  (threshold {threshold:.2f})", va="center", fontsize=8)
    ax.set_yticks(rows, list(names))
    ax.invert_yaxis()
    ax.set(xlim=(0, 1.5), xticks=np.linspace(0, 1, 6), xlabel="F1 on this data")
    return _svg(figure)


def risk_coverage_figure(rows: Sequence[dict[str, float]], *, chosen: tuple[float, float] | None) -> str:
    """Selective accuracy against coverage, answering the items the model is surest of first.

    Args:
        rows: `labelwise.decide.ood.risk_coverage` rows.
        chosen: ``(coverage, selective_accuracy)`` of the model's reject rule on this data, or None.
    """
    figure, (ax,) = _new()
    coverage = [row["coverage"] for row in rows]
    accuracy = [row["selective_accuracy"] for row in rows]
    ax.plot(coverage, accuracy, color=_BLUE, linewidth=1.8, label="answering the least unknown items")
    if chosen is not None:
        ax.plot([chosen[0]], [chosen[1]], "o", color=_ORANGE, markersize=9, markeredgecolor="k", label="reject rule")
    ax.set(xlabel="coverage (fraction answered)", ylabel="accuracy of the answered items", xlim=(0, 1.02))
    ax.legend(loc="lower left", fontsize=8)
    return _svg(figure)


def training_figure(history: dict[str, list[float]]) -> str:
    """Training and validation loss per epoch (and any other logged curves beside them)."""
    losses = [name for name in ("train_loss", "val_loss") if name in history]
    others = logged_extras(history)
    figure, axes = _new(9.5 if others else 5.6, 3.8, ncols=2 if others else 1)
    epochs = np.asarray(history["epoch"]) + 1
    for i, name in enumerate(losses):
        axes[0].plot(epochs, history[name], marker="o", markersize=3, color=(_BLUE, _ORANGE)[i], label=name)
    axes[0].set(xlabel="epoch", ylabel="loss", title="loss")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(fontsize=8)
    for i, extra in enumerate(others):
        axes[1].plot(epochs, history[extra], marker="o", markersize=3, color=_color(i, len(others)), label=extra)
    if others:
        axes[1].set(xlabel="epoch", title="other logged values")
        axes[1].legend(fontsize=8)
    return _svg(figure)


def logged_extras(history: dict[str, list[float]]) -> list[str]:
    """The logged columns beside the epoch, the step and the losses that change over training.

    A value that never changed (a guard's 0 flag) would draw a flat line that says nothing.
    """
    skip = ("epoch", "step", "train_loss", "val_loss")
    return [name for name in history if name not in skip and np.ptp(_finite(history[name])) > 0]


def _finite(values: list[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    return array if len(array) else np.zeros(1)


def _color(i: int, n: int) -> Any:
    if n == 1:
        return _BLUE
    from matplotlib import colormaps

    return colormaps["tab10"](i % 10)
