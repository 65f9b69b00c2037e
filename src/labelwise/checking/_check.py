"""`check`: one traced forward pass, the rules, one call of the loss."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch

from labelwise.checking import _outputs, _targets
from labelwise.checking._report import CheckReport, Finding
from labelwise.checking._wiring import (
    _Loss,
    _Trace,
    _Wiring,
    describe,
    flat,
    forward,
    logits_of,
    read_classes,
    read_loss,
)
from labelwise.errors import ConfigError
from labelwise.task import Label, Task, TaskKind

__all__ = ["LossFn", "check"]

LossFn = Callable[[torch.Tensor, torch.Tensor], object]
_Rule = Callable[[_Wiring], Finding | None]
# What `read_classes` returns: the class names, their number, where they came from, the kind.
_Classes = tuple[tuple[Label, ...] | None, int | None, str, TaskKind | None]
# In `RULES` order: a rule that explains a problem better runs first and silences the later ones.
_BEFORE_LOSS: tuple[_Rule, ...] = (
    _outputs.non_finite,
    _outputs.batch_shape,
    _outputs.binary_one_logit_ce,
    _outputs.binary_two_logits_bce,
    _outputs.target_shape,
    _outputs.width_mismatch,
    _targets.label_out_of_range,
    _targets.ce_float_targets,
    _targets.ce_multi_hot_targets,
    _targets.ce_one_hot_float_targets,
    _targets.bce_long_targets,
    _outputs.nll_without_log_softmax,
    _outputs.bce_on_logits,
    _outputs.activated,
    _targets.dominant_class,
    _targets.class_absent,
)
_AFTER_LOSS: tuple[_Rule, ...] = (_outputs.non_finite_loss, _outputs.loss_error)


def check(
    model: Callable[[Any], object],
    loss_fn: LossFn,
    batch: Sequence[Any],
    *,
    classes: int | Sequence[Label] | None = None,
    task: Task | None = None,
) -> CheckReport:
    """Run ``model`` once on ``batch`` and report how its outputs, ``loss_fn`` and the targets fit together.

    The forward pass runs in training mode (what the loss sees) under ``torch.no_grad``; every module's mode,
    the buffers (BatchNorm statistics) and the random number generators are restored afterwards. ``loss_fn`` is
    then called once; an error it raises that no rule explains becomes a ``loss_error`` finding. On CUDA the
    loss is not called once a rule found a problem: a bad index there trips a device-side assert.

    Args:
        model: an ``nn.Module`` (or any callable) mapping the batch's inputs to outputs ``(N, C)``, or to an
            object holding them as ``logits`` (as Hugging Face models do).
        loss_fn: called as ``loss_fn(outputs, targets)``: ``nn.CrossEntropyLoss``, ``nn.NLLLoss``,
            ``nn.BCEWithLogitsLoss``, ``nn.BCELoss``, their functional forms (also inside ``functools.partial``)
            or labelwise's `TaskLoss`; for any other callable only shapes and ranges are checked.
        batch: ``(inputs, targets)``.
        classes: the number of classes, or their names (which the messages then use).
        task: the labelwise `Task` the model is for; default: a `TaskLoss`'s Task.

    Returns:
        the findings; ``report.ok`` is False when one of them is an error.

    Raises:
        ConfigError: a batch that is not an ``(inputs, targets)`` pair, targets or outputs that are not tensors,
            or both ``classes`` and ``task``.

    Example:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1))
        >>> report = check(model, nn.CrossEntropyLoss(), (torch.randn(8, 4), torch.arange(8) % 3))
        >>> print(report.errors[0].fix)
        Drop the `nn.Softmax` (`model[1]`) at the end of the model: CrossEntropyLoss applies log-softmax itself.
    """
    inputs, targets = _unpack(batch)
    loss = read_loss(loss_fn)
    read = read_classes(classes, task or loss.task, explicit=task is not None)
    try:
        raw, trace = forward(model, inputs)
    except Exception as err:  # whatever the model raises on these inputs is the finding
        return CheckReport((_forward_failed(err, inputs),), checked=f"one forward pass on inputs {describe(inputs)}")
    outputs = logits_of(raw)
    wiring = _wiring_of(outputs, targets, loss=loss, classes_read=read, trace=trace)
    findings = _run(wiring, _BEFORE_LOSS)
    notes = [] if loss.family else [f"{loss.name} is not a loss check knows: it checked shapes and ranges only."]
    findings, notes = _with_the_loss(wiring, loss_fn, outputs, targets, findings=findings, notes=notes)
    checked = f"{loss.name} on outputs {describe(outputs)} and targets {describe(targets)}"
    return CheckReport(tuple(findings), checked=checked, notes=tuple(notes))


def _wiring_of(
    outputs: torch.Tensor, targets: torch.Tensor, *, loss: _Loss, classes_read: _Classes, trace: _Trace
) -> _Wiring:
    """What the rules read: the outputs and targets on the CPU, the loss, the classes, the traced last step."""
    names, num_classes, source, kind = classes_read
    return _Wiring(
        outputs=flat(outputs.detach().float().cpu()),
        raw_shape=tuple(outputs.shape),
        targets=targets.detach().cpu(),
        loss=loss,
        classes=names,
        num_classes=num_classes,
        source=source,
        kind=kind,
        last_module=trace.last_module,
        last_op=trace.last_op,
        half_precision=outputs.dtype in (torch.float16, torch.bfloat16),
    )


def _unpack(batch: object) -> tuple[object, torch.Tensor]:
    if not isinstance(batch, tuple | list) or len(batch) != 2:
        length = f" of length {len(batch)}" if isinstance(batch, tuple | list) else ""
        raise ConfigError(f"batch is a {type(batch).__name__}{length}, expected an (inputs, targets) pair; pass one.")
    inputs, targets = batch
    if not isinstance(targets, torch.Tensor):
        raise ConfigError(
            f"the batch's targets are a {type(targets).__name__}, expected a torch.Tensor; "
            "pass `torch.as_tensor(targets)`."
        )
    return inputs, targets


def _forward_failed(err: Exception, inputs: object) -> Finding:
    message = (str(err).strip().splitlines() or [""])[0].rstrip(".")[:200]
    return Finding(
        "forward_failed",
        "error",
        f"The model raised {type(err).__name__}('{message}') on inputs {describe(inputs)}.",
        "Check needs one forward pass to see what the loss receives, and training would fail at the same call.",
        "Make `model(inputs)` run on this batch: compare the inputs' shape, dtype and device with the first layer's.",
    )


def _with_the_loss(
    wiring: _Wiring,
    loss_fn: LossFn,
    outputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    findings: list[Finding],
    notes: list[str],
) -> tuple[list[Finding], list[str]]:
    """The findings and notes after calling the loss once and running the rules that read its value or error.

    On CUDA the loss is not called once a rule found an error: a bad index there trips a device-side assert.
    """
    if wiring.has_error and outputs.device.type != "cpu":
        return findings, [
            *notes,
            "the loss was not called: on CUDA a bad index or probability trips a device-side assert.",
        ]
    wiring.loss_value, wiring.loss_error, warned = _call_loss(loss_fn, outputs, targets)
    return [*findings, *_run(wiring, _AFTER_LOSS)], [*notes, *warned]


def _call_loss(
    loss_fn: LossFn, outputs: torch.Tensor, targets: torch.Tensor
) -> tuple[float | None, Exception | None, list[str]]:
    """The loss's value or error, and what it warned (torch warns, for example, before broadcasting)."""
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        try:
            value: float | None = float(torch.as_tensor(loss_fn(outputs, targets)).float().mean())
            error = None
        except Exception as err:  # the loss's own error becomes a finding when no rule explains it
            value, error = None, err
    return value, error, [f"the loss warned: {str(w.message).strip()}" for w in caught]


def _run(wiring: _Wiring, rules: Sequence[_Rule]) -> list[Finding]:
    findings = []
    for rule in rules:
        finding = rule(wiring)
        if finding is not None:
            findings.append(finding)
            wiring.fired[finding.rule] = finding.severity
    return findings
