"""Sampled losses for huge heads: softmax and per-label BCE on K shared negatives instead of all C classes.

A step touches N + K rows of the head instead of C, so its cost is O(N * K * H) and independent of C. The
negatives come from a `Proposal` q and every sampled term is corrected by q, so the losses estimate the full
ones (the tests check the Monte-Carlo means against the full losses on a small head).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from labelwise.errors import ConfigError, LabelError
from labelwise.huge.chunked import _acc_dtype, _check_head, _check_targets

__all__ = ["DEFAULT_NUM_SAMPLED", "PROPOSAL_KINDS", "Proposal", "sampled_bce_loss", "sampled_softmax_loss"]

# 4096 shared negatives: the (512, 4096) sampled logits are 8 MB and a step is ~250x cheaper than the full
# softmax at 10^6 classes, while Jean et al. (2015) and TF's word-level models get within a few tenths of a
# perplexity point of the full softmax with this many; much smaller K raises the variance of the gradient.
DEFAULT_NUM_SAMPLED = 4096
PROPOSAL_KINDS = ("uniform", "log_uniform", "frequency")


@dataclass(frozen=True, eq=False)
class Proposal:
    """Distribution over class ids that negatives are drawn from (with replacement).

    - ``uniform``: q(c) = 1 / C.
    - ``log_uniform`` (Zipfian, for classes sorted by decreasing frequency): q(c) = log((c+2)/(c+1)) / log(C+1).
    - ``frequency``: q(c) ∝ (count_c + 1) ** power; power 0.75 is word2vec's, which flattens the head so the
      tail still gets sampled.

    Build it with `Proposal.create`. Samples are drawn on the CPU (pass a CPU generator); the losses move them
    to the features' device.

    Attributes:
        kind: one of `PROPOSAL_KINDS`.
        num_classes: C.
        log_probs: (C,) float64 log q for ``frequency``; None for the closed-form kinds.
    """

    kind: str
    num_classes: int
    log_probs: torch.Tensor | None = None

    @classmethod
    def create(
        cls, kind: str, *, num_classes: int, counts: torch.Tensor | None = None, power: float = 0.75
    ) -> Proposal:
        """The proposal `kind` over `num_classes` classes.

        Args:
            kind: ``uniform``, ``log_uniform`` or ``frequency``.
            num_classes: C, at least 1.
            counts: (C,) training counts per class; required by ``frequency`` only.
            power: exponent of ``frequency``.

        Returns:
            The proposal.

        Raises:
            ConfigError: an unknown kind, a bad num_classes, or counts missing or of the wrong shape.

        Example:
            >>> Proposal.create("log_uniform", num_classes=3).log_prob(torch.tensor([0, 2])).exp()
            tensor([0.5000, 0.2075], dtype=torch.float64)
        """
        if kind not in PROPOSAL_KINDS:
            raise ConfigError(f"proposal kind={kind!r}; expected one of {list(PROPOSAL_KINDS)}.")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"num_classes={num_classes!r}; expected a positive int, the width of the head.")
        if kind != "frequency":
            return cls(kind=kind, num_classes=num_classes)
        if counts is None or tuple(counts.shape) != (num_classes,) or bool((counts < 0).any()):
            found = None if counts is None else tuple(counts.shape)
            raise ConfigError(
                f"proposal kind='frequency' got counts of shape {found}; expected ({num_classes},) non-negative "
                "training counts per class. Pass counts=, or use kind='log_uniform'."
            )
        weights = (counts.detach().to(torch.float64).cpu() + 1.0) ** power
        return cls(kind=kind, num_classes=num_classes, log_probs=torch.log(weights / weights.sum()))

    def sample(self, num: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """(num,) long class ids drawn independently from q, on the CPU."""
        if self.kind == "uniform":
            return torch.randint(self.num_classes, (num,), generator=generator)
        if self.kind == "log_uniform":
            # Inverse CDF: P(class <= c) = log(c + 2) / log(C + 1), as TF's log_uniform_candidate_sampler.
            u = torch.rand(num, generator=generator, dtype=torch.float64)
            drawn = torch.floor(torch.exp(u * math.log(self.num_classes + 1))).long() - 1
            return drawn.clamp_(0, self.num_classes - 1)
        assert self.log_probs is not None  # create() sets it for "frequency"
        return torch.multinomial(self.log_probs.exp(), num, replacement=True, generator=generator)

    def log_prob(self, classes: torch.Tensor) -> torch.Tensor:
        """log q(c) for each class id in `classes` (float64, on the ids' device)."""
        if self.kind == "uniform":
            return torch.full(classes.shape, -math.log(self.num_classes), dtype=torch.float64, device=classes.device)
        if self.kind == "log_uniform":
            c = classes.to(torch.float64)
            return torch.log(torch.log1p(1.0 / (c + 1.0))) - math.log(math.log(self.num_classes + 1))
        assert self.log_probs is not None
        return self.log_probs.to(classes.device)[classes]


def _draw(
    proposal: Proposal, weight: torch.Tensor, *, num_sampled: int, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(K,) sampled ids on the weight's device and their log expected counts, log(K q(c))."""
    if proposal.num_classes != weight.shape[0]:
        raise ConfigError(
            f"the proposal covers {proposal.num_classes} classes but the head has {weight.shape[0]}; expected "
            "the same number. Build it with Proposal.create(..., num_classes=weight.shape[0])."
        )
    if isinstance(num_sampled, bool) or not isinstance(num_sampled, int) or num_sampled < 1:
        raise ConfigError(f"num_sampled={num_sampled!r}; expected a positive int, e.g. {DEFAULT_NUM_SAMPLED}.")
    sampled = proposal.sample(num_sampled, generator=generator).to(weight.device)
    return sampled, proposal.log_prob(sampled) + math.log(num_sampled)


def _used_logits(
    features: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    *,
    rows: torch.Tensor,
    cols: torch.Tensor,
    sampled: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of the (rows, cols) pairs, and the (N, K) logits of the sampled classes.

    One index_select for both: each selection's backward scatters into its own dense (C, H) gradient, so two
    selections would cost two weight-sized buffers plus their sum (measured: +1 GB at 10^6 classes).
    """
    acc = _acc_dtype(features)
    classes = torch.cat([cols, sampled])
    used = weight.index_select(0, classes).to(acc)
    f = features.to(acc)
    pairs = (f.index_select(0, rows) * used[: cols.shape[0]]).sum(1)
    negatives = f @ used[cols.shape[0] :].T
    if bias is not None:
        used_bias = bias.index_select(0, classes).to(acc)
        pairs = pairs + used_bias[: cols.shape[0]]
        negatives = negatives + used_bias[cols.shape[0] :]
    return pairs, negatives


def sampled_softmax_loss(
    features: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    *,
    proposal: Proposal,
    num_sampled: int = DEFAULT_NUM_SAMPLED,
    generator: torch.Generator | None = None,
    subtract_log_q: bool = True,
) -> torch.Tensor:
    """Sampled softmax cross-entropy (Jean et al. 2015), an estimate of the full softmax loss.

    K negatives s_1..s_K are drawn from q once for the whole batch. Each row's candidate logits are its
    positive z_y and the negatives' z_sk - log(K q(s_k)), each logit minus the log of its expected count among
    the candidates (log-Q correction): the positive is always present (count 1, no shift), a negative is
    expected K q(c) times. Then sum_k exp(z_sk) / (K q(s_k)) is an unbiased estimate of the row's partition
    function without the positive, and the loss logsumexp(candidates) - z_y tends to the full cross-entropy as
    K grows. (TF also shifts the positive by log q(y); that targets the full softmax only when K q(y) ≈ 1.)
    A negative equal to the row's positive is masked to -inf (TF's remove_accidental_hits=True).

    Args:
        features: (N, H) float.
        weight: (C, H) float; only the N + K rows used get a (non-zero) gradient.
        bias: (C,) float, or None.
        targets: (N,) long class indices.
        proposal: the distribution q negatives are drawn from, over the C classes.
        num_sampled: K, negatives shared by the batch.
        generator: a seeded CPU generator for reproducible draws.
        subtract_log_q: False leaves the negatives' logits uncorrected (TF's option of that name): biased
            towards frequent classes under a skewed proposal; kept for comparison only.

    Returns:
        The scalar mean loss (float32, or float64 for float64 inputs).

    Raises:
        ConfigError: num_sampled out of range, or a proposal over a different number of classes.
        DataError: features, weight and bias do not form a linear head.
        LabelError: targets are not (N,) long indices into the C classes.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x, w = torch.randn(8, 4, generator=g), torch.randn(100, 4, generator=g)
        >>> q = Proposal.create("uniform", num_classes=100)
        >>> y = torch.randint(100, (8,), generator=g)
        >>> sampled_softmax_loss(x, w, None, y, proposal=q, num_sampled=20, generator=g).shape
        torch.Size([])
    """
    _check_head(features, weight, bias, chunk_size=1)
    _check_targets(targets, num_rows=features.shape[0], num_classes=weight.shape[0])
    sampled, log_expected = _draw(proposal, weight, num_sampled=num_sampled, generator=generator)
    rows = torch.arange(features.shape[0], device=features.device)
    positive, negatives = _used_logits(features, weight, bias, rows=rows, cols=targets, sampled=sampled)
    if subtract_log_q:
        negatives = negatives - log_expected.to(positive.dtype)
    negatives = negatives.masked_fill(sampled[None, :] == targets[:, None], -torch.inf)
    candidates = torch.cat([positive[:, None], negatives], dim=1)
    return (torch.logsumexp(candidates, dim=1) - positive).mean()


def _positive_pairs(targets: torch.Tensor, *, num_rows: int, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, cols) of the 1s of a dense or sparse COO (N, C) 0/1 target matrix, sorted by row then column."""
    if tuple(targets.shape) != (num_rows, num_classes):
        raise LabelError(
            f"targets have shape {tuple(targets.shape)}; expected ({num_rows}, {num_classes}), one 0/1 column per "
            "class of `weight`. Encode labels with `task.encode`."
        )
    if targets.is_sparse:
        targets = targets.coalesce()
        indices, values = targets.indices(), targets.values()
    else:
        indices = targets.nonzero().T
        values = targets[indices[0], indices[1]]
    if bool((values != 1).any()):
        bad = sorted(set(values[values != 1].tolist()))[:5]
        raise LabelError(f"targets hold values {bad}; expected 0/1 indicators. Encode labels with `task.encode`.")
    order = torch.argsort(indices[0] * num_classes + indices[1])
    return indices[0][order], indices[1][order]


def sampled_bce_loss(
    features: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    *,
    proposal: Proposal,
    num_sampled: int = DEFAULT_NUM_SAMPLED,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Multilabel BCE over every positive and K shared sampled negatives, an unbiased estimate of the mean BCE.

    The full loss is (1 / (N C)) sum_i [sum_{c in P_i} softplus(-z_ic) + sum_{c not in P_i} softplus(z_ic)],
    P_i the positives of row i. The positives' sum is computed exactly. The negatives' sum is estimated by
    importance sampling: with s_1..s_K drawn from q, (1 / K) sum_k [s_k not in P_i] softplus(z_i,sk) / q(s_k)
    has expectation exactly sum_{c not in P_i} softplus(z_ic). So E[loss] equals the full mean BCE (its
    gradient too); the variance falls as 1 / K and is lowest when q follows the negatives' softplus mass.

    Args:
        features: (N, H) float.
        weight: (C, H) float; only rows of positives and negatives get a (non-zero) gradient.
        bias: (C,) float, or None.
        targets: (N, C) 0/1 float, dense or sparse COO (a sparse tensor avoids the dense (N, C) matrix).
        proposal: the distribution q negatives are drawn from, over the C classes.
        num_sampled: K, negatives shared by the batch.
        generator: a seeded CPU generator for reproducible draws.

    Returns:
        The scalar loss, normalised like the mean over N * C (float32, or float64 for float64 inputs).

    Raises:
        ConfigError: num_sampled out of range, or a proposal over a different number of classes.
        DataError: features, weight and bias do not form a linear head.
        LabelError: targets are not an (N, C) 0/1 matrix.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x, w = torch.randn(8, 4, generator=g), torch.randn(50, 4, generator=g)
        >>> y = (torch.rand(8, 50, generator=g) < 0.05).float()
        >>> q = Proposal.create("uniform", num_classes=50)
        >>> sampled_bce_loss(x, w, None, y, proposal=q, num_sampled=10, generator=g).shape
        torch.Size([])
    """
    _check_head(features, weight, bias, chunk_size=1)
    num_rows, num_classes = features.shape[0], weight.shape[0]
    rows, cols = _positive_pairs(targets, num_rows=num_rows, num_classes=num_classes)
    sampled, log_expected = _draw(proposal, weight, num_sampled=num_sampled, generator=generator)
    positive, negatives = _used_logits(features, weight, bias, rows=rows, cols=cols, sampled=sampled)
    positive_sum = F.softplus(-positive).sum()
    # A sampled class that is a positive of row i is not a negative of row i: drop the term (indicator above).
    keys = rows * num_classes + cols
    queries = torch.arange(num_rows, device=sampled.device)[:, None] * num_classes + sampled[None, :]
    found = torch.searchsorted(keys, queries).clamp_(max=max(keys.numel() - 1, 0))
    is_positive = (keys[found] == queries) if keys.numel() else torch.zeros_like(queries, dtype=torch.bool)
    importance = torch.exp(-log_expected).to(negatives.dtype)  # 1 / (K q(s_k))
    negative_sum = (F.softplus(negatives) * importance).masked_fill(is_positive, 0.0).sum()
    return (positive_sum + negative_sum) / (num_rows * num_classes)
