"""Rules on the outputs: their shape and width, and whether they are what the loss expects (logits or not).

Each rule reads a `_Wiring` and returns a `Finding` or None; `labelwise.checking._check` runs them in order.
A rule that explains a problem better than a later one marks it in ``wiring.fired`` and the later one stays
silent (one logit into cross-entropy is not also a width mismatch).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from labelwise.checking._report import Finding, Severity
from labelwise.checking._wiring import ENCODE, MIN_VALUES, _Wiring, dtype_name, module_path, shape_of, zero_one
from labelwise.task import HeadType, TaskKind


def non_finite(w: _Wiring) -> Finding | None:
    counts = [
        (n, int((~torch.isfinite(t.float())).sum()), t.numel())
        for n, t in (("outputs", w.outputs), ("targets", w.targets))
    ]
    parts = [f"{bad} of {total} {name}" for name, bad, total in counts if bad]
    if not parts:
        return None
    return Finding(
        "non_finite",
        "error",
        f"{' and '.join(parts)} are NaN or infinite.",
        "One non-finite value makes the loss and every gradient NaN, and the weights with them.",
        "Find the source: test the inputs with `torch.isfinite(inputs).all()`, then guard any `log`, `sqrt` or "
        "division in `forward` (an epsilon, or `torch.logsumexp` and `F.logsigmoid`).",
    )


def batch_shape(w: _Wiring) -> Finding | None:
    """shape_mismatch between the outputs and the batch: a conv head's (N, C, 1, 1), or rows that are not items."""
    loss, t, raw = w.loss, w.targets, w.raw_shape
    if len(raw) > 2 and math.prod(raw[2:]) == 1:
        return Finding(
            "shape_mismatch",
            "error",
            f"The model returns outputs of shape {raw} instead of (N, {raw[1]}).",
            f"{loss.torch_name} reads every dimension after the second as a position in an image, so it expects "
            f"targets of that shape (or raises) instead of one target per item.",
            "Flatten the outputs at the end of `forward`: `x.flatten(1)` (or `nn.Flatten()` after the last layer).",
        )
    if not w.aligned:
        return Finding(
            "shape_mismatch",
            "error",
            f"The model returns {w.n} rows for {shape_of(t)} targets.",
            "The loss pairs output row i with target i, so both need one row per item.",
            "Return one row per item from `forward`: flatten with `x.flatten(1)`, not `x.view(-1)`, which merges "
            "the items.",
        )
    if w.outputs.ndim == 1 and (loss.family in ("ce", "nll") or loss.task is not None):
        one = loss.task is not None and loss.task.head is HeadType.ONE_LOGIT
        return Finding(
            "shape_mismatch",
            "error",
            f"{loss.name} gets 1-D outputs of shape {shape_of(w.outputs)}.",
            f"{loss.torch_name} reads a 1-D input as the class scores of one single item, not one score per item."
            if loss.task is None
            else f"labelwise's loss takes logits of shape (N, {loss.task.head_width}) (`task.head_width`).",
            "Pass `outputs.unsqueeze(1)`."
            if one
            else "Return (N, C) outputs, one row per item; for one logit per item use `nn.BCEWithLogitsLoss()`.",
        )
    return None


def target_shape(w: _Wiring) -> Finding | None:
    """shape_mismatch between the targets and what the loss expects, e.g. (N, 1) against (N,)."""
    loss, t = w.loss, w.targets
    if "shape_mismatch" in w.fired or "binary_two_logits_bce" in w.fired:
        return None
    expected, severity = _expected_target_shape(w)
    if expected is None or tuple(t.shape) == expected:
        return None
    if t.ndim == len(expected) == w.outputs.ndim == 2 and not loss.indices:
        return None  # same rows, other width: width_mismatch says it
    if loss.indices and t.shape == w.outputs.shape and zero_one(t):
        return None  # one-hot or multi-hot rows: the ce_*_hot_targets rules say what they are
    what = "one class index per item" if loss.indices else "one 0/1 target per output"
    why = f"{loss.torch_name} takes {what}, shape {expected}"
    if loss.task is not None:
        why = f"labelwise's loss for this {loss.task.kind} Task takes targets of shape {expected}, as {ENCODE} makes"
    elif loss.family is None:
        why = "Most losses broadcast (N, 1) against (N,) to (N, N), comparing every output with every target"
    return Finding(
        "shape_mismatch",
        severity,
        f"The outputs have shape {shape_of(w.outputs)}, the targets {shape_of(t)}.",
        f"{_capital(why)}.",
        _shape_fix(w, expected),
    )


