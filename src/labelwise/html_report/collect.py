"""What the report shows, gathered from the classifier's own code paths as plain numpy values.

Metrics come from `Classifier.metrics` (the dict ``labelwise evaluate --json`` prints); probabilities,
decisions and unknown scores from `Classifier.predict_source`; probabilities before calibration from
``task.probabilities(logits)``; thresholds from the policy's `DecisionRule`. Labels of classes the model never
saw are handled as ``evaluate`` handles them: a model that may abstain counts them as "none of these", and the
classification figures use the known-class items only.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labelwise.classifier import Classifier
from labelwise.data.sources import Source
from labelwise.errors import DataError
from labelwise.task import TaskKind

__all__ = ["TEXT_SHOWN", "ReportData", "collect", "read_history"]

TEXT_SHOWN = 300  # characters of an item's text in the worst-predicted table


@dataclass(frozen=True, kw_only=True)
class ReportData:
    """Everything a figure needs, for the known-class items unless said otherwise.

    Attributes:
        metrics: `Classifier.evaluate_source` on the data.
        ids: ``(N,)`` ids of the known-class items.
        targets: ``(N,)`` class indices, or ``(N, C)`` 0/1 for multilabel.
        probs: ``(N, C)`` calibrated probabilities; ``raw_probs`` the same before calibration.
        decisions: ``(N,)`` class indices before abstaining, or ``(N, C)`` bool for multilabel.
        thresholds: binary: ``(1,)`` P(positive) threshold; multilabel: ``(C,)``; multiclass: empty.
        unknown_score: ``(M,)`` unknown scores of every item (unknown classes included) when the model may abstain.
        correct: ``(M,)`` bool, items of a known class decided right (before abstaining), beside ``unknown_score``.
        image_paths: ``(N,)`` image paths of the known-class items, or None for tables.
        texts: ``(N,)`` the text columns of the known-class items (joined, cut at `TEXT_SHOWN` characters), or None
            when the model reads no text.
        history: per-epoch training log columns (``epoch``, ``train_loss``, ``val_loss``, ...), or None.
    """

    metrics: dict[str, float]
    ids: list[str]
    targets: np.ndarray
    probs: np.ndarray
    raw_probs: np.ndarray
    decisions: np.ndarray
    thresholds: np.ndarray
    unknown_score: np.ndarray | None
    correct: np.ndarray | None
    image_paths: list[str] | None
    texts: list[str] | None
    history: dict[str, list[float]] | None


def collect(clf: Classifier, source: Source, *, run_dir: Path | None, skip_bad: bool = False) -> ReportData:
    """Predict and evaluate ``clf`` on the labelled ``source`` and gather the report's values.

    Raises:
        DataError: the data has no labels (as `Classifier.evaluate_source`), or no item of a known class.
    """
    clf.check_labelled(source)  # before the predictions, as `evaluate` does
    clf.head.require_every_probability("the HTML report (per-class curves and reliability)")
    predicted = clf.predict_source(source, skip_bad=skip_bad)
    assert predicted.outputs.uncalibrated is not None  # noqa: S101 - only ranked runs have none
    truth = clf.truth(source, predicted)
    metrics = clf.metrics(predicted, truth)
    known = truth.known
    if not known.any():
        raise DataError(
            "every label in the data is of a class the model never saw, so there is nothing to plot per class; "
            f"expected some items of {', '.join(map(repr, clf.task.classes[:5]))}. Add labelled items of known classes."
        )
    targets = truth.targets.numpy()
    probs = predicted.probs[_torch_mask(known)]
    decisions = clf.policy.rule.decide(probs).numpy()  # before abstaining, as `evaluate` scores classification
    kind = clf.task.kind
    targets = targets.astype(np.int64) if kind is not TaskKind.MULTILABEL else targets.astype(bool)
    return ReportData(
        metrics=metrics,
        ids=_kept(source.ids, predicted.kept, known),
        targets=targets,
        probs=probs.double().numpy(),
        raw_probs=predicted.outputs.uncalibrated[_torch_mask(known)].double().numpy(),
        decisions=decisions,
        thresholds=_thresholds(clf),
        unknown_score=None if predicted.out.unknown_score is None else predicted.out.unknown_score.double().numpy(),
        correct=_correct(known, decisions, targets) if predicted.out.unknown_score is not None else None,
        image_paths=_kept(source.image_paths, predicted.kept, known) if source.image_paths else None,
        texts=_kept(texts, predicted.kept, known) if (texts := _texts(clf, source)) else None,
        history=read_history(run_dir, fallback=clf.info.get("training", {}).get("history")),
    )


def _torch_mask(mask: np.ndarray) -> Any:
    """A numpy bool mask as a torch tensor, to index tensors with."""
    import torch

    return torch.from_numpy(np.asarray(mask, dtype=bool))


def _texts(clf: Classifier, source: Source) -> list[str] | None:
    """Each row's text columns joined by " | " and cut at `TEXT_SHOWN` characters; None without text columns."""
    names = [column.name for column in clf.inputs.row_columns if column.kind == "text" and column.width]
    if not names or source.kind != "table":
        return None
    cells = source.frame[names].fillna("").astype(str).agg(" | ".join, axis=1)
    return [text if len(text) <= TEXT_SHOWN else text[: TEXT_SHOWN - 1] + "…" for text in cells]


