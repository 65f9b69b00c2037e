"""Chunked cross-entropy, log-sum-exp and top-k against torch on the full logits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from labelwise.errors import ConfigError, DataError, LabelError
from labelwise.huge import TopK, chunked_cross_entropy, chunked_logsumexp, chunked_top_k


def _head(n: int, c: int, h: int, *, dtype: torch.dtype, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(n, h, generator=g, dtype=dtype, requires_grad=True)
    weight = torch.randn(c, h, generator=g, dtype=dtype).mul_(0.5).requires_grad_()
    bias = torch.randn(c, generator=g, dtype=dtype).requires_grad_()
    targets = torch.randint(c, (n,), generator=g)
    class_weight = torch.rand(c, generator=g, dtype=dtype) + 0.5
    return features, weight, bias, targets, class_weight


def _loss_and_grads(loss: torch.Tensor, *inputs: torch.Tensor) -> list[torch.Tensor]:
    return [loss.detach(), *torch.autograd.grad(loss, inputs)]


CASES = [
    pytest.param(37, 10, None, 0.0, id="chunk-not-dividing"),
    pytest.param(37, 8, "weighted", 0.0, id="weighted-dividing"),
    pytest.param(37, 7, "weighted", 0.2, id="weighted-smoothed"),
    pytest.param(37, 100, None, 0.1, id="C-below-chunk"),
    pytest.param(37, 1, "weighted", 0.1, id="chunk-of-one"),
]


@pytest.mark.parametrize(("c", "chunk", "weighting", "smoothing"), CASES)
def test_chunked_ce_matches_torch_float64(c: int, chunk: int, weighting: str | None, smoothing: float) -> None:
    features, weight, bias, targets, class_weight = _head(12, c, 5, dtype=torch.float64)
    cw = class_weight if weighting else None
    ours = chunked_cross_entropy(features, weight, bias, targets, chunk_size=chunk, class_weight=cw,
                                 label_smoothing=smoothing)  # fmt: skip
    full = F.cross_entropy(features @ weight.T + bias, targets, weight=cw, label_smoothing=smoothing)
    for got, want in zip(
        _loss_and_grads(ours, features, weight, bias), _loss_and_grads(full, features, weight, bias), strict=True
    ):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-10)  # float64: only summation order differs


def test_chunked_ce_float32_and_no_bias() -> None:
    features, weight, _, targets, class_weight = _head(64, 300, 16, dtype=torch.float32, seed=1)
    ours = chunked_cross_entropy(features, weight, None, targets, chunk_size=64, class_weight=class_weight,
                                 label_smoothing=0.05)  # fmt: skip
    full = F.cross_entropy(features @ weight.T, targets, weight=class_weight, label_smoothing=0.05)
    for got, want in zip(_loss_and_grads(ours, features, weight), _loss_and_grads(full, features, weight), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)  # float32 rounding across 300 classes


def test_chunked_ce_bfloat16_accumulates_in_float32() -> None:
    features, weight, bias, targets, _ = _head(16, 500, 8, dtype=torch.float64, seed=2)
    low = [t.detach().bfloat16().requires_grad_() for t in (features, weight, bias)]
    ours = chunked_cross_entropy(low[0], low[1], low[2], targets, chunk_size=128, label_smoothing=0.1)
    full = F.cross_entropy(low[0].double() @ low[1].double().T + low[2].double(), targets, label_smoothing=0.1)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours.double(), full, rtol=0, atol=1e-5)  # same bf16 inputs, float32 sums
    grads = torch.autograd.grad(ours, low)
    assert [g.dtype for g in grads] == [torch.bfloat16] * 3


def test_chunked_ce_gradcheck() -> None:
    features, weight, bias, targets, class_weight = _head(4, 6, 3, dtype=torch.float64, seed=3)

    def fn(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return chunked_cross_entropy(x, w, b, targets, chunk_size=4, class_weight=class_weight, label_smoothing=0.3)

    assert torch.autograd.gradcheck(fn, (features, weight, bias))


class _LargestTensor(TorchDispatchMode):
    """Records the largest tensor any op creates (outputs only), so a hidden (N, C) allocation shows up."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple | list) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_chunked_ce_never_materialises_the_logits() -> None:
    n, c, h, chunk = 64, 4096, 4, 256
    features, weight, bias, targets, _ = _head(n, c, h, dtype=torch.float32)
    with _LargestTensor() as seen:
        chunked_cross_entropy(features, weight, bias, targets, chunk_size=chunk).backward()
    # (C, H) gradient of the weight itself is allowed; nothing may come near the (N, C) logits.
    assert seen.largest <= max(n * chunk, c * h) < n * c // 8
    with _LargestTensor() as seen_full:
        F.cross_entropy(features @ weight.T + bias, targets).backward()
    assert seen_full.largest >= n * c  # the probe does see the full logits when they exist


