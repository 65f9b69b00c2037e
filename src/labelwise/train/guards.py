"""Training guards: Lightning callbacks that say so, while training, when a model collapses onto one class or
learns nothing.

- `CollapseGuard` (rule ``"collapse"``) counts each validation pass's untuned decisions (0.5 / argmax) per class
  and reports when `labelwise.train.collapse.is_collapsed` says so: a class with enough validation items never
  predicted or never hit, or one class taking almost all decisions while the labels say otherwise, for
  `COLLAPSE_PATIENCE` passes in a row that do not improve the validation loss, or in every pass of the run.
  The criterion and why each constant is what it is: `labelwise.train.collapse`.
- `LearningGuard` (rule ``"no_learning"``) reports a validation loss that never beats `constant_loss`, the loss
  of the best constant prediction fitted on the training labels, once it has stopped falling
  (`labelwise.train.baseline`).

Each reports a finding once per rule, as a `TrainingWarning` (``action="warn"``) or a `TrainingError`
(``action="fail"``), and keeps it in ``guard.findings``; `CollapseGuard` logs ``collapse`` (0/1) per epoch into
the trainer's logger (``metrics.csv``). Both keep their state in checkpoints, so a resumed run continues them.
`create_guards` builds them for `labelwise.train.fit_network` from ``TrainConfig.guards``.

Decision thresholds are tuned on validation after training: a class the 0.5 threshold misses while its scores
still rank it high is recovered by them; the messages say so.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import astuple, dataclass
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

from labelwise.errors import ConfigError, TrainingError, TrainingWarning
from labelwise.losses import IMBALANCE_RATIO, TaskLoss
from labelwise.task import Task, TaskKind
from labelwise.train.baseline import STALL_PASSES, constant_loss, is_not_learning
from labelwise.train.collapse import (
    COLLAPSE_PATIENCE,
    CollapseSign,
    collapse_signs,
    collapse_streak,
    count_decisions,
    is_collapsed,
)
from labelwise.train.distributed import is_distributed, reduce_sum

__all__ = ["CollapseGuard", "CollapsePass", "GuardAction", "LearningGuard", "create_guards"]

GuardAction = Literal["warn", "fail"]


@dataclass(frozen=True)
class CollapsePass:
    """What `CollapseGuard` saw in one validation pass.

    Attributes:
        epoch: the epoch it validated.
        signs: its `collapse_signs`; none: no collapse.
        improved: it lowered the best monitored validation loss so far (the first logged loss always does).
    """

    epoch: int
    signs: tuple[CollapseSign, ...]
    improved: bool


class CollapseGuard(Callback):
    """Report a model whose validation decisions collapse onto one class or ignore a class.

    The LightningModule's ``validation_step`` must return the batch's logits (a tensor, or a dict holding them
    under ``"logits"``); the batch is ``(inputs, targets)`` with ``task.encode`` targets.

    Args:
        task: the Task the targets encode.
        action: ``"warn"`` (a `TrainingWarning`) or ``"fail"`` (a `TrainingError`).
        patience: consecutive collapsed passes that do not improve the validation loss before the finding.
        monitor: the logged validation loss; when it is not logged, every pass counts as not improving.

    Attributes:
        findings: ``dict(epoch, rule, message)`` for each report (at most one, rule ``"collapse"``).
        passes: a `CollapsePass` per validation pass.
    """

    def __init__(
        self, task: Task, *, action: GuardAction = "warn", patience: int = COLLAPSE_PATIENCE, monitor: str = "val_loss"
    ) -> None:
        _check_action(action)
        self.task = task
        self.action = action
        self.patience = patience
        self.monitor = monitor
        self.findings: list[dict[str, Any]] = []
        self.passes: list[CollapsePass] = []
        self._counts = torch.zeros(3, task.num_classes, dtype=torch.long)
        self._num_items = 0
        self._signs: list[CollapseSign] | None = None
        self._best = math.inf

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Start counting a new pass."""
        self._counts = torch.zeros(3, self.task.num_classes, dtype=torch.long)
        self._num_items = 0
        self._signs = None

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Count the batch's decisions against its targets."""
        if trainer.sanity_checking:
            return
        targets = batch[1]
        self._counts += count_decisions(_logits(outputs), targets, self.task)
        self._num_items += len(targets)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Look for collapse and log ``collapse`` (0/1) for the pass."""
        if trainer.sanity_checking:
            return
        if is_distributed():
            # Each process counted its slice of the validation rows: decide on all of them, alike on every process
            # (a finding raised on one process only would leave the others waiting in the next collective).
            both = torch.cat([self._counts.flatten(), torch.tensor([self._num_items])]).to(pl_module.device)
            both = reduce_sum(both).cpu()
            self._counts, self._num_items = both[:-1].reshape(self._counts.shape), int(both[-1])
        if self._num_items == 0:
            return
        predicted, items, hits = self._counts
        self._signs = collapse_signs(predicted, items, hits, num_items=self._num_items, kind=self.task.kind)
        pl_module.log("collapse", float(bool(self._signs)))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Record the pass with whether it improved the loss (logged by now); report a lasting collapse."""
        if trainer.sanity_checking or self._signs is None:
            return
        value = trainer.callback_metrics.get(self.monitor)
        loss = float(value) if value is not None else math.nan
        self.passes.append(CollapsePass(pl_module.current_epoch, tuple(self._signs), improved=loss < self._best))
        self._best = min(self._best, loss) if math.isfinite(loss) else self._best
        if is_collapsed(self._flags(), patience=self.patience):
            self._report(pl_module)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Report a model whose every pass collapsed (see `is_collapsed`): it is the model returned."""
        if is_collapsed(self._flags(), patience=self.patience, final=True):
            self._report(pl_module)

    def state_dict(self) -> dict[str, Any]:
        """The passes and findings so far, kept in a checkpoint so that a resumed run continues them.

        Plain values only: checkpoints are loaded with ``weights_only=True``.
        """
        passes = [(p.epoch, [astuple(sign) for sign in p.signs], p.improved) for p in self.passes]
        return {"passes": passes, "findings": self.findings, "best": self._best, "num_items": self._num_items}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue from `state_dict`."""
        self.passes = [
            CollapsePass(epoch, tuple(CollapseSign(*fields) for fields in signs), improved)
            for epoch, signs, improved in state_dict["passes"]
        ]
        self.findings = list(state_dict["findings"])
        self._best = state_dict["best"]
        self._num_items = state_dict["num_items"]

    def _flags(self) -> list[tuple[bool, bool]]:
        return [(bool(p.signs), p.improved) for p in self.passes]

    def _report(self, pl_module: L.LightningModule) -> None:
        if self.findings:
            return
        last, streak = self.passes[-1], collapse_streak(self._flags())
        if all(collapsed for collapsed, _ in self._flags()):
            first = self.passes[0].epoch
            when = f"epochs {first}-{last.epoch}" if last.epoch > first else f"epoch {last.epoch}"
            start = f"the model's validation decisions were collapsed in every pass ({when}) until training ended"
            short = " If the run was short, it may not have trained enough: train for more epochs."
        else:
            first = self.passes[-streak].epoch
            start = f"the model collapsed in validation (epochs {first}-{last.epoch}, {streak} passes in a row)"
            short = ""
        per = "label" if self.task.kind is TaskKind.MULTILABEL else "class"
        described = [sign.describe(self.task.classes, num_items=self._num_items) for sign in last.signs]
        # Three signs say what happened; a thousand-class collapse would otherwise print a thousand.
        more = f"; and {len(described) - 3} more like them" if len(described) > 3 else ""
        seen = "; ".join(described[:3]) + more
        message = (
            f"{start}: {seen}, deciding by {_default_rule(self.task)}. Decisions per {per}: "
            f"{_counts(self._counts[0], self.task.classes)}; labels: {_counts(self._counts[1], self.task.classes)}. "
            f"{_imbalance(self._counts[1], self.task)}{_remedies(pl_module)}{short} Decision thresholds are tuned "
            "on validation after training: they recover a class the 0.5 threshold misses only while its scores "
            "still rank its items first. Pass `--guards off` (guards='off') to silence this check."
        )
        _emit(self.findings, epoch=last.epoch, rule="collapse", message=message, action=self.action)


