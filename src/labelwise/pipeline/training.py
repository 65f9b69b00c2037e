"""The train stage: the network, the class balance and the head's loss from the prepared data, then the loop."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from labelwise.errors import ConfigError
from labelwise.losses import Balance, infer_balance
from labelwise.models import ModelSpec, Network, create_network
from labelwise.options import FitOptions
from labelwise.pipeline.prepare import Prepared
from labelwise.task import HeadType, Task, TaskKind
from labelwise.train._malloc import large_blocks_kept
from labelwise.train.bagging import fit_bagged, write_curve
from labelwise.train.batches import GroupedDataset, InMemoryDataset
from labelwise.train.checkpoints import check_run_record, stored_choice
from labelwise.train.config import TrainConfig
from labelwise.train.distributed import is_global_zero
from labelwise.train.head_loss import HeadLoss, build_loss
from labelwise.train.result import TrainResult
from labelwise.train.solve import solve_linear

__all__ = ["Trained", "decide_balance", "train"]

# A sampled step costs mostly what does not grow with the batch: the optimizer's update of the whole (C, H) head
# and the head's gradient buffer. On a 50,000-class table (benchmarks/huge_table.py) batches of 1,024 rows instead
# of 256 took an epoch from 31 to 19 s, with the same test P@1 (0.9968) after the same 10 epochs. Only with the
# auto epochs (at least 10): given the passes, 4x larger batches are 4x fewer steps, and `labelwise demo extreme`
# (3 epochs) fell from test P@1 0.915 to 0.868.
SAMPLED_MAX_BATCH = 1024

# Options a resumed run may change: where and how fast it runs, not what it learns. Devices, nodes, strategy and
# precision are not among them: each process takes a slice of the same batches (`labelwise.train.distributed`), so
# a run resumed on other hardware takes the steps it would have taken.
_FREE_ON_RESUME = frozenset(
    {"time_budget", "accelerator", "num_workers", "guards", "loggers", "devices", "num_nodes", "strategy", "precision"}
)

# A solved linear model reaches its optimum whatever the class counts, and the decision tuned on validation moves
# its threshold for the rare class; loss weights only reshape that optimum. On the multilabel text corpus
# (recipe-allergens, benchmarks/text_baselines.py) pos_weight on the rare tags lowered test micro-F1 from 0.864 to
# 0.839.
_SOLVED_BALANCE = Balance(None, None, "no loss weights: the linear model is solved exactly and the decision is "
                          "tuned on validation rows for the rare classes.")  # fmt: skip


# Cross-fitted, the thresholds of a binary or multilabel run are tuned on every row's out-of-fold prediction, where
# they move for the rare classes; loss weights would only distort the probabilities they are tuned on. Measured
# with `benchmarks/tables.py` (2 seeds): without pos_weight, test micro-F1 on river's yeast rose from 0.626 to 0.675
# (HistGradientBoosting 0.641), and ROC-AUC on breast cancer with 90 % of the malignant rows removed from 0.997 to
# 0.998. A multiclass run decides by argmax, which class weights do move: it keeps them.
_CROSS_FITTED_BALANCE = Balance(None, None, "no loss weights: the decision thresholds are tuned on every row's "
                                "out-of-fold prediction.")  # fmt: skip


@dataclass(frozen=True, eq=False)
class Trained:
    """What training produced: the Task with its final head type, the training result, the class balance used,
    the head loss's record, and the spec that rebuilds the network (``members`` > 1 when cross-fitted).

    ``task`` is the prepared Task, with head type ``ranked`` when the loss chosen for a huge softmax head means that
    every later stage works in class chunks. ``head`` holds ``loss`` (full, chunked or sampled), ``reason``,
    ``balance`` and ``outputs`` (``ranked`` or ``logits``), as `labelwise.train.head_loss.build_loss` chose them.
    """

    task: Task
    result: TrainResult
    balance: Balance
    head: Mapping[str, str]
    spec: ModelSpec


def train(prepared: Prepared, options: FitOptions, *, run_dir: Path, resume: bool, progress: bool) -> Trained:
    """Build the network and the loss the Task and options call for, and train on the prepared rows.

    Raises:
        ConfigError: a resumed run with other data or options; a loss or decision the head cannot give.
        TrainingError: training diverged, or a guard set to ``fail`` fired.
    """
    config, task = _with_recipe(options.train, prepared), prepared.task
    torch.manual_seed(config.seed)  # the initial weights depend on the seed alone
    network = create_network(prepared.spec, task)
    assert isinstance(network, Network)  # a prepared spec is one network; cross-fitting averages several
    balance = decide_balance(prepared.train_targets, task, config)
    if getattr(network.backbone, "solved", False) and config.balance == "auto":
        balance = _SOLVED_BALANCE
    elif prepared.folds is not None and config.balance == "auto" and task.kind is not TaskKind.MULTICLASS:
        balance = _CROSS_FITTED_BALANCE
    resumed_loss = stored_choice(run_dir, "head_loss") if resume and config.loss == "auto" else None
    loss, head = build_loss(
        task,
        config=replace(config, loss=resumed_loss) if resumed_loss else config,  # type: ignore[arg-type]
        balance=balance,
        num_features=network.num_features,
        train_targets=prepared.train_targets,
        decide=options.decide,
        cross_fitted=prepared.folds is not None,
    )
    if resumed_loss:
        head = {**head, "reason": f"--loss auto chose {resumed_loss} when this run started; the resumed run keeps it."}
    if head["loss"] == "sampled" and config.batch_size is None:
        config, head = _sampled_batches(config, head, num_rows=len(prepared.train_targets))
    if prepared.fingerprint is not None and is_global_zero():
        check_run_record(run_dir, _resume_record(prepared, config) | {"chosen": {"head_loss": head["loss"]}})
    spec = prepared.spec
    if prepared.folds is not None:
        _check_bagged(network, loss, folds=int(prepared.folds.max()) + 1)
        result = fit_bagged(
            lambda: create_network(prepared.spec, task), task, train=prepared.train, valid=prepared.valid,
            folds=prepared.folds, loss=loss, config=config, progress=progress,
        )  # fmt: skip
        spec = replace(spec, members=int(prepared.folds.max()) + 1)
        write_curve(run_dir, result.history)
    elif _solvable(network, loss, prepared):
        result = solve_linear(network, task, train=prepared.train, valid=prepared.valid, loss=loss, config=config)
    else:
        from labelwise.train.trainer import fit_network  # deferred: Lightning takes seconds to import

        with large_blocks_kept() if isinstance(loss, HeadLoss) else nullcontext():  # a huge head's gradient is
            result = fit_network(  # made and freed every step
                network, task, train=prepared.train, valid=prepared.valid, loss=loss, config=config, run_dir=run_dir,
                progress_bar=progress, resume=resume,
            )  # fmt: skip
    if head["outputs"] == "ranked":
        task = task.with_head(HeadType.RANKED)
    return Trained(task, result, balance, head, spec)


def _sampled_batches(config: TrainConfig, head: dict[str, str], *, num_rows: int) -> tuple[TrainConfig, dict[str, str]]:
    """Batches of up to `SAMPLED_MAX_BATCH` rows for a sampled head with the auto epochs, and the reason saying so."""
    batch = config.resolve_batch_size(num_rows, largest=SAMPLED_MAX_BATCH)
    if batch == config.resolve_batch_size(num_rows) or config.epochs is not None:
        return config, head
    reason = (f"{head['reason']} It trains on batches of {batch:,} rows: a sampled step costs mostly the update of "
              "the whole head, whatever the batch.")  # fmt: skip
    return replace(config, batch_size=batch), {**head, "reason": reason}


def _with_recipe(config: TrainConfig, prepared: Prepared) -> TrainConfig:
    """``config`` with the image recipe's batch size and epochs (which keep those the options name)."""
    recipe = prepared.recipe
    return config if recipe is None else replace(config, batch_size=recipe.batch_size, epochs=recipe.epochs)