@pytest.mark.parametrize(("k", "chunk"), [(1, 3), (5, 3), (5, 16), (20, 7)])
def test_chunked_top_k_matches_stable_sort_with_ties(k: int, chunk: int) -> None:
    g = torch.Generator().manual_seed(4)
    # Small integers keep every logit exact (no rounding differs between chunked and full matmuls), and
    # repeated weight rows make many exact ties, also across chunk borders.
    features = torch.randint(-2, 3, (9, 4), generator=g).float()
    weight = torch.randint(-2, 3, (20, 4), generator=g).float()
    weight[10:] = weight[:10]
    bias = torch.zeros(20)
    logits = (features @ weight.T + bias) / 0.5
    top = chunked_top_k(features, weight, bias, k=k, temperature=0.5, chunk_size=chunk)
    want_values, want_indices = torch.sort(logits, dim=1, descending=True, stable=True)
    torch.testing.assert_close(top.values, want_values[:, :k], rtol=1e-6, atol=1e-6)  # float32 matmul per chunk
    assert torch.equal(top.indices, want_indices[:, :k])
    torch.testing.assert_close(top.logsumexp, torch.logsumexp(logits, 1), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(top.probs(), torch.softmax(logits, 1).gather(1, top.indices), rtol=1e-5, atol=1e-6)


def test_chunked_top_k_ranks_many_rows_a_block_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import labelwise.huge.top_k

    features, weight, bias, _, _ = _head(23, 30, 4, dtype=torch.float64)
    whole = chunked_top_k(features.detach(), weight.detach(), bias.detach(), k=3, chunk_size=8)
    monkeypatch.setattr(labelwise.huge.top_k, "ROW_BLOCK", 5)  # 23 rows: blocks of 5, 5, 5, 5 and 3
    with _LargestTensor() as seen:
        blocked = chunked_top_k(features.detach(), weight.detach(), bias.detach(), k=3, chunk_size=8)
    assert seen.largest < 23 * 8  # never a chunk of logits for all 23 rows at once
    assert torch.equal(blocked.indices, whole.indices)
    torch.testing.assert_close(blocked.values, whole.values, rtol=1e-12, atol=1e-12)  # a row block's matmul may
    torch.testing.assert_close(blocked.logsumexp, whole.logsumexp, rtol=1e-12, atol=1e-12)  # round differently


def test_chunked_top_k_exact_ties_pick_lower_index() -> None:
    top = chunked_top_k(torch.ones(1, 1), torch.ones(7, 1), None, k=3, chunk_size=2)
    assert top.indices.tolist() == [[0, 1, 2]]
    assert isinstance(top, TopK)


def test_chunked_top_k_k_equals_c_is_the_full_softmax() -> None:
    features, weight, bias, _, _ = _head(5, 11, 3, dtype=torch.float32)
    top = chunked_top_k(features.detach(), weight.detach(), bias.detach(), k=11, chunk_size=4)
    torch.testing.assert_close(top.probs().sum(1), torch.ones(5), rtol=0, atol=1e-6)  # all classes: sums to 1
    assert sorted(top.indices[0].tolist()) == list(range(11))


def test_chunked_logsumexp_over_temperatures() -> None:
    features, weight, bias, _, _ = _head(6, 50, 4, dtype=torch.float64)
    temperatures = torch.tensor([0.25, 1.0, 3.0], dtype=torch.float64)
    got = chunked_logsumexp(features, weight, bias, temperatures=temperatures, chunk_size=16)
    logits = (features @ weight.T + bias).detach()
    want = torch.stack([torch.logsumexp(logits / t, 1) for t in temperatures], dim=1)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10)  # float64
    torch.testing.assert_close(chunked_logsumexp(features, weight, bias, chunk_size=7), torch.logsumexp(logits, 1))


def test_bad_inputs_say_what_was_expected() -> None:
    features, weight, bias, targets, _ = _head(4, 6, 3, dtype=torch.float32)
    with pytest.raises(DataError, match=r"weight \(3, 6\).*expected features \(N, H\) and weight \(C, H\)"):
        chunked_cross_entropy(features, weight.T, bias, targets)
    with pytest.raises(DataError, match=r"bias has shape \(5,\); expected \(6,\)"):
        chunked_cross_entropy(features, weight, bias[:5], targets)
    with pytest.raises(LabelError, match=r"indices \[6, 9\] outside \[0, 6\).*one row per class"):
        chunked_cross_entropy(features, weight, bias, torch.tensor([0, 6, 9, 6]))
    with pytest.raises(LabelError, match=r"dtype torch.float32; expected \(4,\) torch.long"):
        chunked_cross_entropy(features, weight, bias, targets.float())
    with pytest.raises(ConfigError, match=r"chunk_size=0; expected a positive int"):
        chunked_cross_entropy(features, weight, bias, targets, chunk_size=0)
    with pytest.raises(ConfigError, match=r"label_smoothing=1.0; expected a float in \[0, 1\)"):
        chunked_cross_entropy(features, weight, bias, targets, label_smoothing=1.0)
    with pytest.raises(ConfigError, match=r"class_weight has shape \(3,\); expected \(6,\)"):
        chunked_cross_entropy(features, weight, bias, targets, class_weight=torch.ones(3))
    with pytest.raises(ConfigError, match=r"k=7; expected an int in \[1, 6\].*--top-k"):
        chunked_top_k(features, weight, bias, k=7)
    with pytest.raises(ConfigError, match=r"temperature=0.0; expected a positive float"):
        chunked_top_k(features, weight, bias, k=2, temperature=0.0)
    with pytest.raises(ConfigError, match=r"temperatures \[1.0, -1.0\]; expected a 1-D tensor of positive"):
        chunked_logsumexp(features, weight, bias, temperatures=torch.tensor([1.0, -1.0]))
