"""`choose_head_loss`: every branch of the auto rule, its reason, and every refusal."""

from __future__ import annotations

import re

import pytest

from labelwise.errors import ConfigError
from labelwise.huge import choose_head_loss

GB = 10**9
# Seconds per step by loss: the sampled step 10x faster than the full one (FAST), or only 2x (SLOW).
FAST = (("full", 0.1), ("chunked", 0.12), ("sampled", 0.01))
SLOW = (("full", 0.1), ("chunked", 0.12), ("sampled", 0.05))

AUTO = {
    # (num_classes, kind, available bytes, num_sampled, step times) -> (expected loss, fragment of the reason)
    (1, "binary", GB, 4096, FAST): ("full", "binary task has one logit"),
    (5_000, "multiclass", 16 * GB, 4096, FAST): (
        "full",
        r"\(512, 5,000\) logits.*0.02 GB \(within 10% of 16.00 GB available\); with 5,000 classes.*too little",
    ),
    (5_000, "multilabel", 16 * GB, 4096, FAST): ("full", "would save too little"),
    (5_000, "multiclass", GB // 10, 4096, FAST): ("chunked", r"0.02 GB \(over 10% of 0.10 GB available\)"),
    (60_000, "multiclass", 16 * GB, 4096, FAST): (
        "sampled",
        r"a full step took 100.0 ms and one over 4,096 sampled negatives 10.0 ms \(10.0x\), more than the 3x",
    ),
    (60_000, "multiclass", 16 * GB, 4096, SLOW): ("full", r"\(2.0x\), not the 3x"),
    (60_000, "multiclass", GB // 10, 4096, FAST): ("sampled", "a chunked step took 120.0 ms"),
    (60_000, "multiclass", GB // 10, 4096, SLOW): ("chunked", r"\(2.4x\), not the 3x"),
    (60_000, "multilabel", 16 * GB, 4096, FAST): ("sampled", "a full step took 100.0 ms"),
    (60_000, "multilabel", GB // 10, 4096, SLOW): ("sampled", "multilabel heads have no chunked loss"),
    (10**6, "multiclass", 64 * GB, 4096, FAST): ("sampled", r"from 100,000 classes an exact softmax step costs > 10x"),
    (10**6, "multilabel", 4 * GB, 4096, FAST): ("sampled", "no chunked loss"),
    (200_000, "multiclass", 64 * GB, 300_000, FAST): ("full", "300000 sampled negatives >= 200,000 classes"),
    (200_000, "multiclass", GB, 300_000, FAST): ("chunked", "would save nothing"),
    (200_000, "multilabel", GB, 300_000, FAST): ("full", "would save nothing"),
}
# Only the cases between 2K and 100,000 classes time a step; the others must not.
MEASURED = {(60_000, kind) for kind in ("multiclass", "multilabel")}


def _case_id(case: tuple[object, ...], expected: tuple[str, str]) -> str:
    return f"{case[1]}-{case[0]}-{'fast' if case[4] is FAST else 'slow'}-{expected[0]}"


@pytest.mark.parametrize(("case", "expected"), AUTO.items(), ids=[_case_id(c, e) for c, e in AUTO.items()])
def test_auto_rule(case: tuple[int, str, int, int, tuple[tuple[str, float], ...]], expected: tuple[str, str]) -> None:
    num_classes, kind, available, num_sampled, times = case
    timed: list[str] = []

    def step_time(name: str) -> float:
        timed.append(name)
        return dict(times)[name]

    shape = {"num_classes": num_classes, "batch_size": 512, "hidden": 256, "num_sampled": num_sampled}
    name, reason = choose_head_loss(kind=kind, available_bytes=available, step_time=step_time, **shape)
    assert name == expected[0]
    assert re.search(expected[1], reason), reason
    assert bool(timed) == ((num_classes, kind) in MEASURED and "no chunked loss" not in reason), timed


def test_auto_times_steps_itself_when_not_given() -> None:
    name, reason = choose_head_loss(num_classes=20_000, batch_size=8, hidden=4, kind="multiclass", num_sampled=64)
    assert name in ("full", "sampled") and re.search(r"a full step took [\d.]+ ms", reason), reason


def test_auto_reads_available_memory_when_not_given() -> None:
    name, reason = choose_head_loss(num_classes=100, batch_size=8, hidden=4, kind="multiclass")
    assert name == "full" and "GB available" in reason


@pytest.mark.parametrize("requested", ["full", "chunked", "sampled"])
def test_explicit_request_is_honoured(requested: str) -> None:
    assert choose_head_loss(num_classes=10**5, batch_size=64, hidden=8, kind="multiclass", requested=requested) == (
        requested,
        f"--loss {requested} was requested.",
    )


REFUSALS = {
    "binary-sampled": ("binary", "sampled", 2, r"--loss sampled needs a head with one logit per class.*--loss full"),
    "binary-chunked": ("binary", "chunked", 2, r"binary task has a single logit; use --loss full"),
    "multilabel-chunked": ("multilabel", "chunked", 10**5, r"single-label tasks.*multilabel.*use --loss sampled"),
    "sampled-K-over-C": (
        "multiclass",
        "sampled",
        100,
        r"draws 4096 negatives but the head has only 100 classes.*--num-",
    ),
}


@pytest.mark.parametrize(("kind", "requested", "num_classes", "message"), REFUSALS.values(), ids=REFUSALS.keys())
def test_refusals(kind: str, requested: str, num_classes: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        choose_head_loss(num_classes=num_classes, batch_size=32, hidden=8, kind=kind, requested=requested)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kind": "regression"}, r"kind='regression'; expected one of \['binary', 'multiclass', 'multilabel'\]"),
        ({"requested": "fast"}, r"--loss 'fast'; expected one of \['auto', 'full', 'chunked', 'sampled'\]"),
        ({"num_classes": 0}, r"num_classes=0; expected a positive int"),
        ({"num_sampled": -1}, r"num_sampled=-1; expected a positive int"),
    ],
)
def test_bad_arguments(overrides: dict[str, object], message: str) -> None:
    options: dict[str, object] = {"num_classes": 10, "batch_size": 8, "hidden": 4, "kind": "multiclass"} | overrides
    with pytest.raises(ConfigError, match=message):
        choose_head_loss(**options)  # type: ignore[arg-type]
