"""`labelwise.fit`: labels in, calibrated classifier out.

The pipeline, one named stage each: read the source -> infer the Task -> split -> fit the inputs
-> build the network -> train -> calibrate on validation -> tune the decision rule -> measure.
Data flows one way; each stage takes plain values and returns plain values.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labelwise import artifact
from labelwise._version import __version__
from labelwise.calibrate import fit_temperature
from labelwise.classifier import Classifier
from labelwise.data.images import image_transforms
from labelwise.data.sources import Source, load_source, source_from_frame
from labelwise.data.splits import Split, split_source
from labelwise.decide.config import DecideConfig
from labelwise.decide.conformal import min_calibration_size
from labelwise.decide.policy import fit_policy
from labelwise.errors import ConfigError, DataError
from labelwise.evaluation import evaluation_metrics
from labelwise.inputs import ImageInputs, Inputs, TableInputs
from labelwise.losses import Balance, infer_balance, loss_for
from labelwise.models import ModelSpec, create_network
from labelwise.task import BinaryHead, Task, infer_task
from labelwise.train import InMemoryDataset, TrainConfig, TrainResult, fit_network
from labelwise.train.checkpoints import check_run_record, drop_resume_state, last_checkpoint

__all__ = ["Split", "fit"]


def fit(
    data: Any,
    *,
    target: str | list[str] | None = None,
    image_col: str | None = None,
    task: str = "auto",
    label_sep: str | None = None,
    positive: Any = None,
    binary_head: BinaryHead = "one",
    model: str = "auto",
    pretrained: bool = False,
    image_size: int | None = None,
    metric: str = "f1",
    top_k: int | None = None,
    allow_none: str | None = None,
    coverage: float | None = None,
    selective_accuracy: float | None = None,
    conformal: float | None = None,
    config: TrainConfig | None = None,
    skip_bad_images: bool = False,
    progress: bool = True,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
) -> Classifier:
    """Train a classifier on labelled data and tune its decisions on the validation split.

    Args:
        data: a CSV/Parquet path, an image folder tree, or a DataFrame.
        target: the label column, or several 0/1 columns (multilabel); by default a column named
            ``label``, ``labels``, ``target``, ``class`` or ``y``.
        image_col: column of image paths (relative to the table's folder) for image tables.
        task: ``auto`` (from the labels) or ``binary`` / ``multiclass`` / ``multilabel`` to override.
        label_sep: separator of multilabel label strings (default: auto-detected).
        positive: positive class of a binary task (default ``True``/``1``, else the rarer class).
        binary_head: ``one`` logit (default) or ``two``.
        model: ``auto`` (``mlp`` for tables, ``cnn`` for images), one of `list_backbones()`, or a timm name.
        pretrained: start a timm model from pretrained weights found locally (Hugging Face or torch hub cache);
            nothing is downloaded, and missing weights are a `ConfigError` saying where to put them.
        image_size: side length images are resized to (default: from the data, or the timm model's).
        metric: what binary and per-label thresholds are tuned for on validation: ``f1``, ``fbeta:B``,
            ``precision@recall:R``, ``recall@precision:P``, ``accuracy``, ``balanced_accuracy``, ``mcc``, ``youden``.
        top_k: multiclass: also give the ``top_k`` most probable classes as a prediction set.
        allow_none: single-label data: let the model answer "none of these": ``max_prob`` or ``energy`` (a score
            on the calibrated softmax model) or ``one_vs_rest`` (one sigmoid per class); see `DecideConfig`.
        coverage: with ``allow_none``: fraction of validation items to answer (default 0.95).
        selective_accuracy: with ``allow_none``, instead of ``coverage``: accuracy the answered items must reach.
        conformal: give split-conformal prediction sets holding the true label with this probability (e.g. 0.9).
        config: training options (`TrainConfig`): seed, epochs, time budget, learning rate, class balancing, ...
        skip_bad_images: skip unreadable images (counted) instead of stopping.
        progress: show a progress bar while training.
        out: run directory to save to; None keeps the model in memory only. Training happens in ``out.partial``
            beside it, which becomes ``out`` when the run is complete: ``out`` never holds half a run.
        resume: continue the run a killed or failed ``fit`` left in ``out.partial`` (same data and options;
            anything else is refused), from the end of its last finished epoch; without one, start afresh.
            Without ``resume``, an interrupted run in ``out.partial`` is an error rather than thrown away.
            Ctrl+C during training stops after the current step: with ``out`` it raises KeyboardInterrupt and keeps
            ``out.partial`` for ``resume``; without, it returns the best epoch so far.

    Returns:
        the trained `Classifier`; ``clf.info`` holds the validation metrics and the training record.
    """
    decide = DecideConfig(
        metric=metric,
        top_k=top_k,
        allow_none=allow_none,
        coverage=coverage,
        selective_accuracy=selective_accuracy,
        conformal=conformal,
    )
    options = _Options(
        model=model,
        pretrained=pretrained,
        image_size=image_size,
        decide=decide,
        config=config or TrainConfig(),
        skip_bad=skip_bad_images,
        progress=progress,
    )
    source = _read(data, target=target, image_col=image_col)
    if allow_none is not None and task == "multilabel":
        raise ConfigError(
            "--allow-none with --task multilabel: a multilabel model already answers none when no label passes "
            "its threshold (an empty prediction), so there is nothing to add. Drop --allow-none, or drop --task "
            "multilabel and pass --allow-none one_vs_rest for one sigmoid per class on single-label data."
        )
    the_task = infer_task(
        source.labels,
        kind=task,
        label_sep=label_sep,
        positive=positive,
        binary_head=binary_head,
        one_vs_rest=allow_none == "one_vs_rest",
    )
    decide.check_for(the_task)
    if out is None:
        if resume:
            raise ConfigError("resume=True needs out=: the run directory whose interrupted training to continue.")
        with tempfile.TemporaryDirectory(prefix="labelwise-") as scratch:
            return _fit_in(Path(scratch), source, the_task, options, resume=False)
    with artifact.training_dir(out, resume=resume, is_resumable=lambda d: last_checkpoint(d) is not None) as work:
        clf = _fit_in(work, source, the_task, options, resume=resume)
        if clf.info["training"]["stopped"] == "interrupted":
            # Ctrl+C: keep the checkpoints in out.partial for `resume`, rather than saving half a training as a run.
            raise KeyboardInterrupt
        clf.save_into(work)
    drop_resume_state(Path(out))
    clf.info["run_dir"] = str(out)
    return clf


@dataclass(frozen=True)
class _Options:
    model: str
    pretrained: bool
    image_size: int | None
    decide: DecideConfig
    config: TrainConfig
    skip_bad: bool
    progress: bool


@dataclass(frozen=True)
class _Prepared:
    """The data stage's output: encoded inputs and targets of the readable rows, and the split over them."""

    inputs: Inputs
    values: torch.Tensor
    targets: torch.Tensor
    split: Split
    skipped: list[tuple[str, str]]


def _fit_in(run_dir: Path, source: Source, task: Task, options: _Options, *, resume: bool) -> Classifier:
    data = _prepare(source, task, options)
    _check_enough_to_calibrate(len(data.split.valid), options.decide)
    spec = _model_spec(options.model, data.inputs, data.values, pretrained=options.pretrained)
    check_run_record(run_dir, _run_record(data, task, spec, options.config))
    torch.manual_seed(options.config.seed)  # the initial weights depend on the seed alone
    network = create_network(spec, task)
    balance = _balance(data, task, options.config)
    loss = loss_for(
        task,
        pos_weight=balance.pos_weight,
        class_weight=balance.class_weight,
        label_smoothing=options.config.label_smoothing,
    )
    train, valid = data.split.train, data.split.valid
    result = fit_network(
        network,
        task,
        train=_dataset(data.inputs, data.values[train], data.targets[train], train=True),
        valid=_dataset(data.inputs, data.values[valid], data.targets[valid], train=False),
        loss=loss,
        config=options.config,
        run_dir=run_dir,
        progress_bar=options.progress,
        resume=resume,
    )
    valid_targets = data.targets[valid]
    calibration = fit_temperature(result.valid_logits, valid_targets, task)
    calibrated = calibration.apply(result.valid_logits)
    policy = fit_policy(calibrated, valid_targets, task, options.decide)
    valid_metrics = evaluation_metrics(
        policy.decide(calibrated, task),
        task.probabilities(result.valid_logits),
        targets=valid_targets,
        known=torch.ones(len(valid_targets), dtype=torch.bool),
        task=task,
        policy=policy,
    )
    info = {
        "target": source.target,
        "feature_columns": source.feature_columns,
        "metrics": {"valid": valid_metrics},
        "training": _training_record(result, data, balance, options),
        "versions": _versions(),
    }
    return Classifier(
        task=task,
        network=result.network,
        inputs=data.inputs,
        model_spec=spec,
        calibration=calibration,
        policy=policy,
        info=info,
    )


def _run_record(data: _Prepared, task: Task, spec: ModelSpec, config: TrainConfig) -> dict[str, Any]:
    """What a resumed run must share with the one it continues: the prepared data and what shapes training.

    The time budget, the accelerator, the workers, the guards and the loggers may change between the two.
    """
    digest = hashlib.sha256()
    for tensor in (data.values, data.targets, torch.from_numpy(data.split.train), torch.from_numpy(data.split.valid)):
        digest.update(str((tensor.dtype, tuple(tensor.shape))).encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    digest.update(json.dumps(data.inputs.to_dict(), sort_keys=True, default=str).encode())
    free = {"time_budget", "accelerator", "num_workers", "guards", "loggers"}
    options = {k: v for k, v in config.to_dict().items() if k not in free}
    return {"data": digest.hexdigest(), "options": {**options, "task": task.to_dict(), "model": spec.to_dict()}}


def _check_enough_to_calibrate(num_valid: int, decide: DecideConfig) -> None:
    """Fail before training when the validation split cannot carry the asked-for conformal guarantee."""
    if decide.conformal is not None and num_valid < (need := min_calibration_size(decide.conformal)):
        raise DataError(
            f"--conformal {decide.conformal} needs at least {need} validation items to guarantee that level; the "
            f"validation split holds {num_valid}. Use more data or a larger validation split (an is_valid "
            "column or valid/ folder), or a lower --conformal level."
        )


def _prepare(source: Source, task: Task, options: _Options) -> _Prepared:
    all_targets = task.encode(source.labels)
    split = split_source(source, all_targets, task, seed=options.config.seed)
    inputs = _fit_inputs(source, split, image_size=options.image_size)
    encoded = inputs.encode(source, skip_bad=options.skip_bad)
    kept = torch.from_numpy(encoded.kept)
    return _Prepared(inputs, encoded.values, all_targets[kept], _drop_unreadable(split, encoded.kept), encoded.skipped)


def _balance(data: _Prepared, task: Task, config: TrainConfig) -> Balance:
    if config.balance == "none":
        return Balance(None, None, "no loss weights (balance='none').")
    return infer_balance(data.targets[data.split.train], task)


def _training_record(result: TrainResult, data: _Prepared, balance: Balance, options: _Options) -> dict[str, Any]:
    return {
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stopped": result.stopped_reason,
        "history": result.history,
        "guards": result.guards,
        "balance": balance.message,
        "split": data.split.how,
        "num_train": len(data.split.train),
        "num_valid": len(data.split.valid),
        "skipped_images": [list(item) for item in data.skipped],
        "config": options.config.to_dict(),
        "decide": options.decide.to_dict(),
    }


def _read(data: Any, *, target: str | list[str] | None, image_col: str | None) -> Source:
    if isinstance(data, Source):
        source = data
    elif isinstance(data, (str, os.PathLike)):
        source = load_source(Path(data), target=target, image_col=image_col, for_training=True)
    else:
        import pandas as pd

        if not isinstance(data, pd.DataFrame):
            raise DataError(
                f"cannot train on {type(data).__name__}; expected a path to a CSV/Parquet file or an image folder, "
                "or a pandas DataFrame. For arrays use `labelwise.LabelwiseClassifier().fit(X, y)`."
            )
        source = source_from_frame(data, target=target, image_col=image_col)
    if source.labels is None:
        raise DataError("the data has no labels; pass `target=` (CLI: --target) naming the label column(s).")
    return source


def _fit_inputs(source: Source, split: Split, *, image_size: int | None) -> Inputs:
    if source.kind == "images":
        return ImageInputs.fit(source, split.train, size=image_size)
    return TableInputs.fit(source, split.train)


def _drop_unreadable(split: Split, kept: np.ndarray) -> Split:
    if kept.all():
        return split
    # Positions shift once unreadable rows are removed: map old row index -> new position.
    new_position = np.cumsum(kept) - 1
    return Split(new_position[split.train[kept[split.train]]], new_position[split.valid[kept[split.valid]]], split.how)


def _model_spec(model: str, inputs: Inputs, values: torch.Tensor, *, pretrained: bool) -> ModelSpec:
    if isinstance(inputs, TableInputs):
        name = "mlp" if model == "auto" else model
        return ModelSpec(backbone=name, in_features=inputs.num_features, pretrained=pretrained)
    name = "cnn" if model == "auto" else model
    return ModelSpec(
        backbone=name, in_chans=int(values.shape[1]), image_size=int(values.shape[-1]), pretrained=pretrained
    )


def _dataset(inputs: Inputs, values: torch.Tensor, targets: torch.Tensor, *, train: bool) -> InMemoryDataset:
    transform = image_transforms(inputs.spec, train=train) if isinstance(inputs, ImageInputs) else None
    return InMemoryDataset(values, targets, transform=transform)


def _versions() -> dict[str, str]:
    import lightning
    import timm
    import torchmetrics

    return {
        "labelwise": __version__,
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "torchmetrics": torchmetrics.__version__,
        "timm": timm.__version__,
        "python": platform.python_version(),
    }
