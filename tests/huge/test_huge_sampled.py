"""Sampled softmax and sampled BCE: Monte-Carlo means against the full losses, proposals, masking, gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from labelwise.errors import ConfigError, LabelError
from labelwise.huge import Proposal, sampled_bce_loss, sampled_softmax_loss

N, C, H = 32, 64, 8


@pytest.fixture(scope="module")
def head() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    features = torch.randn(N, H, generator=g, dtype=torch.float64)
    weight = torch.randn(C, H, generator=g, dtype=torch.float64) * 0.7
    bias = torch.randn(C, generator=g, dtype=torch.float64)
    return features, weight, bias, torch.randint(C, (N,), generator=g)


def _mc_gap(head: tuple[torch.Tensor, ...], *, num_sampled: int, subtract_log_q: bool, trials: int = 100) -> float:
    features, weight, bias, targets = head
    full = F.cross_entropy(features @ weight.T + bias, targets)
    q = Proposal.create("log_uniform", num_classes=C)
    g = torch.Generator().manual_seed(1)
    draws = [
        sampled_softmax_loss(
            features,
            weight,
            bias,
            targets,
            proposal=q,
            num_sampled=num_sampled,
            generator=g,
            subtract_log_q=subtract_log_q,
        )  # fmt: skip
        for _ in range(trials)
    ]
    return float(torch.stack(draws).mean() - full)


def test_sampled_softmax_approaches_full_loss_with_log_q_correction(head: tuple[torch.Tensor, ...]) -> None:
    gaps = [abs(_mc_gap(head, num_sampled=k, subtract_log_q=True)) for k in (8, 32, 128)]
    # The estimate of log Z is biased low by Jensen, by O(1/K): the gap must shrink as K grows ...
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 0.2  # ... and be small at K=128 (full loss ≈ 6.8, Monte-Carlo s.e. ≈ 0.015)
    # Without the correction a skewed (log-uniform) proposal over-counts the frequent classes: clearly off.
    assert abs(_mc_gap(head, num_sampled=128, subtract_log_q=False)) > 2.5 * gaps[2]


def test_accidental_hits_are_masked() -> None:
    g = torch.Generator().manual_seed(2)
    features, weight = torch.randn(2, 3, generator=g), torch.randn(5, 3, generator=g)
    # A proposal that only ever draws class 3: row 0's positive is 3, so all its negatives are accidental hits.
    q = Proposal.create("frequency", num_classes=5, counts=torch.tensor([0.0, 0, 0, 1e12, 0]), power=1.0)
    targets = torch.tensor([3, 1])
    drawn = q.sample(6, generator=torch.Generator().manual_seed(0))
    assert drawn.tolist() == [3] * 6
    per_row = [
        sampled_softmax_loss(features[i : i + 1], weight, None, targets[i : i + 1], proposal=q, num_sampled=6)
        for i in range(2)
    ]
    assert per_row[0].item() == 0.0  # only the positive is left: log(exp(z_y)) - z_y
    assert per_row[1].item() > 0.0  # a genuine negative (class 3) does count for row 1


def test_gradient_reaches_only_the_used_rows(head: tuple[torch.Tensor, ...]) -> None:
    features, weight, bias, targets = (t.clone().requires_grad_(t.is_floating_point()) for t in head)
    q = Proposal.create("uniform", num_classes=C)
    # The same seed as the loss below, to know which rows it samples.
    used = set(q.sample(5, generator=torch.Generator().manual_seed(3)).tolist()) | set(targets[:4].tolist())
    loss = sampled_softmax_loss(features[:4], weight, bias, targets[:4], proposal=q, num_sampled=5,
                                generator=torch.Generator().manual_seed(3))  # fmt: skip
    loss.backward()
    assert weight.grad is not None and bias.grad is not None
    touched = set(weight.grad.abs().sum(1).nonzero().flatten().tolist())
    assert touched == used
    assert set(bias.grad.nonzero().flatten().tolist()) <= used


def test_seeded_generator_is_deterministic(head: tuple[torch.Tensor, ...]) -> None:
    q = Proposal.create("log_uniform", num_classes=C)
    losses = [sampled_softmax_loss(*head, proposal=q, num_sampled=16, generator=torch.Generator().manual_seed(7))
              for _ in range(2)]  # fmt: skip
    assert losses[0].item() == losses[1].item()
    other = sampled_softmax_loss(*head, proposal=q, num_sampled=16, generator=torch.Generator().manual_seed(8))
    assert other.item() != losses[0].item()


@pytest.mark.parametrize("kind", ["uniform", "log_uniform", "frequency"])
def test_proposal_samples_follow_log_prob(kind: str) -> None:
    num_classes, draws = 20, 100_000
    counts = torch.arange(num_classes, dtype=torch.float64).flip(0) ** 2
    q = Proposal.create(kind, num_classes=num_classes, counts=counts if kind == "frequency" else None)
    probs = q.log_prob(torch.arange(num_classes)).exp()
    torch.testing.assert_close(probs.sum(), torch.tensor(1.0, dtype=torch.float64))
    observed = torch.bincount(q.sample(draws, generator=torch.Generator().manual_seed(5)), minlength=num_classes)
    expected = probs * draws
    chi_square = float(((observed - expected) ** 2 / expected).sum())
    assert chi_square < 50.0  # 19 degrees of freedom: P(chi2 > 50) ≈ 1e-4 for a correct sampler


def test_sampled_bce_is_unbiased_for_the_full_mean_bce(head: tuple[torch.Tensor, ...]) -> None:
    features, weight, bias, _ = head
    targets = (torch.rand(N, C, generator=torch.Generator().manual_seed(6), dtype=torch.float64) < 0.1).double()
    full = F.binary_cross_entropy_with_logits(features @ weight.T + bias, targets)
    g = torch.Generator().manual_seed(7)
    for kind in ("uniform", "log_uniform"):
        q = Proposal.create(kind, num_classes=C)
        draws = torch.stack(
            [
                sampled_bce_loss(features, weight, bias, targets, proposal=q, num_sampled=16, generator=g)
                for _ in range(400)
            ]  # fmt: skip
        )
        standard_error = draws.std() / 400**0.5
        assert abs(draws.mean() - full) < 4 * standard_error, kind  # unbiased: within 4 s.e. of the full loss
    sparse = sampled_bce_loss(features, weight, bias, targets.to_sparse(), proposal=q, num_sampled=16,
                              generator=torch.Generator().manual_seed(9))  # fmt: skip
    dense = sampled_bce_loss(features, weight, bias, targets, proposal=q, num_sampled=16,
                             generator=torch.Generator().manual_seed(9))  # fmt: skip
    torch.testing.assert_close(sparse, dense)  # sparse COO targets give the same estimate


def test_bad_inputs_say_what_was_expected(head: tuple[torch.Tensor, ...]) -> None:
    features, weight, bias, targets = head
    q = Proposal.create("uniform", num_classes=C)
    with pytest.raises(ConfigError, match=r"kind='zipf'; expected one of \['uniform', 'log_uniform', 'frequency'\]"):
        Proposal.create("zipf", num_classes=C)
    with pytest.raises(ConfigError, match=r"counts of shape None; expected \(64,\).*Pass counts="):
        Proposal.create("frequency", num_classes=C)
    with pytest.raises(ConfigError, match=r"num_classes=0; expected a positive int"):
        Proposal.create("uniform", num_classes=0)
    with pytest.raises(ConfigError, match=r"covers 10 classes but the head has 64.*num_classes=weight.shape\[0\]"):
        sampled_softmax_loss(*head, proposal=Proposal.create("uniform", num_classes=10), num_sampled=4)
    with pytest.raises(ConfigError, match=r"num_sampled=0; expected a positive int"):
        sampled_softmax_loss(*head, proposal=q, num_sampled=0)
    with pytest.raises(LabelError, match=r"targets have shape \(32, 3\); expected \(32, 64\)"):
        sampled_bce_loss(features, weight, bias, torch.zeros(N, 3), proposal=q, num_sampled=4)
    with pytest.raises(LabelError, match=r"values \[0.5\]; expected 0/1 indicators"):
        sampled_bce_loss(features, weight, bias, torch.full((N, C), 0.5), proposal=q, num_sampled=4)
    with pytest.raises(LabelError, match=r"outside \[0, 64\)"):
        sampled_softmax_loss(features, weight, bias, targets + 64, proposal=q, num_sampled=4)