def _expected_target_shape(w: _Wiring) -> tuple[tuple[int, ...] | None, Severity]:
    loss, out, t = w.loss, w.outputs, w.targets
    if loss.task is not None:
        return ((w.n, loss.task.num_classes) if loss.task.kind is TaskKind.MULTILABEL else (w.n,)), "error"
    if loss.indices:
        if t.shape == out.shape and loss.family == "ce":
            return None, "error"  # class probabilities: the one-hot and multi-hot rules read them
        return (w.n, *out.shape[2:]), "error"
    if loss.elementwise:
        return tuple(out.shape), "error"
    pairs = {((w.n, 1), (w.n,)), ((w.n,), (w.n, 1))}
    return (tuple(out.shape) if (tuple(out.shape), tuple(t.shape)) in pairs else None), "warning"


def _shape_fix(w: _Wiring, expected: tuple[int, ...]) -> str:
    t = w.targets
    if t.ndim == 2 and t.shape[1] == 1 and expected == (w.n,):
        return "Pass `targets.squeeze(1)`."
    if t.ndim == 1 and expected == (w.n, 1):
        return "Pass `targets.unsqueeze(1)` (or the outputs as `outputs.squeeze(1)`)."
    if w.loss.elementwise and t.ndim == 1 and w.width > 2 and w.loss.task is None:
        return (
            f"For one sigmoid per class pass `F.one_hot(targets.long(), {w.width}).float()`; for one class per item "
            "use `nn.CrossEntropyLoss()` with these indices."
        )
    return f"Build the targets with {ENCODE}." if w.loss.task else f"Reshape the targets to {expected}."


def binary_one_logit_ce(w: _Wiring) -> Finding | None:
    if w.loss.family != "ce" or w.loss.task is not None or w.outputs.ndim != 2 or w.width != 1:
        return None
    return Finding(
        "binary_one_logit_ce",
        "error",
        f"{w.loss.name} gets one logit per item (outputs {shape_of(w.outputs)}).",
        "Softmax over a single logit is always 1, so the loss is 0 for target 0 and out of range for target 1: "
        "the model learns nothing.",
        "Use `nn.BCEWithLogitsLoss()` on the one logit with `targets.float().unsqueeze(1)`, or make the last "
        "layer output 2 values for CrossEntropyLoss.",
    )


def binary_two_logits_bce(w: _Wiring) -> Finding | None:
    loss, t = w.loss, w.targets
    if not loss.elementwise or loss.task or w.outputs.ndim != 2 or w.width != 2 or not w.aligned:
        return None
    if w.kind in (TaskKind.MULTICLASS, TaskKind.MULTILABEL):
        return None
    one_per_item = t.ndim == 1 or (t.ndim == 2 and t.shape[1] == 1)
    one_hot = t.ndim == 2 and t.shape[1] == 2 and zero_one(t) and bool((t.sum(1) == 1).all())
    if w.kind is TaskKind.BINARY:
        evidence: str = "the Task is binary"
    elif one_per_item:
        evidence = "the targets hold one value per item"
    elif one_hot:
        evidence = "every target row holds exactly one of the two classes"
    else:
        return None
    severity: Severity = "warning" if evidence.startswith("every") else "error"
    spelled = "targets[:, 1:].float()" if one_hot else "targets.float().reshape(-1, 1)"
    indices = "targets.argmax(1)" if one_hot else "targets.long().flatten()"
    return Finding(
        "binary_two_logits_bce",
        severity,
        f"{loss.name} gets two logits per item for a binary problem ({evidence}).",
        "Two independent sigmoids each answer yes or no on their own, so the two probabilities need not sum to 1 "
        "and half the head is redundant.",
        f"Make the last layer output 1 value and pass `{spelled}` as targets, or keep 2 logits and use "
        f"`nn.CrossEntropyLoss()` with class indices `{indices}`.",
    )


