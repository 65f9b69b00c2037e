"""A self-contained HTML report of a trained run on labelled data (``labelwise evaluate RUN DATA --report``).

One file, no network: figures are SVG embedded as ``data:`` URIs, thumbnails base64 PNG, the CSS inline. It holds
the task and why it was chosen, the headline metrics, the figures of `labelwise.html_report.sections` and the
worst-predicted items. matplotlib is imported only when a report is built.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labelwise.errors import ArtifactError

if TYPE_CHECKING:
    from labelwise.classifier import Classifier

__all__ = ["Report", "build_report", "check_report_path", "write_report"]

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
        """Write the HTML atomically (a temp file in the same folder, then `os.replace`); return the path.

        Raises:
            ArtifactError: the folder is missing or not writable, or ``path`` is a folder; nothing is written.
        """
        target = check_report_path(path)
        try:
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        except OSError as err:
            raise _unwritable(target, err) from err
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(self.html)
            os.replace(tmp, target)
        except BaseException as err:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(err, OSError):
                raise _unwritable(target, err) from err
            raise
        return target


def check_report_path(path: str | os.PathLike[str]) -> Path:
    """Fail early, before any work, when ``path`` cannot receive the report.

    Raises:
        ArtifactError: the folder does not exist or is not writable, or ``path`` is a folder.

    Example:
        >>> check_report_path("/no/such/folder/report.html")
        Traceback (most recent call last):
        ...
        labelwise.errors.ArtifactError: the folder of --report '/no/such/folder/report.html' does not exist; \
create it or pass another path.
    """
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        raise ArtifactError(f"the folder of --report {str(target)!r} does not exist; create it or pass another path.")
    if target.is_dir():
        raise ArtifactError(f"--report {str(target)!r} is a folder; expected a file name such as report.html.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ArtifactError(
            f"the folder of --report {str(target)!r} is not writable; pass a path in a folder you can write to."
        )
    return target


def _unwritable(target: Path, err: OSError) -> ArtifactError:
    return ArtifactError(
        f"cannot write --report {str(target)!r} ({err.strerror or err}); nothing was written. "
        "Pass a path in a folder you can write to."
    )


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
    from labelwise.html_report.page import render_page
    from labelwise.html_report.sections import figure_blocks, worst_items

    source = clf._source(data, target=target, labelled=True)  # noqa: SLF001 - the same reading `evaluate` does
    run = run_dir if run_dir is not None else clf.info.get("run_dir")
    collected = collect(clf, source, run_dir=Path(run) if run is not None else None)
    metrics = collected.metrics
    task = clf.task
    keys = [*_HEADLINE[str(task.kind)], *(_SELECTIVE if clf.policy.abstention is not None else ())]
    name = Path(run).name if run is not None else "model"
    html_text = render_page(
        title=f"labelwise report: {name}",
        subtitle=f"{task.kind} classifier with {task.num_classes} classes, evaluated on {len(collected.ids)} "
        f"labelled items of {_data_name(data)}.",
        reason=task.reason or f"a {task.kind} task with classes {', '.join(map(str, task.classes))}.",
        headline={k: metrics[k] for k in keys if k in metrics},
        figures=figure_blocks(collected, task),
        metrics=metrics,
        worst=worst_items(collected, task),
    )
    return Report(html_text, metrics)


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
    check_report_path(path)
    return build_report(clf, data, target=target, run_dir=run_dir).write(path)