class LearningGuard(Callback):
    """Report a model whose validation loss does not beat the constant prediction (`constant_loss`).

    Args:
        baseline_loss: `constant_loss` for this data and loss.
        action: ``"warn"`` (a `TrainingWarning`) or ``"fail"`` (a `TrainingError`).
        monitor: the logged validation loss.

    Attributes:
        findings: ``dict(epoch, rule, message)`` for each report (at most one, rule ``"no_learning"``).
        val_losses: the monitored loss of each validation pass.
    """

    def __init__(self, baseline_loss: float, *, action: GuardAction = "warn", monitor: str = "val_loss") -> None:
        _check_action(action)
        self.baseline_loss = baseline_loss
        self.action = action
        self.monitor = monitor
        self.findings: list[dict[str, Any]] = []
        self.val_losses: list[float] = []
        self._epochs: list[int] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Record the pass's loss (logged by then); report once the loss stalls above the baseline."""
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None:
            return
        self.val_losses.append(float(value))
        self._epochs.append(pl_module.current_epoch)
        if is_not_learning(self.val_losses, self.baseline_loss):
            self._report(pl_module, final=False)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Report when the best pass of the run did not beat the baseline: it is the model returned."""
        if is_not_learning(self.val_losses, self.baseline_loss, final=True):
            self._report(pl_module, final=True)

    def state_dict(self) -> dict[str, Any]:
        """The losses and findings so far, kept in a checkpoint so that a resumed run continues them."""
        return {"val_losses": self.val_losses, "epochs": self._epochs, "findings": self.findings}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue from `state_dict`."""
        self.val_losses = list(state_dict["val_losses"])
        self._epochs = list(state_dict["epochs"])
        self.findings = list(state_dict["findings"])

    def _report(self, pl_module: L.LightningModule, *, final: bool) -> None:
        if self.findings:
            return
        passes, best = len(self.val_losses), min(self.val_losses)
        what = (
            f"training ended after {passes} epoch{'s' * (passes > 1)} with a best {self.monitor} of {best:.4g}"
            if final
            else f"after {passes} epochs the best {self.monitor} is {best:.4g} and has not fallen for {STALL_PASSES}"
        )
        message = (
            f"the model learns nothing beyond the label frequencies: {what}, not below {self.baseline_loss:.4g}, the "
            "loss of one constant prediction fitted to the training labels. Likely causes: a learning rate too high "
            "(the loss jumps) or too low (it barely moves), labels that do not follow from the inputs, or inputs on "
            f"very different scales. Try {_lower_lr(pl_module)} or a higher one when the loss barely moves; check "
            "that the target column is right and that rows and labels line up; standardize the inputs (labelwise's "
            "table preprocessing does). Pass `--guards off` (guards='off') to silence this check."
        )
        _emit(self.findings, epoch=self._epochs[-1], rule="no_learning", message=message, action=self.action)


