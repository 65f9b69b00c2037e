"""A self-contained HTML report of a trained run on labelled data (``labelwise evaluate RUN DATA --report``).

One file, no network: figures are SVG embedded as ``data:`` URIs, thumbnails base64 PNG, the CSS inline. It holds
the task and why it was chosen, the headline metrics, the figures of `labelwise.html_report.sections` and the
worst-predicted items. matplotlib is imported only when a report is built.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labelwise._files import check_output_path, write_atomically

if TYPE_CHECKING:
    from labelwise.classifier import Classifier

__all__ = ["Report", "build_report", "write_report"]

_HEADLINE = {
    "binary": ("f1", "roc_auc", "pr_auc", "accuracy", "balanced_accuracy", "ece"),
    "multiclass": ("accuracy", "macro_f1", "balanced_accuracy", "log_loss", "ece"),
    "multilabel": ("micro_f1", "macro_f1", "mAP", "subset_accuracy", "ece"),
}
_SELECTIVE = ("coverage", "selective_accuracy", "unknown_auroc")


@dataclass(frozen=True)
class Report:
    """A built report: its HTML text and the metrics it shows (the dict `Classifier.evaluate` returns)."""

    html: str
    metrics: dict[str, float]

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the HTML atomically (`labelwise._files.write_atomically`); return the path.

        Raises:
            ArtifactError: the folder is missing or not writable, or ``path`` is a folder; nothing is written.
        """
        target = check_output_path(path, option="--report", example="report.html")
        return write_atomically(target, self.html, option="--report")


def build_report(
    clf: Classifier, data: Any, *, target: str | list[str] | None = None, run_dir: str | os.PathLike[str] | None = None
) -> Report:
    """Evaluate ``clf`` on labelled ``data`` and lay the results out as one HTML page.

    Args:
        clf: a trained `Classifier`.
        data: labelled data as `Classifier.evaluate` takes it (a path, a DataFrame, a `Source`).
        target: the label column(s); default: the one the run was trained with.
        run_dir: the run directory whose ``logs/metrics.csv`` gives the training curves; default: the run the
            classifier was trained into, if known (without a log, the history in ``labelwise.json``).

    Raises:
        DataError: the data has no labels, or no item of a class the model knows.
    """
    from labelwise.html_report.collect import collect
    from labelwise.html_report.page import LabelIssues, render_page
    from labelwise.html_report.sections import figure_blocks, worst_items

    source = clf._source(data, target=target, labelled=True)  # noqa: SLF001 - the same reading `evaluate` does
    run = run_dir if run_dir is not None else clf.info.get("run_dir")
    collected = collect(clf, source, run_dir=Path(run) if run is not None else None)
    metrics = collected.metrics
    task = clf.task
    keys = [*_HEADLINE[str(task.kind)], *(_SELECTIVE if clf.policy.abstention is not None else ())]
    name = Path(run).name if run is not None else "model"
    issues = None if clf.out_of_fold is None else clf.label_issues()  # the training rows', for a cross-fitted run
    html_text = render_page(
        title=f"labelwise report: {name}",
        subtitle=f"{task.kind} classifier with {task.num_classes} classes, evaluated on {len(collected.ids)} "
        f"labelled items of {_data_name(data)}.",
        reason=task.reason or f"a {task.kind} task with classes {', '.join(map(str, task.classes))}.",
        headline={k: metrics[k] for k in keys if k in metrics},
        figures=figure_blocks(collected, task),
        metrics=metrics,
        worst=worst_items(collected, task),
        label_issues=None if issues is None else LabelIssues(shown=issues[:_ISSUES_SHOWN], total=len(issues)),
    )
    return Report(html_text, metrics)


_ISSUES_SHOWN = 10  # the report points at the worst few; `clf.label_issues()` has them all


def _data_name(data: Any) -> str:
    return repr(str(data)) if isinstance(data, (str, os.PathLike)) else f"a {type(data).__name__}"


def write_report(
    clf: Classifier,
    data: Any,
    path: str | os.PathLike[str],
    *,
    target: str | list[str] | None = None,
    run_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Build the report of ``clf`` on labelled ``data`` (`build_report`) and write it atomically to ``path``.

    Raises:
        ArtifactError: ``path`` cannot be written (checked before any work); nothing is written.
        DataError: as `build_report`.
    """
    check_output_path(path, option="--report", example="report.html")
    return build_report(clf, data, target=target, run_dir=run_dir).write(path)