def width_mismatch(w: _Wiring) -> Finding | None:
    if w.outputs.ndim != 2 or not w.aligned or {"binary_one_logit_ce", "binary_two_logits_bce"} & w.fired.keys():
        return None
    allowed, source = _allowed_widths(w)
    if not allowed or w.width in allowed:
        return None
    need = " or ".join(map(str, allowed))
    fix = f"Make the last layer output {need} values"
    if w.last_module and isinstance(w.last_module[1], nn.Linear):
        fix += f": `{module_path(w.last_module[0])} = nn.Linear({w.last_module[1].in_features}, {allowed[0]})`"
    if w.loss.task is not None:
        fix += " (`task.head_width`)"
    return Finding(
        "width_mismatch",
        "error",
        f"The model outputs {w.width} values per item, but {source} needs {need}.",
        "Each class needs exactly one output: with fewer, some classes can never be predicted, with more, the "
        "extra outputs are trained toward a class no item has.",
        f"{fix}.",
    )


def _allowed_widths(w: _Wiring) -> tuple[tuple[int, ...], str]:
    loss, k, t = w.loss, w.num_classes, w.targets
    if loss.task is not None:
        return (loss.task.head_width,), f"this {loss.task.kind} Task with {k} classes"
    if k is None:
        if not loss.indices and t.ndim == 2 and t.shape[1] > 1:
            return (int(t.shape[1]),), f"{loss.torch_name} with {t.shape[1]}-column targets"
        return (), ""
    source = f"{loss.torch_name} with {k} classes ({w.source})"
    if loss.indices:
        return (k,), source
    if loss.elementwise and k == 2 and w.kind is not TaskKind.MULTILABEL:
        return ((1,) if w.kind is TaskKind.BINARY else (1, 2)), source
    return ((k,) if loss.elementwise else ()), source


def nll_without_log_softmax(w: _Wiring) -> Finding | None:
    if w.loss.family != "nll" or w.signature == "log_softmax" or w.width < 2:
        return None
    if w.signature == "softmax":
        found, fix = "probabilities (rows in [0, 1] summing to 1)", "Replace the softmax with `nn.LogSoftmax(dim=1)`"
        why = "so on probabilities its gradient ignores how confident a wrong prediction is"
    else:
        found, fix = "raw scores (their rows' logsumexp is not 0)", "Add `nn.LogSoftmax(dim=1)` as the last layer"
        why = "so on raw scores it is unbounded below: the model lowers it forever by inflating one score"
    return Finding(
        "nll_without_log_softmax",
        "error",
        f"NLLLoss gets {found}, not log-probabilities.",
        f"NLLLoss only takes -output[target], {why}.",
        f"{fix}, or use `nn.CrossEntropyLoss()` on the raw logits (it is log-softmax plus NLLLoss).",
    )


def bce_on_logits(w: _Wiring) -> Finding | None:
    out = w.outputs
    if w.loss.family != "bce" or not bool(torch.isfinite(out).all()):
        return None
    outside = int(((out < 0) | (out > 1)).sum())
    if not outside:
        return None
    return Finding(
        "bce_on_logits",
        "error",
        f"BCELoss gets {outside} of {out.numel()} outputs outside [0, 1] (from {out.min():.3g} to {out.max():.3g}).",
        "BCELoss takes probabilities and raises on anything outside [0, 1], on CUDA as a device-side assert.",
        "Use `nn.BCEWithLogitsLoss()` on these raw outputs: it applies the sigmoid itself, in a numerically "
        "stable way.",
    )


