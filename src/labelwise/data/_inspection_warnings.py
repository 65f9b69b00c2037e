"""The one-line warnings of ``labelwise inspect``: each says what was found, why it matters and what to do.

`labelwise.data.inspection.inspect_data` computes the findings; this module only phrases them.
"""

from __future__ import annotations

from typing import Any

from labelwise._heads import IMBALANCE_RATIO
from labelwise.data._text_column import MAX_CHARS
from labelwise.errors import format_examples, format_rows
from labelwise.task import Task, TaskKind

__all__ = ["EXAMPLES", "MIN_CLASS_ITEMS", "report_warnings"]

EXAMPLES = 5  # groups (and items per group) listed per finding
# Under an 80/20 split a class with fewer items expects less than one validation item: it can be trained on or
# measured, not both.
MIN_CLASS_ITEMS = 5


# -- warnings: one line each, what was found, why it matters, what to do ----------------------------
def report_warnings(report: dict[str, Any], task: Task, notes: list[str]) -> list[str]:
    """The ``warnings`` of an `inspect_data` report: each finding as one line, then ``notes`` (the split's)."""
    found = [
        *_imbalance_warnings(report, task),
        *_rare_warnings(report["rare_classes"], task),
        *_coverage_warnings(report["split"], report["rare_classes"]),
        *_duplicate_warnings(report),
        *_leakage_warnings(report["leakage"]),
        *_image_warnings(report["unreadable_images"]),
        *_column_warnings(report["columns"]),
        *_text_warnings(report.get("text")),
        *_nothing_read(report.get("column_kinds")),
        *notes,
    ]
    return [" ".join(line.split()) for line in found]


def _counted(counts: dict[str, int], unit: str) -> str:
    # "items" -> "item", "positives" -> "positive" for a count of one.
    shown = ", ".join(f"{name!r} ({n} {unit if n != 1 else unit[:-1]})" for name, n in list(counts.items())[:EXAMPLES])
    more = len(counts) - EXAMPLES
    return f"{shown} and {more} more" if more > 0 else shown


def _imbalance_warnings(report: dict[str, Any], task: Task) -> list[str]:
    # Multilabel imbalance is per label (positives vs negatives), which the rare-label findings cover.
    ratio = report["imbalance_ratio"]
    if task.kind is TaskKind.MULTILABEL or ratio < IMBALANCE_RATIO:
        return []
    counts: dict[str, int] = report["classes"]
    largest, smallest = max(counts, key=counts.__getitem__), min(counts, key=counts.__getitem__)
    return [
        f"classes are imbalanced {ratio:g}:1 ({largest!r} {counts[largest]} items, {smallest!r} "
        f"{counts[smallest]}): `labelwise train` weights the loss by inverse class frequency (--balance auto, the "
        "default); judge the model by F1, balanced accuracy or per-class recall rather than accuracy."
    ]


def _rare_warnings(rare: dict[str, Any], task: Task) -> list[str]:
    found = []
    if rare["to_validate"]:
        rare_items = rare["to_validate"]
        plural = "labels" if task.kind is TaskKind.MULTILABEL else "classes"
        found.append(
            f"{plural} with fewer than {MIN_CLASS_ITEMS} items are too few to both train on and validate: "
            f"{_counted(rare_items, 'items')}; add items, or merge or drop those {plural}."
        )
    low, min_count = rare["to_threshold"], rare["min_valid_items"]
    if low and task.kind is TaskKind.BINARY:
        found.append(
            f"the validation split holds fewer than {min_count} items of {_counted(low, 'items')}: the threshold "
            "stays at 0.5 instead of being tuned for --metric; add items of that class, or give a larger "
            "validation split (an is_valid column)."
        )
    elif low:
        found.append(
            f"{len(low)} label(s) have fewer than {min_count} validation positives (or negatives): "
            f"{_counted(low, 'positives')}; they use the threshold shared by all labels instead of one of their "
            "own; add items with those labels for thresholds of their own."
        )
    return found


def _coverage_warnings(split: dict[str, Any], rare: dict[str, Any]) -> list[str]:
    found = []
    valid_only, train_only = split.get("valid_only"), split.get("train_only")
    if valid_only and valid_only["count"]:
        found.append(
            f"{_n(valid_only['count'], 'class has', 'classes have')} validation rows but no training rows "
            f"({_some(valid_only)}): the model cannot learn them and their validation items count as errors; move "
            "some of their rows into training (is_valid = False), or drop those classes."
        )
    # Classes too rare to validate land in training alone under the stratified split; the rare finding names them.
    rare_only = len(rare["to_validate"]) if "stratified" in (split.get("how") or "") else 0
    if train_only and train_only["count"] > rare_only:
        found.append(
            f"{_n(train_only['count'], 'class has', 'classes have')} training rows but no validation rows "
            f"({_some(train_only)}): no validation metric covers them; give them validation rows (is_valid = True) "
            "to measure them."
        )
    return found


