"""`choose_head_loss`: full, chunked (exact) or sampled loss for a head, with the reason in one sentence.

The rule (``requested="auto"``), on the float32 (batch, C) logits plus their gradient, 8 * batch * C bytes. The
exact loss is ``full`` while those bytes are within `FULL_MEMORY_FRACTION` of the available memory, else
``chunked``, which never holds them (multilabel heads have no chunked form: ``sampled`` there).

1. binary: ``full`` (one logit per row; nothing to save).
2. fewer than `MEASURED_FROM_SAMPLED` * K classes (K sampled negatives): the exact loss; a sampled step touches
   nearly as many head rows, so it saves too little to pay for its noisier gradient.
3. at least `SAMPLED_FROM_CLASSES` classes: ``sampled`` without measuring (an exact step there takes seconds and
   costs > 10x a sampled one on any hardware: C / K >= 24 in head FLOPs).
4. in between: one step of the exact loss and one of the sampled loss are timed on the run's own shapes
   (`labelwise.huge.step_cost`); ``sampled`` when the exact step takes more than `SAMPLED_PAYS_OFF` times as
   long, else the exact loss. The reason names both times.

An explicit ``requested`` is honoured or refused with a `ConfigError`, never silently swapped: ``chunked`` or
``sampled`` for binary, ``chunked`` for multilabel, and ``sampled`` with K >= C are refused.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from labelwise.errors import ConfigError
from labelwise.huge.sampled import DEFAULT_NUM_SAMPLED

__all__ = [
    "FULL_MEMORY_FRACTION",
    "HEAD_LOSSES",
    "MEASURED_FROM_SAMPLED",
    "SAMPLED_FROM_CLASSES",
    "SAMPLED_PAYS_OFF",
    "available_memory_bytes",
    "choose_head_loss",
]

HEAD_LOSSES = ("auto", "full", "chunked", "sampled")
_KINDS = ("binary", "multiclass", "multilabel")
# 10%: the logits are not the only thing alive during a step (activations, optimizer state, the data loader),
# and a swap storm costs far more than the 1.5-2x compute of the chunked loss.
FULL_MEMORY_FRACTION = 0.10
# Below 2K classes a sampled step (N + K of the C head rows) cannot be more than ~2x cheaper than an exact one.
MEASURED_FROM_SAMPLED = 2
# From 10^5 classes a full (or chunked) softmax step costs > 10x a sampled one with K = 4096 (C / K >= 24 in
# head FLOPs; benchmarks/huge_labels.py --part steps measures it).
SAMPLED_FROM_CLASSES = 100_000
# TUNED BELOW
SAMPLED_PAYS_OFF = 3.0

StepTime = Callable[[str], float]


def available_memory_bytes() -> int:
    """Physical memory available now (``os.sysconf``: free pages times page size; no psutil needed)."""
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # not POSIX, or the name is unknown: assume 8 GB
        return 8 * 1024**3


def _gb(num_bytes: float) -> str:
    return f"{num_bytes / 1e9:.2f} GB"


def _check(*, num_classes: int, batch_size: int, hidden: int, kind: str, requested: str, num_sampled: int) -> None:
    for name, value in (("num_classes", num_classes), ("batch_size", batch_size), ("hidden", hidden)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name}={value!r}; expected a positive int.")
    if isinstance(num_sampled, bool) or not isinstance(num_sampled, int) or num_sampled < 1:
        raise ConfigError(f"num_sampled={num_sampled!r}; expected a positive int, e.g. {DEFAULT_NUM_SAMPLED}.")
    if kind not in _KINDS:
        raise ConfigError(f"kind={kind!r}; expected one of {list(_KINDS)}.")
    if requested not in HEAD_LOSSES:
        raise ConfigError(f"--loss {requested!r}; expected one of {list(HEAD_LOSSES)}.")


def _refusal(*, num_classes: int, kind: str, requested: str, num_sampled: int) -> str | None:
    """The message refusing an explicit `requested` loss, or None when it can be used."""
    if kind == "binary" and requested in ("chunked", "sampled"):
        return (
            f"--loss {requested} needs a head with one logit per class, but a binary task has a single logit; "
            "use --loss full (or auto)."
        )
    if kind == "multilabel" and requested == "chunked":
        return (
            "--loss chunked is an exact softmax cross-entropy for single-label tasks, but the task is multilabel "
            "(per-label BCE); use --loss sampled for a huge multilabel head, or --loss full."
        )
    if requested == "sampled" and num_sampled >= num_classes:
        return (
            f"--loss sampled draws {num_sampled} negatives but the head has only {num_classes} classes, so "
            "sampling saves nothing; use --loss full (or chunked), or fewer negatives (--num-sampled)."
        )
    return None


def choose_head_loss(
    *,
    num_classes: int,
    batch_size: int,
    hidden: int,
    kind: str,
    requested: str = "auto",
    available_bytes: int | None = None,
    num_sampled: int = DEFAULT_NUM_SAMPLED,
    step_time: StepTime | None = None,
) -> tuple[str, str]:
    """The loss for a linear head of `num_classes` outputs, and one sentence saying why (with the numbers).

    Args:
        num_classes: C, the head's width.
        batch_size: rows per training step.
        hidden: H, the head's input width.
        kind: ``binary``, ``multiclass`` or ``multilabel``.
        requested: ``auto`` applies the rule in this module's docstring; ``full``/``chunked``/``sampled`` are
            checked and returned.
        available_bytes: memory to plan against; None reads the available physical memory.
        num_sampled: K, the negatives a sampled loss would draw.
        step_time: seconds of one step of a loss, by name; None times it here (`labelwise.huge.step_cost`).

    Returns:
        ``(name, reason)`` with name in ``full``, ``chunked``, ``sampled``.

    Raises:
        ConfigError: a refused combination (see the module docstring) or an out-of-range argument.

    Example:
        >>> choose_head_loss(num_classes=10, batch_size=64, hidden=32, kind="multiclass")[0]
        'full'
        >>> choose_head_loss(num_classes=10**6, batch_size=512, hidden=256, kind="multiclass")[0]
        'sampled'
    """
    _check(
        num_classes=num_classes,
        batch_size=batch_size,
        hidden=hidden,
        kind=kind,
        requested=requested,
        num_sampled=num_sampled,
    )
    refusal = _refusal(num_classes=num_classes, kind=kind, requested=requested, num_sampled=num_sampled)
    if refusal is not None:
        raise ConfigError(refusal)
    if requested != "auto":
        return requested, f"--loss {requested} was requested."
    if kind == "binary":
        return "full", "a binary task has one logit per row, so the full loss is already small."
    shape = {"num_classes": num_classes, "batch_size": batch_size, "hidden": hidden, "num_sampled": num_sampled}
    available = available_memory_bytes() if available_bytes is None else available_bytes
    return _auto(kind=kind, available=available, step_time=step_time or _timer(kind=kind, **shape), **shape)


def _auto(
    *, num_classes: int, batch_size: int, hidden: int, kind: str, available: int, num_sampled: int, step_time: StepTime
) -> tuple[str, str]:
    """The rule of the module docstring for a multiclass or multilabel head."""
    logit_bytes = 8 * batch_size * num_classes  # float32 logits + their gradient
    fits = logit_bytes <= FULL_MEMORY_FRACTION * available
    exact = "full" if fits or kind == "multilabel" else "chunked"
    memory = (
        f"the ({batch_size}, {num_classes:,}) logits and their gradient take {_gb(logit_bytes)} "
        f"({'within' if fits else 'over'} {FULL_MEMORY_FRACTION:.0%} of {_gb(available)} available)"
    )
    if kind == "multilabel" and not fits and num_sampled < num_classes:
        return "sampled", f"{memory}, and multilabel heads have no chunked loss."
    return _by_cost(num_classes=num_classes, num_sampled=num_sampled, exact=exact, memory=memory, step_time=step_time)


def _timer(*, kind: str, num_classes: int, batch_size: int, hidden: int, num_sampled: int) -> StepTime:
    from labelwise.huge.step_cost import step_seconds  # deferred: only a huge head is ever timed

    def seconds(name: str) -> float:
        shape = {"num_classes": num_classes, "batch_size": batch_size, "hidden": hidden, "num_sampled": num_sampled}
        return step_seconds(name, kind=kind, **shape)

    return seconds


def _by_cost(*, num_classes: int, num_sampled: int, exact: str, memory: str, step_time: StepTime) -> tuple[str, str]:
    """Rules 2-4 of the module docstring: the exact loss, or ``sampled`` when it is enough cheaper per step."""
    if num_sampled >= num_classes:
        return exact, f"{memory}; {num_sampled} sampled negatives >= {num_classes:,} classes would save nothing."
    if num_classes < MEASURED_FROM_SAMPLED * num_sampled:
        return exact, (
            f"{memory}; with {num_classes:,} classes a step over {num_sampled:,} sampled negatives would save too "
            "little to pay for its noisier gradient."
        )
    if num_classes >= SAMPLED_FROM_CLASSES:
        return "sampled", (
            f"{memory}; from {SAMPLED_FROM_CLASSES:,} classes an exact softmax step costs > 10x one over "
            f"{num_sampled:,} sampled negatives."
        )
    exact_s, sampled_s = step_time(exact), step_time("sampled")
    measured = (
        f"{memory}; measured here, a {exact} step took {exact_s * 1e3:.1f} ms and one over {num_sampled:,} "
        f"sampled negatives {sampled_s * 1e3:.1f} ms ({exact_s / sampled_s:.1f}x)"
    )
    if exact_s > SAMPLED_PAYS_OFF * sampled_s:
        return "sampled", f"{measured}, more than the {SAMPLED_PAYS_OFF:g}x that pays for its noisier gradient."
    return exact, f"{measured}, not the {SAMPLED_PAYS_OFF:g}x that would pay for its noisier gradient."