# -- building the guards -----------------------------------------------------------------------------------------
def create_guards(
    task: Task,
    *,
    action: Literal["warn", "fail", "off"],
    loss: nn.Module,
    train_targets: torch.Tensor | None,
    valid_targets: torch.Tensor | None,
) -> list[CollapseGuard | LearningGuard]:
    """The guards `labelwise.train.fit_network` adds for ``TrainConfig.guards``: none for ``"off"``.

    `LearningGuard` needs a baseline: it is left out for a loss other than labelwise's `TaskLoss` (build it with
    `constant_loss` yourself) and when the targets are None (a Dataset whose targets are not at hand).

    Example:
        >>> from labelwise.losses import loss_for
        >>> task = Task(kind="binary", classes=("no", "yes"))
        >>> y = torch.tensor([0.0, 1.0, 1.0])
        >>> guards = create_guards(task, action="warn", loss=loss_for(task), train_targets=y, valid_targets=y)
        >>> [type(guard).__name__ for guard in guards], round(guards[1].baseline_loss, 4)  # -log 2/3, -log 1/3
        (['CollapseGuard', 'LearningGuard'], 0.6365)
    """
    if action == "off":
        return []
    guards: list[CollapseGuard | LearningGuard] = [CollapseGuard(task, action=action)]
    # Fitting the constant calls the loss ~100 times: only labelwise's own loss is known to be a pure function of
    # (logits, targets); a user's loss may count calls or hold state.
    if isinstance(loss, TaskLoss) and train_targets is not None and valid_targets is not None:
        baseline = constant_loss(loss, task, train_targets=train_targets, valid_targets=valid_targets)
        if math.isfinite(baseline):
            guards.append(LearningGuard(baseline, action=action))
    return guards


