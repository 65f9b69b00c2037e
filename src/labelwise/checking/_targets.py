"""Rules on the targets: dtype, shape and range against what the loss expects, and the batch's class balance.

Balance is judged only on a batch with no error finding and enough items to show it, and only for a loss
without class weights (an unweighted loss is what one frequent class can minimise).
"""

from __future__ import annotations

import torch

from labelwise.checking._report import Finding, Severity
from labelwise.checking._wiring import ENCODE, _Wiring, dtype_name, shape_of, zero_one
from labelwise.errors import format_examples

MIN_BALANCE_ITEMS = 16  # fewer items say too little about the data's balance
MIN_PER_CLASS = 5  # an absent class counts only when 5 items per class were expected
DOMINANT_SHARE = 0.9  # predicting a class this frequent is already right 90% of the time


def label_out_of_range(w: _Wiring) -> Finding | None:
    loss, t = w.loss, w.targets
    if not w.aligned or t.is_floating_point() and loss.indices or "binary_one_logit_ce" in w.fired:
        return None
    if loss.elementwise:
        indices_into_bce = "shape_mismatch" in w.fired and t.ndim == 1 and w.width > 2  # the shape rule says it
        return None if indices_into_bce else _outside_unit(w)
    guessed = loss.family is None and t.ndim == 1 and w.outputs.ndim == 2 and w.width > 1 and not t.is_floating_point()
    if not (loss.indices or guessed) or t.ndim != w.outputs.ndim - 1:
        return None
    k = w.num_classes or w.width
    valid = t != loss.ignore_index if loss.ignore_index is not None else torch.ones_like(t, dtype=torch.bool)
    bad = t[valid & ((t < 0) | (t >= k))]
    if not bad.numel():
        return None
    values = sorted(set(bad.tolist()))
    fix = f"Encode the labels as 0..{k - 1} ({ENCODE}, or `torch.unique(labels, return_inverse=True)[1]`)"
    if values[0] >= 0:
        fix += f", or make the last layer output {values[-1] + 1} values if there are that many classes"
    if t[valid].min() == 1 and t[valid].max() == k:
        fix = "Pass `targets - 1`: the labels count from 1"
    elif values[0] < 0 and loss.family in ("ce", "nll"):
        fix += f", or pass `ignore_index={values[0]}` to the loss if {values[0]} marks items to skip"
    return Finding(
        "label_out_of_range",
        "warning" if guessed else "error",
        f"{bad.numel()} of {t.numel()} targets are outside the class range 0..{k - 1}: {format_examples(values)}.",
        f"A class index picks one of the {k} outputs, so an index outside 0..{k - 1} raises on the CPU and stops "
        "a CUDA run with a device-side assert.",
        f"{fix}.",
    )


def _outside_unit(w: _Wiring) -> Finding | None:
    t = w.targets.float()
    bad = t[(t < 0) | (t > 1)]
    if not bad.numel():
        return None
    values = sorted(set(t.flatten().tolist()))
    fix = "Encode each label as 0 or 1: `(targets == positive).float()`, or let labelwise encode them: " + ENCODE
    if values == [1.0, 2.0]:
        fix = "Pass `(targets - 1).float()`: the labels are 1 and 2"
    elif values == [-1.0, 1.0]:
        fix = "Pass `(targets > 0).float()`: the labels are -1 and 1"
    return Finding(
        "label_out_of_range",
        "error",
        f"{bad.numel()} of {t.numel()} targets are outside [0, 1]: {format_examples(sorted(set(bad.tolist())))}.",
        f"{w.loss.torch_name} compares each predicted probability with a target probability, so a target outside "
        "[0, 1] asks for a probability no sigmoid can reach.",
        f"{fix}.",
    )


def ce_float_targets(w: _Wiring) -> Finding | None:
    loss, t = w.loss, w.targets
    if not loss.indices or not t.is_floating_point() or not w.aligned or t.shape == w.outputs.shape:
        return None
    whole = bool((t == t.round()).all())
    fix = (
        "Pass class indices: `targets.long()`"
        if whole
        else (
            "Pass `targets.long()` only if these are class numbers; soft targets of a binary problem need one logit "
            "and `nn.BCEWithLogitsLoss()`"
        )
    )
    return Finding(
        "ce_float_targets",
        "error",
        f"{loss.name} gets {dtype_name(t)} targets of shape {shape_of(t)}.",
        f"{loss.torch_name} reads (N,) targets as class indices, which must be integers, and raises on floats.",
        f"{fix}{f', or build them with {ENCODE}' if loss.task else ''}.",
    )


def _hot_rows(w: _Wiring) -> tuple[int, int] | None:
    """(rows with 2+ ones, rows with none) of 0/1 targets shaped like the outputs of an index loss."""
    t = w.targets
    if not w.loss.indices or t.ndim != 2 or t.shape != w.outputs.shape or t.shape[1] < 2 or not zero_one(t):
        return None
    per_row = t.float().sum(1)
    return int((per_row > 1).sum()), int((per_row == 0).sum())


def ce_multi_hot_targets(w: _Wiring) -> Finding | None:
    rows = _hot_rows(w)
    if rows is None or rows == (0, 0):
        return None
    loss, t = w.loss, w.targets
    silently = loss.family == "ce" and t.is_floating_point() and loss.task is None
    fix = "use `nn.BCEWithLogitsLoss()` with `targets.float()` (one sigmoid per class) and no softmax"
    if loss.task is not None:
        fix = "build its Task with `infer_task(labels)` (or `kind='multilabel'`) and train with `loss_for(task)`"
    why = f"{loss.torch_name} makes the classes compete for one unit of probability, so it cannot predict both or none"
    if loss.task is not None:
        why = (
            f"labelwise's loss for this {loss.task.kind} Task learns one class per item: it cannot predict both or none"
        )
    return Finding(
        "ce_multi_hot_targets",
        "error",
        f"The targets are multi-hot: {rows[0]} of {w.n} rows hold 2+ classes and {rows[1]} hold none.",
        f"{why}, and {'it silently reads these rows as probabilities' if silently else 'it raises on these targets'}.",
        f"This is multilabel data: {fix}.",
    )


def ce_one_hot_float_targets(w: _Wiring) -> Finding | None:
    if _hot_rows(w) != (0, 0):
        return None
    loss, t = w.loss, w.targets
    if loss.family == "ce" and t.is_floating_point() and loss.task is None:
        severity: Severity = "warning"
        why = (
            "CrossEntropyLoss reads float (N, C) targets as class probabilities: the same loss as class indices "
            "only without class weights, and `ignore_index` does not apply."
        )
    else:
        severity, why = "error", f"{loss.name} takes (N,) class indices here and raises on (N, C) targets."
    return Finding(
        "ce_one_hot_float_targets",
        severity,
        f"The targets are one-hot {dtype_name(t)} rows of shape {shape_of(t)}.",
        why,
        "Pass class indices: `targets.argmax(1)`.",
    )


def bce_long_targets(w: _Wiring) -> Finding | None:
    loss, t = w.loss, w.targets
    if not loss.elementwise or t.is_floating_point():
        return None
    return Finding(
        "bce_long_targets",
        "error",
        f"{loss.name} gets {dtype_name(t)} targets.",
        f"{loss.torch_name} compares probabilities with 0/1 targets in floating point and raises on integer targets.",
        f"Pass `targets.float()`, or let labelwise encode the labels: {ENCODE} returns float targets for BCE.",
    )


def _counts(w: _Wiring) -> tuple[torch.Tensor, int, bool] | None:
    """Items per class (single-label) or positives per label (multilabel), the number of items, multilabel."""
    loss, t = w.loss, w.targets
    if loss.family is None or loss.weighted or w.has_error or not w.aligned:
        return None
    if loss.indices and t.ndim == 1 and not t.is_floating_point():
        valid = t[t != loss.ignore_index] if loss.ignore_index is not None else t
        counts = torch.bincount(valid.long(), minlength=w.num_classes or w.width)
        return counts, valid.numel(), False
    if not loss.elementwise or not zero_one(t):
        return None
    if w.width == 1:
        positives = int(t.sum())
        return torch.tensor([t.numel() - positives, positives]), t.numel(), False
    return (t.float().sum(0).long(), w.n, True) if t.ndim == 2 else None


def dominant_class(w: _Wiring) -> Finding | None:
    counted = _counts(w)
    if counted is None or counted[1] < MIN_BALANCE_ITEMS:
        return None
    counts, items, multilabel = counted
    if multilabel:
        skewed = [i for i, c in enumerate(counts.tolist()) if c and max(c, items - c) >= DOMINANT_SHARE * items]
        if not skewed:
            return None
        listed = ", ".join(f"{w.name(i)} {int(counts[i])}/{items}" for i in skewed[:5])
        found = f"Labels positive in under 10% or over 90% of the {items} items in this batch: {listed}."
        why = "With no pos_weight, giving such a label its majority answer always keeps its loss low"
        fix = "Weight each label's positives: `nn.BCEWithLogitsLoss(pos_weight=negatives / positives)`, one per label"
    else:
        top = int(counts.argmax())
        if int(counts[top]) < DOMINANT_SHARE * items:
            return None
        share = f"{int(counts[top]) / items:.0%}"
        found = f"Class {w.name(top)} makes up {int(counts[top])} of {items} items in this batch ({share})."
        why = f"With no class weights, always predicting {w.name(top)} is already right {share} of the time"
        fix = "Weight the positives: `nn.BCEWithLogitsLoss(pos_weight=torch.tensor([negatives / positives]))`"
        if w.loss.family in ("ce", "nll"):
            weight = f"weight=counts.sum() / ({len(counts)} * counts)"
            fix = f"Weight by inverse class frequency: `nn.{w.loss.torch_name}({weight})`"
    if w.loss.task is not None:
        fix = (
            "Weight the loss: `b = infer_balance(train_targets, task)`, then "
            "`loss_for(task, pos_weight=b.pos_weight, class_weight=b.class_weight)` (`--balance auto` in the CLI)"
        )
    return Finding(
        "dominant_class",
        "warning",
        found,
        f"{why}, so training can collapse onto it.",
        f"{fix}, with the counts of the whole training set.",
    )


def class_absent(w: _Wiring) -> Finding | None:
    counted = _counts(w)
    if counted is None or counted[1] < MIN_BALANCE_ITEMS:
        return None
    counts, items, multilabel = counted
    if not multilabel and ("dominant_class" in w.fired and len(counts) == 2 or items < MIN_PER_CLASS * len(counts)):
        return None  # binary: the dominant class said it; or too few items to expect every class
    missing = [w.name(i) for i, c in enumerate(counts.tolist()) if c == 0]
    if not missing:
        return None
    what = "Labels positive in no item" if multilabel else "Classes with no item"
    return Finding(
        "class_absent",
        "warning",
        f"{what} in this batch of {items}: {', '.join(missing[:5])}"
        f"{f' and {len(missing) - 5} more' if len(missing) > 5 else ''}.",
        "If the training data lacks them too, nothing teaches the model to predict them.",
        "Shuffle the training data (`DataLoader(..., shuffle=True)`) or sample by class "
        "(`WeightedRandomSampler`), and weight the loss by class frequency.",
    )