def activated(w: _Wiring) -> Finding | None:
    """double_activation when an activation op made the outputs, probabilities_as_logits on values alone."""
    loss, sig, op = w.loss, w.signature, w.last_op
    if loss.family not in ("ce", "bce_logits") or sig is None or (loss.family == "ce" and w.width < 2):
        return None
    if op is None and sig == "sigmoid" and w.outputs.numel() < MIN_VALUES:
        return None  # a few small raw scores can all fall in [0, 1] by chance
    act = op or sig
    sigmoid = loss.family == "bce_logits"
    itself = "the sigmoid" if sigmoid else "log-softmax"
    if act == "log_softmax" and not sigmoid:
        severity: Severity = "warning"
        why = "CrossEntropyLoss applies log-softmax itself and log-softmax of log-probabilities changes nothing, so "
        why += "the loss is the same and the extra op only hides that the outputs are not logits"
    elif act == "log_softmax":
        severity, why = "error", f"{loss.torch_name} applies a sigmoid itself, so outputs at or below 0 give "
        why += "probabilities of at most 0.5: the model can never predict a positive"
    else:
        severity = "warning" if op is None and sig == "sigmoid" else "error"
        cap = math.e / (math.e + w.width - 1)
        why = f"{loss.torch_name} applies {itself} itself, so outputs squashed into [0, 1] " + (
            "give probabilities between 0.5 and 0.73: the model can never predict a negative"
            if sigmoid
            else f"cap its predicted probability at e/(e+{w.width - 1}) = {cap:.2f} and keep gradients small"
        )
    task_note = " (`task.probabilities(logits)` gives probabilities when predicting)" if loss.task else ""
    if op is None:
        looks = {
            "softmax": "softmax probabilities (every row in [0, 1] sums to 1)",
            "log_softmax": "log-softmax outputs (every row's logsumexp is 0)",
            "sigmoid": f"probabilities (all {w.outputs.numel()} values lie in [0, 1])",
        }[sig]
        return Finding(
            "probabilities_as_logits",
            severity,
            f"The outputs look like {looks}, but {loss.name} expects logits.",
            f"{_capital(why)}.",
            f"Return the raw scores from `forward`, before any softmax or sigmoid: {loss.torch_name} applies "
            f"{itself} itself{task_note}.",
        )
    where, drop = f"a `{op}` call in `forward`", f"`{op}` call at the end of `forward`"
    if w.last_module and isinstance(w.last_module[1], (nn.Softmax, nn.LogSoftmax, nn.Sigmoid)):
        where = f"`nn.{type(w.last_module[1]).__name__}` (`{module_path(w.last_module[0])}`)"
        drop = f"{where} at the end of the model"
    also = " (or keep it and use `nn.NLLLoss()`)" if act == "log_softmax" and not sigmoid else ""
    return Finding(
        "double_activation",
        severity,
        f"The model's last op is {where}, and {loss.name} takes its outputs as logits.",
        f"{_capital(why)}.",
        f"Drop the {drop}: {loss.torch_name} applies {itself} itself{also}{task_note}.",
    )


def non_finite_loss(w: _Wiring) -> Finding | None:
    if w.loss_value is None or math.isfinite(w.loss_value) or "non_finite" in w.fired:
        return None
    return Finding(
        "non_finite",
        "error",
        f"{w.loss.name} returns {w.loss_value} on this batch, whose outputs and targets are finite.",
        "A non-finite loss makes every gradient NaN, and the weights with them.",
        "Look for a log of 0 or a division by 0 in the loss; `nn.BCEWithLogitsLoss` and `nn.CrossEntropyLoss` "
        "on raw logits are stable.",
    )


def loss_error(w: _Wiring) -> Finding | None:
    err = w.loss_error
    if err is None or w.has_error:
        return None
    message = (str(err).strip().splitlines() or [""])[0].rstrip(".")[:200]
    return Finding(
        "loss_error",
        "error",
        f"Calling {w.loss.name} on this batch raised {type(err).__name__}('{message}').",
        "The loss must run on a batch before training can, and no rule of check explains this error.",
        f"Compare the outputs {shape_of(w.raw_shape)} and targets {shape_of(w.targets)} {dtype_name(w.targets)} "
        f"with what {w.loss.name} documents for its arguments.",
    )


def _capital(text: str) -> str:
    """Start a sentence with a capital, except a name written lowercase (labelwise, code)."""
    return text if text.startswith(("labelwise", "`")) else text[0].upper() + text[1:]
