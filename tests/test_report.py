"""labelwise.report: the text of ``inspect``, ``evaluate`` and ``train``, written out by hand for small inputs."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from torch import nn

from labelwise.report import format_comparison, format_inspect, format_metrics, format_training
from labelwise.task import TaskKind


def _report(**changes: Any) -> dict[str, Any]:
    """An ``inspect`` report of a small binary table with nothing to warn about; ``changes`` replace its keys."""
    report: dict[str, Any] = {
        "data": "d.csv",
        "source": "table",
        "rows": 6,
        "why": "binary: two distinct labels.",
        "imbalance_ratio": 2.0,
        "label_cardinality": None,
        "empty_label_rate": None,
        "split": {"how": "given", "train": 4, "valid": 2, "test": 0, "valid_classes": {"a": 1, "b": 1}},
        "classes": {"a": 4, "b": 2},
        "duplicates": {"items": 0, "what": "identical feature values"},
        "leakage": {"valid": {"items": 0, "of": 2}, "test": None},
        "unreadable_images": None,
        "columns": {"features": 3, "constant": [], "all_missing": []},
        "warnings": [],
    }
    return report | changes


def _line(text: str, label: str) -> str:
    (line,) = [line for line in text.splitlines() if line.startswith(label)]
    return line


def test_inspect_lists_every_problem_it_was_given() -> None:
    report = _report(
        split={"how": "random 20%", "train": 80, "valid": 10, "test": 10, "valid_classes": {"a": 6, "b": 4}},
        duplicates={"items": 3, "what": "identical feature values"},
        leakage={"valid": {"items": 2, "of": 10}, "test": None},
        unreadable_images=["x.png", "y.png"],
        columns={"features": 1, "constant": ["c1", "c2"], "all_missing": ["m"]},
        warnings=["first thing", "second thing"],
    )
    text = format_inspect(report)
    assert _line(text, "split") == "split       random 20%: 80 train / 10 validation items / 10 test"
    assert _line(text, "duplicates") == (
        "duplicates  3 repeated items (identical feature values); 2 validation items repeat a training item"
    )
    assert _line(text, "images") == "images      2 unreadable"
    assert _line(text, "columns") == "columns     1 feature column, 2 constant, 1 empty"
    assert text.splitlines()[-2:] == ["warning     first thing", "warning     second thing"]


def test_inspect_without_a_split_or_leakage_check() -> None:
    report = _report(split={"how": None, "valid_classes": None}, leakage=None, columns=None)
    text = format_inspect(report)
    assert _line(text, "split") == "split       none: `labelwise train` cannot split this data (see the warnings)"
    assert _line(text, "duplicates") == "duplicates  none (identical feature values)"
    assert not any(line.startswith("columns") for line in text.splitlines())
    # without validation counts the class table has one column
    assert text.splitlines()[-4:-1] == ["classes     items", "  a             4", "  b             2"]


@pytest.mark.parametrize("kind", [pytest.param(kind, id=str(kind)) for kind in TaskKind])
def test_inspect_reports_labels_per_item_for_multilabel_only(kind: TaskKind) -> None:
    multilabel = kind is TaskKind.MULTILABEL
    text = format_inspect(
        _report(label_cardinality=1.25 if multilabel else None, empty_label_rate=0.125 if multilabel else None)
    )
    lines = [line for line in text.splitlines() if line.startswith("labels")]
    assert lines == (["labels      1.25 per item on average; 12.5% of items have none"] if multilabel else [])


def test_inspect_shows_the_largest_and_smallest_of_many_classes() -> None:
    counts = {f"c{i:02d}": 100 - i for i in range(40)}  # c00 is the largest, c39 the smallest
    text = format_inspect(_report(classes=counts, split={**_report()["split"], "valid_classes": None}))
    shown = [line.split()[0] for line in text.splitlines() if line.startswith("  c")]
    assert shown == [f"c{i:02d}" for i in [*range(20), *range(30, 40)]]
    assert "  ... 10 more classes between these (--json lists all)" in text.splitlines()
    index = text.splitlines().index("  ... 10 more classes between these (--json lists all)")
    assert text.splitlines()[index - 1].split()[0] == "c19" and text.splitlines()[index + 1].split()[0] == "c30"


def test_inspect_aligns_long_class_names() -> None:
    split = {**_report()["split"], "valid_classes": {"a_long_class_name": 1, "b": 1}}
    text = format_inspect(_report(classes={"a_long_class_name": 1200, "b": 2}, split=split))
    table = text.splitlines()[text.splitlines().index(_line(text, "classes")) :][:3]
    # names padded to the longest (17), counts right-aligned under "items" (4 digits + 1), validation to 10
    assert table == [
        "classes              items  validation",
        "  a_long_class_name   1200           1",
        "  b                      2           1",
    ]


def test_metrics_lines_put_per_class_entries_last_and_align() -> None:
    text = format_metrics({"recall/cat": 0.5, "roc_auc": 0.75, "accuracy": 0.91234, "ece": 0.02, "recall/bird": 1.0})
    assert text.splitlines() == [
        "  accuracy     0.9123",
        "  ece          0.0200",
        "  roc_auc      0.7500",  # after recall/... alphabetically, before them as a headline entry
        "  recall/bird  1.0000",
        "  recall/cat   0.5000",
    ]
    assert format_metrics({}) == ""


def test_comparison_shows_only_compared_keys_some_run_reports() -> None:
    results = {
        "max_prob": {"accuracy": 0.99, "unknown_auroc": 0.9841, "macro_f1": 0.5},
        "one_vs_rest": {"accuracy": 1.0, "coverage": 0.95},
    }
    assert format_comparison(results).splitlines() == [
        "run          accuracy  unknown_auroc  coverage",
        "max_prob       0.9900         0.9841         -",
        "one_vs_rest    1.0000              -    0.9500",
    ]


def _classifier(**info: Any) -> SimpleNamespace:
    """What format_training reads of a Classifier; a 4 -> 3 linear network has 4 * 3 + 3 = 15 parameters."""
    training = {
        "num_train": 80,
        "num_valid": 20,
        "split": "random 20%",
        "epochs_run": 12,
        "best_epoch": 9,
        "stopped": "early_stopping",
        "balance": "none",
    }
    return SimpleNamespace(
        info={"training": training, "metrics": {"valid": {"macro_f1": 0.9, "accuracy": 0.95, "recall/a": 1.0}}} | info,
        task=SimpleNamespace(reason="multiclass: 3 distinct labels."),
        model_spec=SimpleNamespace(backbone="mlp"),
        inputs=SimpleNamespace(
            kinds={
                "age": {"kind": "numeric", "why": "numbers"},
                "uid": {"kind": "identifier", "why": "unique; left out"},
            }
        ),
        network=nn.Linear(4, 3),
        calibration=SimpleNamespace(describe=lambda: "temperature scaling, T 1.5"),
        policy=SimpleNamespace(describe=lambda: ["argmax over 3 classes", "abstains below 0.4"]),
    )


def test_training_summary() -> None:
    text = format_training(_classifier(), run_dir="runs/x")  # type: ignore[arg-type]
    assert text.splitlines() == [
        "task       multiclass: 3 distinct labels.",
        "data       80 train / 20 validation items; validation: random 20%",
        "columns    2: 1 numeric, 1 identifier (left out)",
        "  uid      identifier: unique; left out",
        "model      mlp (15 parameters)",
        "training   12 epochs, best epoch 9 (early_stopping)",
        "balance    none",
        "calibrate  temperature scaling, T 1.5",
        "decision   argmax over 3 classes",
        "           abstains below 0.4",
        "validation accuracy 0.9500  macro_f1 0.9000",
        "saved      runs/x   next: labelwise evaluate runs/x TEST_DATA | "
        "labelwise predict runs/x NEW_DATA --out predictions.csv",
    ]


def test_training_summary_with_a_head_guards_and_skipped_images() -> None:
    clf = _classifier(head={"loss": "sampled softmax", "reason": "50000 classes", "balance": "class weights"})
    clf.info["training"] |= {"guards": [{"rule": "collapse", "epoch": 3}], "skipped_images": [("bad.png", "truncated")]}
    clf.info["training"]["image_recipe"] = {"why": "1,257 training images of 32 px: 3 halvings"}
    lines = format_training(clf, run_dir=None).splitlines()  # type: ignore[arg-type]
    after_model = lines[lines.index("model      mlp (15 parameters)") + 1]
    assert after_model == "recipe     1,257 training images of 32 px: 3 halvings"
    assert "loss       sampled softmax: 50000 classes" in lines
    assert "balance    class weights" in lines  # the head's balance wins over the training's
    assert "guards     collapse (epoch 3): see the warnings above; the model may not be usable as it is" in lines
    assert "skipped    1 unreadable images (first: bad.png: truncated)" in lines
    assert not any(line.startswith("saved") for line in lines)
