"""Training options, and the rules that fill in the ones left at None ("auto")."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from labelwise.errors import ConfigError
from labelwise.train.loggers import check_loggers

__all__ = ["AUTO_LR", "TrainConfig"]

# Peak learning rate of the one-cycle schedule for AdamW when training from scratch. Fine-tuning pretrained
# weights wants ~10x less (pass lr=3e-4).
AUTO_LR = 3e-3
AUTO_WEIGHT_DECAY = 0.05
# Auto epochs aim at this many optimizer steps: enough for the small CNN and MLP to converge under the
# one-cycle schedule on small data, while large data still gets _MIN_EPOCHS passes. One-cycle needs its horizon
# up front; early stopping ends sooner when validation stops improving. 400 steps left the multilabel demo
# under-trained (test micro-F1 0.93, still improving at the last epoch); 1000 reach 0.97 (digits: 49 epochs, 48 s).
_AUTO_STEPS = 1000
_MIN_EPOCHS, _MAX_EPOCHS = 10, 100
# Auto batch size aims at ~20 batches per epoch on small data, within these bounds.
_MIN_BATCH, _MAX_BATCH = 32, 256


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How to train; None means "choose for me" (see `resolve_*`).

    Args:
        epochs: most epochs to run; None: enough for ~1000 optimizer steps, within [10, 100] (images read by the
            compact CNN: the image recipe's, `labelwise.models.image_recipe`). Early stopping may end training sooner.
        time_budget: seconds of training (validation included) after which training stops and the best
            epoch so far is kept; None: no limit.
        lr: peak learning rate of the one-cycle schedule; None: `AUTO_LR`.
        weight_decay: AdamW weight decay, applied to weight matrices and kernels only (not biases or norms); None:
            the backbone's own (the text backbone's, see `labelwise.models.text`), else `AUTO_WEIGHT_DECAY`.
        batch_size: None: the power of two nearest to num_samples / 20, within [32, 256] (and at most num_samples);
            images read by the compact CNN: the image recipe's.
        patience: epochs without a lower validation loss before early stopping.
        seed: seeds Python, numpy and torch, and the order of training batches.
        folds: cross-fitting (`labelwise.train.bagging`): an int k >= 2 trains k networks, each on all rows but one
            fold, and fits calibration and decisions on every row's out-of-fold prediction; 1 trains one network
            on an 80/20 split; ``"auto"``: `labelwise.pipeline.prepare.resolve_folds` decides from the data.
        label_smoothing: in [0, 1); used by the caller when building the loss.
        balance: ``"auto"`` weights the loss when classes are imbalanced beyond 10:1
            (`labelwise.losses.infer_balance`), ``"none"`` never; used by the caller when building the loss.
        num_workers: DataLoader worker processes; 0 loads batches in the training process, the fastest
            for in-memory tensors.
        accelerator: Lightning accelerator: ``"auto"``, ``"cpu"``, ``"gpu"``, ``"mps"``.
        guards: what the training guards do when the model collapses onto one class or learns nothing
            (`labelwise.train.guards`): ``"warn"`` (a `TrainingWarning`, recorded in the run), ``"fail"``
            (a `TrainingError`), or ``"off"``. Non-finite losses and gradients always stop training.
        loggers: Lightning loggers of the training curves, some of ``"csv"``, ``"tensorboard"``, ``"mlflow"``
            (`labelwise.train.loggers`); ``"csv"`` (``run_dir/logs/metrics.csv``) is always on, since the HTML
            report reads it. They may change when a run is resumed.
        loss: how the softmax of a large head is trained (`labelwise.huge.choose_head_loss`): ``"full"`` logits,
            ``"chunked"`` (exact, never holds batch x classes logits), ``"sampled"`` (candidate sampling), or
            ``"auto"`` (full while its logits fit, chosen from the class count and the memory; the run says why).
        num_sampled: negatives per step shared by the batch with ``loss="sampled"``; None: 4096.
        proposal: what ``loss="sampled"`` draws negatives from: ``"frequency"`` (training label counts to the
            power 0.75), ``"uniform"``, or ``"log_uniform"`` (Zipf over class ids, for classes numbered by
            decreasing frequency).
        devices: processes per machine (CPU) or accelerators per machine to train on, an int >= 1 or ``"auto"``
            (Lightning's choice: every visible GPU, else one CPU process); see `labelwise.train.distributed`.
            With more than one process in all, each takes an equal slice of every batch of ``batch_size`` rows.
        num_nodes: machines taking part (launched by torchrun or SLURM); more than 1 needs their environment.
        strategy: ``"auto"`` (one process: no strategy; several: DDP), ``"ddp"`` or ``"fsdp"`` (GPUs only).
        precision: ``"32"``, ``"bf16-mixed"`` or ``"16-mixed"`` (GPUs only) autocast; weights stay float32.
            These four may change when a run is resumed.

    Example:
        >>> config = TrainConfig(epochs=5)
        >>> config.resolve_batch_size(1257), config.resolve_epochs(20), config.resolve_lr()
        (64, 5, 0.003)
    """

    epochs: int | None = None
    time_budget: float | None = None
    lr: float | None = None
    weight_decay: float | None = None
    batch_size: int | None = None
    patience: int = 8
    seed: int = 0
    folds: int | Literal["auto"] = "auto"
    label_smoothing: float = 0.0
    balance: Literal["auto", "none"] = "auto"
    num_workers: int = 0
    accelerator: str = "auto"
    guards: Literal["warn", "fail", "off"] = "warn"
    loggers: tuple[str, ...] = ("csv",)
    loss: Literal["auto", "full", "chunked", "sampled"] = "auto"
    num_sampled: int | None = None
    proposal: Literal["frequency", "uniform", "log_uniform"] = "frequency"
    devices: int | Literal["auto"] = 1
    num_nodes: int = 1
    strategy: Literal["auto", "ddp", "fsdp"] = "auto"
    precision: Literal["32", "16-mixed", "bf16-mixed"] = "32"

    def __post_init__(self) -> None:
        _check_int(self.epochs, "epochs", low=1, optional=True)
        _check_number(self.time_budget, "time_budget", positive=True, optional=True)
        _check_number(self.lr, "lr", positive=True, optional=True)
        _check_number(self.weight_decay, "weight_decay", positive=False, optional=True)
        _check_int(self.batch_size, "batch_size", low=1, optional=True)
        _check_int(self.patience, "patience", low=1)
        _check_int(self.seed, "seed", low=0)
        if self.folds != "auto":
            _check_int(self.folds, "folds", low=1)
        _check_number(self.label_smoothing, "label_smoothing", positive=False)
        if self.label_smoothing >= 1:
            raise ConfigError(f"label_smoothing={self.label_smoothing!r}; expected a value in [0, 1), e.g. 0.1.")
        if self.balance not in ("auto", "none"):
            raise ConfigError(f"balance={self.balance!r}; expected 'auto' or 'none'.")
        _check_int(self.num_workers, "num_workers", low=0)
        if not isinstance(self.accelerator, str) or not self.accelerator:
            raise ConfigError(f"accelerator={self.accelerator!r}; expected 'auto', 'cpu', 'gpu' or 'mps'.")
        if self.guards not in ("warn", "fail", "off"):
            raise ConfigError(f"guards={self.guards!r}; expected 'warn', 'fail' or 'off'.")
        object.__setattr__(self, "loggers", check_loggers(self.loggers))
        if self.loss not in ("auto", "full", "chunked", "sampled"):
            raise ConfigError(f"loss={self.loss!r}; expected 'auto', 'full', 'chunked' or 'sampled'.")
        _check_int(self.num_sampled, "num_sampled", low=1, optional=True)
        if self.proposal not in ("frequency", "uniform", "log_uniform"):
            raise ConfigError(f"proposal={self.proposal!r}; expected 'frequency', 'uniform' or 'log_uniform'.")
        from labelwise.train.distributed import check_scale_out_values  # deferred: it imports torch

        check_scale_out_values(self)

    def resolve_batch_size(self, num_samples: int, *, largest: int = _MAX_BATCH) -> int:
        """``batch_size``, or the auto rule for ``num_samples`` training rows (at most `largest`); never more than
        num_samples."""
        if self.batch_size is not None:
            return min(self.batch_size, max(1, num_samples))
        auto = 2 ** round(math.log2(max(num_samples, 1) / 20)) if num_samples >= 20 else 1
        return min(max(auto, _MIN_BATCH), largest, max(1, num_samples))

    def resolve_epochs(self, steps_per_epoch: int) -> int:
        """``epochs``, or enough epochs of ``steps_per_epoch`` batches for ~1000 steps, within [10, 100]."""
        if self.epochs is not None:
            return self.epochs
        return min(max(math.ceil(_AUTO_STEPS / max(steps_per_epoch, 1)), _MIN_EPOCHS), _MAX_EPOCHS)

    def resolve_weight_decay(self, preferred: float | None = None) -> float:
        """``weight_decay``, or the backbone's ``preferred`` one, or `AUTO_WEIGHT_DECAY`."""
        if self.weight_decay is not None:
            return self.weight_decay
        return AUTO_WEIGHT_DECAY if preferred is None else preferred

    def resolve_lr(self, preferred: float | None = None) -> float:
        """``lr``, or the backbone's ``preferred`` one, or `AUTO_LR`."""
        if self.lr is not None:
            return self.lr
        return AUTO_LR if preferred is None else preferred

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; `from_dict` inverts it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build a config from a mapping; unknown keys raise `ConfigError` with the closest field name.

        Example:
            >>> TrainConfig.from_dict({"learning_rate": 0.1})  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            labelwise.errors.ConfigError: unknown TrainConfig option 'learning_rate' (did you mean 'lr'?). ...
        """
        names = [f.name for f in fields(cls)]
        for key in data:
            if key not in names:
                close = _alias(key) or difflib.get_close_matches(key, names, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"unknown TrainConfig option {key!r}{hint}. Options: {', '.join(names)}.")
        return cls(**dict(data))


def _alias(key: str) -> list[str]:
    # Spellings other libraries use for our fields; difflib cannot see that "learning_rate" means "lr".
    aliases = {"learning_rate": "lr", "max_epochs": "epochs", "wd": "weight_decay", "bs": "batch_size"}
    return [aliases[key]] if key in aliases else []


def _check_int(value: Any, name: str, *, low: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        expected = f"an int >= {low}" + (" or None (auto)" if optional else "")
        raise ConfigError(f"{name}={value!r}; expected {expected}.")


def _check_number(value: Any, name: str, *, positive: bool, optional: bool = False) -> None:
    if value is None and optional:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        expected = ("a number > 0" if positive else "a number >= 0") + (" or None (auto)" if optional else "")
        raise ConfigError(f"{name}={value!r}; expected {expected}.")
