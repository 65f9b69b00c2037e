"""Temperature scaling: divide the logits by a temperature fitted on validation data.

Networks trained to low loss are usually over-confident; one temperature per softmax (Guo et al. 2017,
"On Calibration of Modern Neural Networks") fixes most of it without changing a single prediction, because
dividing by ``T > 0`` keeps the argmax of a softmax and the sign (the 0.5 side) of a sigmoid logit, and so
every ranking metric (AUC, AP). Sigmoid heads (binary with one logit, multilabel) get one temperature per
logit, since each logit is its own binary model; a softmax head (multiclass, binary with two logits) gets one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from labelwise.errors import ConfigError, DataError, TrainingError, format_examples, format_rows
from labelwise.losses import loss_for
from labelwise.task import Task

__all__ = ["Calibration", "fit_temperature"]

# Validation data that one logit separates perfectly drives the fitted T toward 0 (infinitely confident), which
# never generalises; sklearn bounds log(1/T) to [-10, 10], we keep T in a range a real network can need.
_MIN_T, _MAX_T = 1e-2, 1e2


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """Fitted temperatures; ``apply(logits)`` returns calibrated logits.

    Args:
        temperatures: one shared temperature, or one per logit (sigmoid heads). ``(1.0,)`` is the identity.
        nll_before: mean negative log-likelihood of the fitting data before scaling (None when not fitted).
        nll_after: the same after scaling.
        num_samples: number of items it was fitted on.
        num_separable: how many temperatures were left at 1 because the fitting data is perfectly separated
            (every item on the right side with a margin): the NLL then falls all the way to T -> 0, so the data
            supports no finite temperature, and sharpening toward certainty would not survive the first mistake.

    Example:
        >>> calibration = Calibration(temperatures=(2.0,))
        >>> calibration.apply(torch.tensor([[2.0, -4.0]]))
        tensor([[ 1., -2.]])
    """

    temperatures: tuple[float, ...] = (1.0,)
    nll_before: float | None = None
    nll_after: float | None = None
    num_samples: int = 0
    num_separable: int = 0

    def __post_init__(self) -> None:
        try:
            temperatures = tuple(float(t) for t in self.temperatures)
        except (TypeError, ValueError):
            raise ConfigError(
                f"temperatures={self.temperatures!r}; expected a sequence of positive numbers such as (1.0,)."
            ) from None
        bad = [t for t in temperatures if not (math.isfinite(t) and t > 0)]
        if not temperatures or bad:
            raise ConfigError(
                f"temperatures must be finite and > 0, got {format_examples(bad or ['nothing'])}. "
                "Fit them with `fit_temperature(logits, targets, task)`, or use Calibration() for none."
            )
        for name in ("num_samples", "num_separable"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name}={value!r}; expected an integer >= 0.")
        object.__setattr__(self, "temperatures", temperatures)

    @property
    def is_identity(self) -> bool:
        """True when every temperature is 1 (scaling changes nothing)."""
        return all(t == 1.0 for t in self.temperatures)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """Divide ``logits`` ``(N, K)`` by the temperature(s); same shape and dtype.

        Raises:
            ConfigError: per-logit temperatures whose number differs from the logits' width.
        """
        if len(self.temperatures) > 1 and (logits.ndim != 2 or logits.shape[1] != len(self.temperatures)):
            raise ConfigError(
                f"logits of shape {tuple(logits.shape)} do not fit {len(self.temperatures)} per-logit temperatures: "
                f"expected (N, {len(self.temperatures)}). Use the Calibration fitted for this model's Task."
            )
        return logits / torch.tensor(self.temperatures, dtype=logits.dtype, device=logits.device)

    def describe(self) -> str:
        """One line for the training summary.

        Example:
            >>> Calibration(temperatures=(1.5,), nll_before=0.52, nll_after=0.43, num_samples=114).describe()
            'temperature scaling, T 1.5, validation NLL 0.520 -> 0.430 on 114 items'
        """
        if self.nll_before is None or self.nll_after is None:
            return "no temperature scaling" if self.is_identity else f"temperatures {self._spread()} (given)"
        separable = ""
        if self.num_separable:
            of = "" if len(self.temperatures) == 1 else f" for {self.num_separable} of {len(self.temperatures)} logits"
            separable = f"; T kept at 1{of}: the validation items are perfectly separated, so no finite T fits"
        if self.is_identity:
            reason = separable[2:] if separable else f"it did not lower validation NLL {self.nll_before:.3f}"
            return f"no temperature scaling ({reason})"
        fitted = (
            f"temperature scaling, T {self._spread()}"
            if len(self.temperatures) == 1
            else f"per-logit temperature scaling, T {self._spread()}"
        )
        nll = f"validation NLL {self.nll_before:.3f} -> {self.nll_after:.3f} on {self.num_samples} items"
        return f"{fitted}, {nll}{separable}"

    def _spread(self) -> str:
        low, high = min(self.temperatures), max(self.temperatures)
        return f"{low:.3g}" if low == high else f"{low:.3g}-{high:.3g}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; `from_dict` inverts it."""
        return asdict(self) | {"temperatures": list(self.temperatures)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        """Rebuild a Calibration written by `to_dict`."""
        unknown = sorted(set(data) - {"temperatures", "nll_before", "nll_after", "num_samples", "num_separable"})
        if unknown:
            raise ConfigError(
                f"unknown calibration fields {format_examples(unknown)}; expected temperatures, nll_before, "
                "nll_after, num_samples, num_separable. The artifact may come from a newer labelwise: upgrade to "
                "load it."
            )
        return cls(**{**data, "temperatures": tuple(data.get("temperatures", (1.0,)))})


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor, task: Task) -> Calibration:
    """Fit temperatures on validation logits by minimising the negative log-likelihood (LBFGS on log T).

    A softmax head (multiclass, binary with two logits) gets one temperature; a sigmoid head (binary with one
    logit, multilabel) gets one per logit. A logit keeps T = 1 when its targets hold a single class (nothing
    to fit; the optimum would run off to T -> 0 or infinity) or when scaling does not lower its NLL. T is
    kept within [0.01, 100].

    Args:
        logits: ``(N, task.head_width)`` float validation logits of the trained network.
        targets: ``task.encode(labels)`` for the same items.
        task: the Task.

    Returns:
        the fitted Calibration, with the NLL before and after.

    Raises:
        DataError: no rows.
        TrainingError: non-finite logits.
        ConfigError, LabelError: logits or targets that do not fit the Task (see `loss_for`).

    Example:
        >>> task = Task(kind="multiclass", classes=("a", "b", "c"))
        >>> logits = torch.tensor([[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 4.0], [4.0, 0.0, 0.0]])
        >>> calibration = fit_temperature(logits, task.encode(["a", "b", "c", "b"]), task)
        >>> calibration.temperatures[0] > 1   # one of four confident answers is wrong: soften them
        True
    """
    _check_fit_inputs(logits, targets, task)
    logits = logits.detach().to(torch.float64)
    per_logit = task.activation == "sigmoid"
    if per_logit:
        targets = task.bce_targets(targets.detach()).to(torch.float64)
        varies = targets.min(dim=0).values < targets.max(dim=0).values
    else:
        targets = targets.detach().long()
        varies = torch.tensor([bool(targets.min() < targets.max())])
    separable = _separable(logits, targets, per_logit=per_logit) & varies
    nll = _per_logit_nll if per_logit else _shared_nll
    log_t = _minimise(lambda s: nll(logits, targets, s), num=int(varies.numel()))
    log_t = torch.where(varies & ~separable, log_t, torch.zeros_like(log_t))
    before = nll(logits, targets, torch.zeros_like(log_t))
    after = nll(logits, targets, log_t)
    # Keep T = 1 where scaling does not help: the contract is "never worse than not calibrating".
    log_t = torch.where(after < before, log_t, torch.zeros_like(log_t))
    after = nll(logits, targets, log_t)
    return Calibration(
        temperatures=tuple(torch.exp(log_t).tolist()),
        nll_before=before.mean().item(),
        nll_after=after.mean().item(),
        num_samples=len(logits),
        num_separable=int(separable.sum().item()),
    )


