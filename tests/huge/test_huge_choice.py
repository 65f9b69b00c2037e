"""`choose_head_loss`: every branch of the auto rule, its reason, and every refusal."""

from __future__ import annotations

import re

import pytest

from labelwise.errors import ConfigError
from labelwise.huge import choose_head_loss

GB = 10**9

AUTO = {
    # (num_classes, kind, available bytes, num_sampled) -> (expected loss, fragment of the reason)
    (1, "binary", GB, 4096): ("full", "binary task has one logit"),
    (10_000, "multiclass", 16 * GB, 4096): ("full", r"\(512, 10,000\) logits.*0.04 GB, within 10% of 16.00 GB"),
    (10_000, "multilabel", 16 * GB, 4096): ("full", "10,000 classes < 50,000"),
    (10_000, "multiclass", GB // 10, 4096): ("chunked", r"0.04 GB \(over 10% of 0.10 GB available\)"),
    (60_000, "multiclass", 16 * GB, 4096): ("chunked", "below 100,000 classes the exact chunked softmax"),
    (60_000, "multilabel", 16 * GB, 4096): ("sampled", "multilabel heads have no chunked loss"),
    (10**6, "multiclass", 64 * GB, 4096): ("sampled", r"from 100,000 classes.*touches 4,608 of 1,000,000 rows"),
    (10**6, "multilabel", 64 * GB, 4096): ("sampled", "no chunked loss"),
    (200_000, "multiclass", 64 * GB, 300_000): ("chunked", "300000 sampled negatives >= 200,000 classes"),
    (200_000, "multilabel", 64 * GB, 300_000): ("full", "would save nothing"),
}


@pytest.mark.parametrize(("case", "expected"), AUTO.items(), ids=[f"{c[1]}-{c[0]}-{e[0]}" for c, e in AUTO.items()])
def test_auto_rule(case: tuple[int, str, int, int], expected: tuple[str, str]) -> None:
    num_classes, kind, available, num_sampled = case
    name, reason = choose_head_loss(num_classes=num_classes, batch_size=512, hidden=256, kind=kind,
                                    available_bytes=available, num_sampled=num_sampled)  # fmt: skip
    assert name == expected[0]
    assert re.search(expected[1], reason), reason


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
