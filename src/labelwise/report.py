"""What labelwise tells a person: the data report of ``inspect`` and the one-screen summary of ``train``.

Functions here only read values and format text; they compute nothing the model depends on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from labelwise.task import Task, TaskKind, infer_task

if TYPE_CHECKING:
    from labelwise.classifier import Classifier

__all__ = ["format_inspect", "format_metrics", "format_training", "inspect_source"]

# A class with fewer items than this cannot be both trained on and validated/thresholded with any confidence.
_RARE = 5


def inspect_source(
    data: Any,
    *,
    target: str | list[str] | None = None,
    image_col: str | None = None,
    task: str = "auto",
    label_sep: str | None = None,
) -> dict[str, Any]:
    """A JSON-ready description of labelled data: the inferred Task and why, counts, imbalance, rare classes."""
    from labelwise.data.sources import load_source

    source = load_source(data, target=target, image_col=image_col, for_training=True)
    the_task = infer_task(source.labels, kind=task, label_sep=label_sep)
    targets = the_task.encode(source.labels)
    counts = _counts(targets, the_task)
    report: dict[str, Any] = {
        "data": str(data),
        "source": source.kind,
        "rows": len(source.ids),
        "task": str(the_task.kind),
        "why": the_task.reason,
        "classes": {str(c): int(n) for c, n in zip(the_task.classes, counts, strict=True)},
        "imbalance_ratio": round(float(counts.max() / max(counts.min(), 1)), 2),
        "rare_classes": [str(c) for c, n in zip(the_task.classes, counts, strict=True) if n < _RARE],
        "validation": _validation_note(source),
    }
    if the_task.kind is TaskKind.MULTILABEL:
        per_item = targets.sum(dim=1)
        report["label_cardinality"] = round(float(per_item.mean()), 3)
        report["empty_label_rate"] = round(float((per_item == 0).float().mean()), 3)
    if source.kind == "table":
        report["feature_columns"] = list(source.feature_columns)
        report["duplicate_rows"] = int(source.frame[source.feature_columns].duplicated().sum())
    return report


def _counts(targets: Any, task: Task) -> np.ndarray:
    if task.kind is TaskKind.MULTILABEL:
        return np.asarray(targets.sum(dim=0).long().numpy())
    return np.asarray(np.bincount(targets.long().numpy(), minlength=task.num_classes))


def _validation_note(source: Any) -> str:
    if source.is_valid is not None:
        return f"{int(source.is_valid.sum())} rows marked for validation"
    return "none marked: a seeded stratified 80/20 split will be made"


def format_inspect(report: dict[str, Any]) -> str:
    """The ``inspect`` report as text."""
    lines = [
        f"data        {report['data']} ({report['source']}, {report['rows']} rows)",
        f"task        {report['why']}",
        f"validation  {report['validation']}",
        f"imbalance   {report['imbalance_ratio']}:1 (largest class / smallest class)",
    ]
    if "label_cardinality" in report:
        lines.append(
            f"labels      {report['label_cardinality']} per item on average; "
            f"{report['empty_label_rate']:.1%} of items have none"
        )
    if report["rare_classes"]:
        lines.append(
            f"warning     classes with fewer than {_RARE} items cannot be validated reliably: "
            f"{', '.join(report['rare_classes'][:10])}"
        )
    if report.get("duplicate_rows"):
        lines.append(f"warning     {report['duplicate_rows']} rows repeat another row's features exactly")
    width = max(len(c) for c in report["classes"])
    lines.append("classes")
    lines += [f"  {name:<{width}}  {count}" for name, count in report["classes"].items()]
    return "\n".join(lines)


def format_metrics(metrics: dict[str, float]) -> str:
    """Metrics as aligned ``name value`` lines (per-class entries after the headline ones)."""
    ordered = sorted(metrics, key=lambda name: ("/" in name, name))
    width = max((len(n) for n in ordered), default=0)
    return "\n".join(f"  {name:<{width}}  {metrics[name]:.4f}" for name in ordered)


_COMPARED = (
    "accuracy",
    "unknown_auroc",
    "unknown_fpr95",
    "coverage",
    "selective_accuracy",
    "unknown_rejected",
    "ece",
)


def format_comparison(results: dict[str, dict[str, float]]) -> str:
    """Runs side by side: one row per run, one column per key of `_COMPARED` any run reports ("-": absent).

    Example:
        >>> print(format_comparison({"a": {"accuracy": 0.9, "ece": 0.02}, "b": {"accuracy": 0.8}}))
        run  accuracy     ece
        a      0.9000  0.0200
        b      0.8000       -
    """
    keys = [k for k in _COMPARED if any(k in metrics for metrics in results.values())]
    name_width = max(len("run"), *(len(name) for name in results))
    widths = [max(len(k), 6) for k in keys]
    lines = [f"{'run':<{name_width}}  " + "  ".join(f"{k:>{w}}" for k, w in zip(keys, widths, strict=True))]
    for name, metrics in results.items():
        cells = [f"{metrics[k]:.4f}" if k in metrics else "-" for k in keys]
        lines.append(f"{name:<{name_width}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True)))
    return "\n".join(lines)


def format_training(clf: Classifier, *, run_dir: str | None) -> str:
    """The one screen printed at the end of ``labelwise train``."""
    training = clf.info.get("training", {})
    valid = clf.info.get("metrics", {}).get("valid", {})
    headline = {k: v for k, v in valid.items() if "/" not in k}
    lines = [
        f"task       {clf.task.reason}",
        f"data       {training.get('num_train')} train / {training.get('num_valid')} validation items; "
        f"validation: {training.get('split')}",
        f"model      {clf.model_spec.backbone} ({_num_parameters(clf):,} parameters)",
        f"training   {training.get('epochs_run')} epochs, best epoch {training.get('best_epoch')} "
        f"({training.get('stopped')})",
        f"balance    {training.get('balance')}",
        f"calibrate  {clf.calibration.describe()}",
        *(f"{'decision' if i == 0 else '':<10} {line}" for i, line in enumerate(clf.policy.describe())),
        "validation " + "  ".join(f"{k} {v:.4f}" for k, v in sorted(headline.items())),
    ]
    skipped = training.get("skipped_images") or []
    if skipped:
        lines.append(f"skipped    {len(skipped)} unreadable images (first: {skipped[0][0]}: {skipped[0][1]})")
    if run_dir:
        lines.append(
            f"saved      {run_dir}   next: labelwise evaluate {run_dir} TEST_DATA | "
            f"labelwise predict {run_dir} NEW_DATA --out predictions.csv"
        )
    return "\n".join(lines)


def _num_parameters(clf: Classifier) -> int:
    return sum(p.numel() for p in clf.network.parameters())