def _some(found: dict[str, Any]) -> str:
    """``{count, examples}`` as "'a', 'b' and 998 more"."""
    more = found["count"] - len(found["examples"])
    shown = ", ".join(repr(name) for name in found["examples"])
    return f"{shown} and {more} more" if more > 0 else shown


def _name_items(ids: list[Any]) -> str:
    """Rows of a table (0-based) or image paths, the way error messages name them."""
    return format_rows(ids) if ids and isinstance(ids[0], int) else format_examples(ids)


def _n(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def _name_item(item: int | str) -> str:
    return f"row {item}" if isinstance(item, int) else repr(item)


def _duplicate_warnings(report: dict[str, Any]) -> list[str]:
    found = []
    dup, conflict = report["duplicates"], report["conflicting_labels"]
    if dup["items"]:
        found.append(
            f"exact duplicates: {_n(dup['items'], 'copy', 'copies')} of other items ({dup['what']}; "
            f"{_n(dup['groups'], 'group')}, e.g. {_name_items(dup['examples'][0])}); copies weigh more in training "
            "and can leak into validation; remove them unless they are genuinely repeated observations."
        )
    if conflict["groups"]:
        first = conflict["examples"][0]
        labelled = ", ".join(
            f"{_name_item(item)} ({label!r})" for item, label in zip(first["ids"], first["labels"], strict=True)
        )
        found.append(
            f"identical items with different labels: {_n(conflict['groups'], 'group')} ({conflict['items']} items), "
            f"e.g. {labelled}; no model can fit two labels of one input; correct the labels, or keep one per item."
        )
    return found


def _leakage_warnings(leakage: dict[str, Any] | None) -> list[str]:
    found = []
    for side, name in (("valid", "validation"), ("test", "test")):
        part = None if leakage is None else leakage[side]
        if not part or not part["items"]:
            continue
        item, train_item = part["examples"][0]
        found.append(
            f"{part['items']} of {part['of']} {name} items ({part['items'] / part['of']:.1%}) repeat a training item "
            f"exactly (e.g. {name} {_name_item(item)} = training {_name_item(train_item)}): {name} scores"
            + (", calibration and tuned thresholds" if side == "valid" else "")
            + " will look better than on new data; remove the duplicates before training, or keep each group of "
            "copies on one side (an is_valid column or the valid/ folder)."
        )
    return found


def _nothing_read(kinds: dict[str, dict[str, str]] | None) -> list[str]:
    if not kinds or not all("left out" in kind["why"] for kind in kinds.values()):
        return []
    first = next(iter(kinds))
    return [
        f"`labelwise train` would stop here: every input column is left out ({', '.join(map(repr, kinds))}); pass "
        f"--column-kinds {first}=categorical, or --text-cols {first} for a column of words, to read one."
    ]


def _text_warnings(text: dict[str, dict[str, Any]] | None) -> list[str]:
    found = []
    for name, stats in (text or {}).items():
        shared = stats["shared_train_valid"]
        if shared:
            found.append(
                f"text column {name!r}: {shared} validation texts repeat a training text up to case, spaces and "
                "punctuation: validation scores, calibration and tuned thresholds will look better than on new text; "
                "remove the near-copies, or keep each group of them on one side (an is_valid column)."
            )
        if stats["truncated"]:
            found.append(
                f"text column {name!r}: {stats['truncated']} cells are longer than {MAX_CHARS:,} characters "
                f"(longest {stats['chars']['max']:,}); labelwise reads each up to there."
            )
        if stats["empty"]:
            found.append(
                f"text column {name!r}: {stats['empty']} of {stats['cells']} cells are empty; those rows are "
                "learned and predicted without text."
            )
    return found


def _image_warnings(unreadable: list[dict[str, str]] | None) -> list[str]:
    if not unreadable:
        return []
    shown = "; ".join(f"{bad['path']!r} ({bad['reason']})" for bad in unreadable[:EXAMPLES])
    more = f" and {len(unreadable) - EXAMPLES} more" if len(unreadable) > EXAMPLES else ""
    return [
        f"{len(unreadable)} image(s) cannot be read: {shown}{more}; `labelwise train` stops on them: replace or "
        "delete them, or pass --skip-bad-images to leave them out."
    ]


def _column_warnings(columns: dict[str, Any] | None) -> list[str]:
    if columns is None:
        return []
    found = []
    if columns["all_missing"]:
        found.append(
            f"feature column(s) {format_examples(columns['all_missing'])} are empty in every row: they carry no "
            "information; training leaves them out."
        )
    if columns["constant"]:
        found.append(
            f"feature column(s) {format_examples(columns['constant'])} hold the same value in every row: they carry "
            "no information; training leaves them out."
        )
    return found