def _kept(values: list[str], kept: np.ndarray, known: np.ndarray) -> list[str]:
    readable = [v for v, keep in zip(values, kept, strict=True) if keep]
    return [str(v) for v, k in zip(readable, known, strict=True) if k]


def _thresholds(clf: Classifier) -> np.ndarray:
    rule = clf.policy.rule
    if rule.kind is TaskKind.BINARY:
        return np.array([0.5 if rule.threshold is None else rule.threshold])
    if rule.kind is TaskKind.MULTILABEL and rule.thresholds is not None:
        return np.array(rule.thresholds)
    return np.empty(0)


def _correct(known: np.ndarray, decisions: np.ndarray, targets: np.ndarray) -> np.ndarray:
    # As `labelwise.evaluation`: an item of an unknown class is never answered right.
    correct = np.zeros(len(known), dtype=bool)
    correct[known] = decisions == targets
    return correct


def read_history(
    run_dir: Path | None, *, fallback: list[dict[str, float]] | None = None
) -> dict[str, list[float]] | None:
    """Per-epoch columns of ``run_dir/logs/metrics.csv`` (Lightning's CSVLogger), one value per epoch.

    Lightning writes the training and the validation values of an epoch on separate rows; they are merged by
    ``epoch``. Without the file, the history recorded in ``labelwise.json`` (``fallback``) is used.

    Example:
        >>> import tempfile
        >>> run = Path(tempfile.mkdtemp()); (run / "logs").mkdir()
        >>> _ = (run / "logs" / "metrics.csv").write_text("epoch,step,train_loss,val_loss\\n0,0,0.7,\\n0,0,,0.6\\n")
        >>> read_history(run)
        {'epoch': [0.0], 'step': [0.0], 'train_loss': [0.7], 'val_loss': [0.6]}
    """
    path = None if run_dir is None else Path(run_dir) / "logs" / "metrics.csv"
    if path is not None and path.is_file():
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    else:
        rows = [{k: str(v) for k, v in row.items()} for row in fallback or []]
    by_epoch: dict[float, dict[str, float]] = {}
    for row in rows:
        values = {k: _number(v) for k, v in row.items() if k is not None}
        epoch = values.get("epoch", math.nan)
        if not math.isnan(epoch):
            merged = by_epoch.setdefault(epoch, {})
            merged.update({k: v for k, v in values.items() if not math.isnan(v)})
    if not by_epoch:
        return None
    columns = sorted({k for merged in by_epoch.values() for k in merged}, key=lambda k: (k != "epoch", k))
    epochs = sorted(by_epoch)
    return {k: [by_epoch[e].get(k, math.nan) for e in epochs] for k in columns}


def _number(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan
