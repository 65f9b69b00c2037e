"""`choose_head_loss`: full, chunked (exact) or sampled loss for a head, with the reason in one sentence.

The rule (``requested="auto"``), on the float32 (batch, C) logits plus their gradient, 8 * batch * C bytes:

1. binary: ``full`` (one logit per row; nothing to save).
2. those bytes ≤ `FULL_MEMORY_FRACTION` of the available memory and C < `FULL_MAX_CLASSES`: ``full`` (the
   fastest exact loss while it fits comfortably).
3. multiclass: ``sampled`` from `SAMPLED_FROM_CLASSES` classes (when K < C), else ``chunked``.
4. multilabel: ``sampled`` (chunked is an exact *softmax*; per-label BCE has no chunked form here); ``full`` if
   K >= C, where sampling saves nothing.

An explicit ``requested`` is honoured or refused with a `ConfigError`, never silently swapped: ``chunked`` or
``sampled`` for binary, ``chunked`` for multilabel, and ``sampled`` with K >= C are refused.
"""

from __future__ import annotations

import os

from labelwise.errors import ConfigError
from labelwise.huge.sampled import DEFAULT_NUM_SAMPLED

__all__ = [
    "FULL_MAX_CLASSES",
    "FULL_MEMORY_FRACTION",
    "HEAD_LOSSES",
    "SAMPLED_FROM_CLASSES",
    "available_memory_bytes",
    "choose_head_loss",
]

HEAD_LOSSES = ("auto", "full", "chunked", "sampled")
_KINDS = ("binary", "multiclass", "multilabel")
# 10%: the logits are not the only thing alive during a step (activations, optimizer state, the data loader),
# and a swap storm costs far more than the 1.5-2x compute of the chunked loss.
FULL_MEMORY_FRACTION = 0.10
# Past ~50k classes the (batch, C) softmax dominates the step even when it fits (hidden 256: the head's
# matmuls are 100x a small MLP backbone's), so the memory-bounded losses are the better default.
FULL_MAX_CLASSES = 50_000
# From 10^5 classes a full (or chunked) softmax step costs > 10x a sampled one with K = 4096 (C / K ≥ 24 in
# head FLOPs; benchmarks/huge_labels.py measures it), while chunked stays exact below that at 1.5-2x full.
SAMPLED_FROM_CLASSES = 100_000


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
) -> tuple[str, str]:
    """The loss for a linear head of `num_classes` outputs, and one sentence saying why (with the numbers).

    Args:
        num_classes: C, the head's width.
        batch_size: rows per training step.
        hidden: H, the head's input width (part of the sampled-step cost in the reason).
        kind: ``binary``, ``multiclass`` or ``multilabel``.
        requested: ``auto`` applies the rule in this module's docstring; ``full``/``chunked``/``sampled`` are
            checked and returned.
        available_bytes: memory to plan against; None reads the available physical memory.
        num_sampled: K, the negatives a sampled loss would draw.

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
    available = available_memory_bytes() if available_bytes is None else available_bytes
    return _auto(
        num_classes=num_classes,
        batch_size=batch_size,
        hidden=hidden,
        kind=kind,
        available=available,
        num_sampled=num_sampled,
    )


def _auto(
    *, num_classes: int, batch_size: int, hidden: int, kind: str, available: int, num_sampled: int
) -> tuple[str, str]:
    logit_bytes = 8 * batch_size * num_classes  # float32 logits + their gradient
    shape = f"the ({batch_size}, {num_classes:,}) logits and their gradient take {_gb(logit_bytes)}"
    fits = logit_bytes <= FULL_MEMORY_FRACTION * available
    if fits and num_classes < FULL_MAX_CLASSES:
        return "full", (
            f"{shape}, within {FULL_MEMORY_FRACTION:.0%} of {_gb(available)} available, "
            f"and {num_classes:,} classes < {FULL_MAX_CLASSES:,}."
        )
    why = f"{shape} ({'fits' if fits else 'over'} {FULL_MEMORY_FRACTION:.0%} of {_gb(available)} available)"
    if num_sampled >= num_classes:
        name = "full" if kind == "multilabel" else "chunked"
        return name, (f"{why}, but {num_sampled} sampled negatives >= {num_classes:,} classes would save nothing.")
    step = f"a sampled step touches {num_sampled + batch_size:,} of {num_classes:,} rows of width {hidden}"
    if kind == "multilabel":
        return "sampled", f"{why}; multilabel heads have no chunked loss, and {step}."
    if num_classes >= SAMPLED_FROM_CLASSES:
        return "sampled", (
            f"{why}; from {SAMPLED_FROM_CLASSES:,} classes a full softmax step costs > 10x a sampled one, and {step}."
        )
    return "chunked", (
        f"{why}; below {SAMPLED_FROM_CLASSES:,} classes the exact chunked softmax keeps memory to one "
        "class chunk at a moderate cost."
    )