def _separable(logits: torch.Tensor, targets: torch.Tensor, *, per_logit: bool) -> torch.Tensor:
    """Per temperature: every item is decided right with a margin, so the NLL decreases all the way to T -> 0."""
    if per_logit:
        return ((logits > 0) == (targets > 0.5)).all(dim=0)
    true_logit = logits.gather(1, targets[:, None])
    others = logits.scatter(1, targets[:, None], -torch.inf)
    return (true_logit > others.max(dim=1, keepdim=True).values).all().reshape(1)


def _check_fit_inputs(logits: torch.Tensor, targets: torch.Tensor, task: Task) -> None:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise ConfigError(
            f"logits must be a float tensor, got {getattr(logits, 'dtype', type(logits).__name__)}. "
            "Pass the network's raw outputs on the validation items."
        )
    if logits.ndim >= 1 and logits.shape[0] == 0:
        raise DataError(
            "no validation items to fit a temperature on (0 rows); expected at least one. "
            "Give a validation split, or skip calibration with Calibration()."
        )
    # The Task's loss checks the logits' width and the targets' shape and dtype, with messages that name the fix.
    loss_for(task)(logits, targets)
    bad = ~torch.isfinite(logits).all(dim=1)
    if bad.any():
        raise TrainingError(
            f"the network outputs non-finite logits (NaN or inf) for {format_rows(bad.nonzero().flatten().tolist())} "
            "of the validation data; expected finite values. Training probably diverged: lower the learning rate."
        )


def _shared_nll(logits: torch.Tensor, targets: torch.Tensor, log_t: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``logits / T`` as a ``(1,)`` tensor."""
    return F.cross_entropy(logits * torch.exp(-log_t), targets).reshape(1)


def _per_logit_nll(logits: torch.Tensor, targets: torch.Tensor, log_t: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of each column of ``logits / T``, ``(K,)``."""
    scaled = logits * torch.exp(-log_t)
    return F.binary_cross_entropy_with_logits(scaled, targets, reduction="none").mean(dim=0)


def _minimise(objective: Callable[[torch.Tensor], torch.Tensor], *, num: int) -> torch.Tensor:
    """Minimise ``objective(log_t).sum()`` over ``num`` log-temperatures; the columns are independent."""
    low, high = math.log(_MIN_T), math.log(_MAX_T)
    log_t = torch.zeros(num, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [log_t], lr=1.0, max_iter=200, tolerance_grad=1e-12, tolerance_change=1e-15, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        # Clamping inside the objective gives a zero gradient past the bounds, so the search stops there; the
        # NLL is unimodal in log T, so the clamped optimum is the bounded one.
        loss: torch.Tensor = objective(log_t.clamp(low, high)).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    optimizer.step(closure)  # type: ignore[no-untyped-call]
    return log_t.detach().clamp(low, high)