# -- helpers -----------------------------------------------------------------------------------------------------
def _check_action(action: str) -> None:
    if action not in ("warn", "fail"):
        raise ConfigError(f"action={action!r}; expected 'warn' or 'fail' (leave the guard out to turn it off).")


def _logits(outputs: Any) -> torch.Tensor:
    logits = outputs.get("logits") if isinstance(outputs, dict) else outputs
    if not isinstance(logits, torch.Tensor):
        raise ConfigError(
            f"CollapseGuard needs the validation logits, but validation_step returned {type(outputs).__name__}. "
            "Return the batch's logits from validation_step (a tensor, or a dict with a 'logits' key)."
        )
    return logits


def _default_rule(task: Task) -> str:
    if task.kind is TaskKind.MULTICLASS:
        return "the argmax"
    return "the default threshold 0.5" + (" of each label" if task.kind is TaskKind.MULTILABEL else "")


def _counts(counts: torch.Tensor, classes: tuple[Any, ...], *, limit: int = 5) -> str:
    """``'benign' 60, 'malignant' 0``: the largest counts first, at most ``limit`` classes and how many more."""
    values = counts.tolist()
    order = sorted(range(len(values)), key=lambda i: -values[i])
    shown = ", ".join(f"{classes[i]!r} {values[i]}" for i in order[:limit])
    return shown + (f" and {len(order) - limit} more" if len(order) > limit else "")


def _imbalance(items: torch.Tensor, task: Task) -> str:
    if task.kind is TaskKind.MULTILABEL or int(items.min()) == 0:
        return ""
    ratio = int(items.max()) / int(items.min())
    if ratio < IMBALANCE_RATIO:
        return ""
    return f"The validation labels are imbalanced ({ratio:.0f}:1). "


def _remedies(pl_module: L.LightningModule) -> str:
    loss = getattr(pl_module, "loss", None)
    weighted = isinstance(loss, TaskLoss) and (loss.pos_weight is not None or loss.class_weight is not None)
    if weighted:  # class weights are on already: suggesting them again would send the user in a circle
        return (
            "Likely cause: a learning rate too high for the model (the loss jumps between epochs), or labels that "
            f"do not follow from the inputs. Try {_lower_lr(pl_module)}."
        )
    return (
        "Likely causes: a learning rate too high for the model (the loss jumps between epochs), labels that do not "
        "follow from the inputs, or imbalanced classes under an unweighted loss (`--balance auto`, the default, "
        f"weights it from {IMBALANCE_RATIO:g}:1 on; `--balance none` never). Try {_lower_lr(pl_module)}."
    )


def _lower_lr(pl_module: L.LightningModule) -> str:
    lr = getattr(pl_module, "lr", None)  # LabelwiseModule's peak learning rate; other modules may not say
    now = f" of the peak lr={lr:g}" if isinstance(lr, float) else ""
    return f"a lower learning rate (`--lr`, e.g. a tenth{now})"


def _emit(findings: list[dict[str, Any]], *, epoch: int, rule: str, message: str, action: GuardAction) -> None:
    findings.append({"epoch": epoch, "rule": rule, "message": message})
    if action == "fail":
        raise TrainingError(message)
    warnings.warn(message, TrainingWarning, stacklevel=2)
