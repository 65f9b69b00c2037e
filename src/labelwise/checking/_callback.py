"""`WiringCheck`: `check` on the first batch of a Lightning fit (its own module: Lightning imports slowly)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import lightning as L

from labelwise.checking._check import LossFn, check
from labelwise.checking._report import CheckReport
from labelwise.errors import ConfigError, PossibleMistakeWarning
from labelwise.task import Label, Task

__all__ = ["WiringCheck"]


class WiringCheck(L.Callback):
    """Run `check` on the first training batch of a fit; warn for each finding, or fail on errors.

    Args:
        loss_fn: the loss the module trains with; None: the module's ``loss``, ``loss_fn`` or ``criterion``.
        fail: raise `TrainingError` when a finding is an error (warnings are still warned).
        classes: as for `check`.
        task: as for `check`.

    Attributes:
        report: the `CheckReport` of the first batch, None before it.

    Example:
        >>> callback = WiringCheck(fail=True)  # L.Trainer(callbacks=[callback]); callback.report after fit
    """

    def __init__(
        self,
        loss_fn: LossFn | None = None,
        *,
        fail: bool = False,
        classes: int | Sequence[Label] | None = None,
        task: Task | None = None,
    ) -> None:
        self.loss_fn, self.fail, self.classes, self.task = loss_fn, fail, classes, task
        self.report: CheckReport | None = None

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Check once, on the first batch."""
        if self.report is not None:
            return
        loss_fn = self.loss_fn if self.loss_fn is not None else _module_loss(pl_module)
        self.report = check(pl_module, loss_fn, batch, classes=self.classes, task=self.task)
        if self.fail:
            self.report.raise_for_errors()
        for finding in self.report.findings:
            warnings.warn(str(finding), PossibleMistakeWarning, stacklevel=2)


def _module_loss(module: L.LightningModule) -> LossFn:
    for name in ("loss", "loss_fn", "criterion"):
        value = getattr(module, name, None)
        if callable(value):
            return value  # type: ignore[no-any-return]
    raise ConfigError(
        f"WiringCheck found no loss on {type(module).__name__}: it looks for `self.loss`, `self.loss_fn` or "
        "`self.criterion`. Pass it: `WiringCheck(loss_fn=...)`."
    )
