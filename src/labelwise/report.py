"""What labelwise tells a person: the data report of ``inspect`` and the one-screen summary of ``train``.

Functions here only read values and format text; they compute nothing the model depends on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labelwise.classifier import Classifier

__all__ = ["column_lines", "format_inspect", "format_metrics", "format_training"]

_MAX_CLASSES_SHOWN = 30  # longer class lists show the largest and the smallest classes (--json has them all)
_USELESS = (("constant", "constant"), ("all_missing", "empty"))
_MAX_KINDS_SHOWN = 12  # columns listed one per line; --json has them all


def format_inspect(report: dict[str, Any]) -> str:
    """The ``inspect`` report (`labelwise.data.inspection.inspect_data`) as text: a summary, the classes, warnings.

    Example:
        >>> report = {
        ...     "data": "d.csv", "source": "table", "rows": 6, "why": "binary: two distinct labels.",
        ...     "imbalance_ratio": 2.0, "label_cardinality": None, "empty_label_rate": None,
        ...     "split": {"how": "given", "train": 4, "valid": 2, "test": 0, "valid_classes": {"a": 1, "b": 1}},
        ...     "classes": {"a": 4, "b": 2}, "duplicates": {"items": 0, "what": "identical feature values"},
        ...     "leakage": {"valid": {"items": 0, "of": 2}, "test": None}, "unreadable_images": None,
        ...     "columns": {"features": 3, "constant": [], "all_missing": []}, "warnings": [],
        ... }
        >>> print(format_inspect(report))
        data        d.csv (table, 6 rows)
        task        binary: two distinct labels.
        split       given: 4 train / 2 validation items
        imbalance   2:1 (largest class / smallest class)
        duplicates  none (identical feature values); none shared between train and validation
        columns     3 feature columns
        classes     items  validation
          a             4           1
          b             2           1
        warnings    none
    """
    lines = [
        f"data        {report['data']} ({report['source']}, {report['rows']} rows)",
        f"task        {report['why']}",
        f"split       {_split_line(report['split'])}",
        f"imbalance   {report['imbalance_ratio']:g}:1 (largest class / smallest class)",
    ]
    if report["label_cardinality"] is not None:
        lines.append(
            f"labels      {report['label_cardinality']:g} per item on average; "
            f"{report['empty_label_rate']:.1%} of items have none"
        )
    lines.append(f"duplicates  {_duplicates_line(report)}")
    if report["unreadable_images"] is not None:
        lines.append(f"images      {len(report['unreadable_images'])} unreadable")
    if report.get("column_kinds"):
        lines += column_lines(report["column_kinds"], indent=12)
        lines += [_text_line(name, stats) for name, stats in (report.get("text") or {}).items()]
    elif report["columns"] is not None:
        columns, num = report["columns"], report["columns"]["features"]
        useless = "".join(f", {len(columns[key])} {word}" for key, word in _USELESS if columns[key])
        lines.append(f"columns     {num} feature column{'' if num == 1 else 's'}{useless}")
    lines += _class_lines(report["classes"], report["split"]["valid_classes"])
    warnings = report["warnings"]
    lines += [f"warning     {line}" for line in warnings] if warnings else ["warnings    none"]
    if report.get("label_issues") is not None:  # only with --label-issues
        from labelwise.label_issues import format_label_issues

        lines += ["", format_label_issues(report["label_issues"])]
    return "\n".join(lines)


def _text_line(name: str, stats: dict[str, Any]) -> str:
    near = f"; {stats['near_duplicates']} repeat another text (case, spaces, punctuation aside)"
    return (
        f"text        {name!r}: median {stats['chars']['median']:g} characters (longest {stats['chars']['max']:,}), "
        f"{stats['vocabulary']:,} distinct words"
        + (f"; {stats['empty']} empty" if stats["empty"] else "")
        + (near if stats["near_duplicates"] else "")
    )


def column_lines(kinds: dict[str, dict[str, str]], *, indent: int) -> list[str]:
    """How the input columns are read: counts per kind, then one line per column that is not plain numbers.

    Example:
        >>> kinds = {"age": {"kind": "numeric", "why": "numbers"}, "id": {"kind": "identifier", "why": "unique"}}
        >>> print("\\n".join(column_lines(kinds, indent=11)))
        columns    2: 1 numeric, 1 identifier (left out)
          id       identifier: unique
    """
    counts: dict[str, int] = {}
    for item in kinds.values():
        counts[item["kind"]] = counts.get(item["kind"], 0) + 1
    parts = [f"{n} {kind}" + (" (left out)" if kind in ("identifier", "ignored") else "") for kind, n in counts.items()]
    lines = [f"{'columns':<{indent}}{len(kinds)}: {', '.join(parts)}"]
    named = [(name, item) for name, item in kinds.items() if item["kind"] != "numeric"]
    shown = named[:_MAX_KINDS_SHOWN]
    width = max([indent - 3, *(len(name) for name, _ in shown)])
    lines += [f"  {name:<{width}} {item['kind']}: {item['why']}" for name, item in shown]
    if len(named) > _MAX_KINDS_SHOWN:
        lines.append(f"  ... and {len(named) - _MAX_KINDS_SHOWN} more (--json lists every column)")
    return lines


def _split_line(split: dict[str, Any]) -> str:
    if split["how"] is None:
        return "none: `labelwise train` cannot split this data (see the warnings)"
    test = f" / {split['test']} test" if split["test"] else ""
    return f"{split['how']}: {split['train']} train / {split['valid']} validation items{test}"


def _duplicates_line(report: dict[str, Any]) -> str:
    duplicates = report["duplicates"]
    found = f"{duplicates['items']} repeated items" if duplicates["items"] else "none"
    leakage = report["leakage"]
    if leakage is None:
        return f"{found} ({duplicates['what']})"
    shared = leakage["valid"]["items"]
    between = (
        f"{shared} validation items repeat a training item" if shared else "none shared between train and validation"
    )
    return f"{found} ({duplicates['what']}); {between}"


def _class_lines(counts: dict[str, int], in_valid: dict[str, int] | None) -> list[str]:
    names = list(counts)
    hidden = 0
    if len(names) > _MAX_CLASSES_SHOWN:
        by_size = sorted(names, key=lambda name: -counts[name])
        names, hidden = by_size[:20] + by_size[-10:], len(names) - 30
    width = max(8, *(len(name) for name in names))  # 8: the counts start under the header's "items"
    count_width = max(len("items"), len(str(max(counts.values()))))
    header = f"{'items':>{count_width}}" + ("  validation" if in_valid is not None else "")
    lines = [f"classes     {' ' * (width - 8)}{header}"]
    for i, name in enumerate(names):
        if hidden and i == 20:
            lines.append(f"  ... {hidden} more classes between these (--json lists all)")
        valid = f"  {in_valid[name]:>10}" if in_valid is not None else ""
        lines.append(f"  {name:<{width}}  {counts[name]:>{count_width}}{valid}")
    return lines


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
    head = clf.info.get("head") or {}  # runs saved before the head-loss choice have none
    valid = clf.info.get("metrics", {}).get("valid", {})
    headline = {k: v for k, v in valid.items() if "/" not in k}
    lines = [
        f"task       {clf.task.reason}",
        _data_line(training),
        *column_lines(clf.inputs.kinds, indent=11),
        f"model      {clf.model_spec.backbone} ({_num_parameters(clf):,} parameters)",
        *([f"recipe     {training['image_recipe']['why']}"] if "image_recipe" in training else []),
        _training_line(training),
        *([f"loss       {head['loss']}: {head['reason']}"] if head else []),
        f"balance    {head.get('balance', training.get('balance'))}",
        f"calibrate  {clf.calibration.describe()}",
        *(f"{'decision' if i == 0 else '':<10} {line}" for i, line in enumerate(clf.policy.describe())),
        "validation " + "  ".join(f"{k} {v:.4f}" for k, v in sorted(headline.items())),
    ]
    guards = training.get("guards") or []
    if guards:
        seen = ", ".join(f"{g['rule']} (epoch {g['epoch']})" for g in guards)
        lines.append(f"guards     {seen}: see the warnings above; the model may not be usable as it is")
    skipped = training.get("skipped_images") or []
    if skipped:
        lines.append(f"skipped    {len(skipped)} unreadable images (first: {skipped[0][0]}: {skipped[0][1]})")
    if run_dir:
        lines.append(
            f"saved      {run_dir}   next: labelwise evaluate {run_dir} TEST_DATA | "
            f"labelwise predict {run_dir} NEW_DATA --out predictions.csv"
        )
    return "\n".join(lines)


def _data_line(training: dict[str, Any]) -> str:
    if training.get("members"):
        return (
            f"data       {training.get('num_train')} items, each predicted out of fold by the one member that did "
            f"not train on it; validation: {training.get('split')}"
        )
    return (
        f"data       {training.get('num_train')} train / {training.get('num_valid')} validation items; "
        f"validation: {training.get('split')}"
    )


def _training_line(training: dict[str, Any]) -> str:
    """How the network was fit: epochs of the training loop (of each member when cross-fitted), or the L2 path of
    a solved linear model."""
    members = training.get("members") or []
    if members:
        epochs = [m["epochs_run"] for m in members]
        stops = sorted({m["stopped"] for m in members})
        return (
            f"training   {len(members)} members, {min(epochs)}-{max(epochs)} epochs each, each keeping its best "
            f"epoch on its held-out fold ({', '.join(stops)})"
        )
    history = training.get("history") or []
    if not history or "l2" not in history[0]:
        return (
            f"training   {training.get('epochs_run')} epochs, best epoch {training.get('best_epoch')} "
            f"({training.get('stopped')})"
        )
    kept = history[training.get("best_epoch", 0)]["l2"]
    return (
        f"training   solved (L-BFGS, full batch) at {len(history)} L2 strengths from {history[0]['l2']:.0e} to "
        f"{history[-1]['l2']:.0e}; kept {kept:.1e}, the lowest validation loss"
    )


def _num_parameters(clf: Classifier) -> int:
    return sum(p.numel() for p in clf.network.parameters())