def _check_bagged(network: torch.nn.Module, loss: torch.nn.Module, *, folds: int) -> None:
    """Refuse cross-fitting where a member cannot be trained by `fit_bagged`."""
    if isinstance(loss, HeadLoss):
        raise ConfigError(
            f"--folds {folds} with a head trained in class chunks (--loss chunked / sampled, or very many classes): "
            "the out-of-fold logits of every class would not fit in memory. Pass --folds 1."
        )
    if getattr(getattr(network, "backbone", None), "solved", False):
        raise ConfigError(
            f"--folds {folds} with a solved linear model (--model linear, or text): it picks its L2 strength on the "
            "validation split. Pass --folds 1."
        )


def _solvable(network: torch.nn.Module, loss: torch.nn.Module, prepared: Prepared) -> bool:
    """Whether the network is a linear model that `solve_linear` fits on in-memory rows with a plain loss."""
    backbone = getattr(network, "backbone", None)
    in_memory = isinstance(prepared.train, InMemoryDataset | GroupedDataset)
    return bool(getattr(backbone, "solved", False)) and in_memory and not isinstance(loss, HeadLoss)


def decide_balance(train_targets: torch.Tensor, task: Task, config: TrainConfig) -> Balance:
    """The loss weights ``config.balance`` asks for on these training targets (`labelwise.losses.infer_balance`)."""
    if config.balance == "none":
        return Balance(None, None, "no loss weights (balance='none').")
    return infer_balance(train_targets, task)


def _resume_record(prepared: Prepared, config: TrainConfig) -> dict[str, Any]:
    """What a resumed run must share with the one it continues: the prepared data and what shapes training."""
    kept = {key: value for key, value in config.to_dict().items() if key not in _FREE_ON_RESUME}
    return {
        "data": prepared.fingerprint,
        "options": {**kept, "task": prepared.task.to_dict(), "model": prepared.spec.to_dict()},
    }
