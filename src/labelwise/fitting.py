"""`labelwise.fit`: labels in, calibrated classifier out.

The pipeline, one named stage each: read the source -> infer the Task -> split -> fit the inputs
-> build the network -> train -> calibrate on validation -> tune the decision rule -> measure.
Data flows one way; each stage takes plain values and returns plain values.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from labelwise import artifact
from labelwise._class_file import count_targets
from labelwise.calibrate import fit_temperature
from labelwise.classifier import Classifier
from labelwise.data.sources import Source
from labelwise.data.splits import Split, split_source
from labelwise.data.stream_prep import StreamedData, StreamOption, prepare_stream, should_stream
from labelwise.decide.config import DecideConfig
from labelwise.decide.policy import fit_policy
from labelwise.errors import ConfigError
from labelwise.evaluation import evaluation_metrics
from labelwise.fit_stages import (
    FitOptions,
    Prepared,
    check_enough_to_calibrate,
    finish_ranked,
    library_versions,
    read_source,
    run_record,
    training_record,
)
from labelwise.inputs import Inputs, drop_unreadable
from labelwise.losses import Balance, infer_balance
from labelwise.models import ModelSpec, create_network
from labelwise.task import BinaryHead, Task, infer_task
from labelwise.train import TrainConfig, TrainResult, fit_network
from labelwise.train.checkpoints import check_run_record, drop_resume_state, last_checkpoint
from labelwise.train.distributed import check_scale_out, is_global_zero
from labelwise.train.head_loss import build_loss

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
    stream: StreamOption = "auto",
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
        stream: read a Parquet file or folder in record batches instead of into memory (`labelwise.data.streaming`):
            ``auto`` when its uncompressed size exceeds a quarter of the available memory, ``on``, or ``off``.
            CSV, DataFrames and images never stream; ``on`` refuses them, and ``resume``.

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
    options = FitOptions(
        model=model,
        pretrained=pretrained,
        image_size=image_size,
        decide=decide,
        config=config or TrainConfig(),
        skip_bad=skip_bad_images,
        progress=progress,
    )
    check_scale_out(options.config)  # devices, strategy, precision, nodes: refused before any work
    streamed = _streamed(data, stream=stream, target=target, image_col=image_col, task=task, label_sep=label_sep,
                         positive=positive, binary_head=binary_head, allow_none=allow_none, options=options,
                         resume=resume)  # fmt: skip
    source = streamed or read_source(data, target=target, image_col=image_col)
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
    if out is not None and not is_global_zero():
        # A rank > 0 (Lightning re-ran the command, or torchrun / srun started it) trains alongside rank 0 and
        # writes nothing: rank 0 saves the run. It reads RUN.partial only to resume from the same checkpoint.
        return _fit_in(artifact.partial_dir(out), source, the_task, options, resume=resume)
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


def _fit_in(
    run_dir: Path, source: Source | StreamedData, task: Task, options: FitOptions, *, resume: bool
) -> Classifier:
    if isinstance(source, StreamedData):
        return _fit_streamed(run_dir, source, options)
    data = _prepare(source, task, options)
    check_enough_to_calibrate(len(data.split.valid), options.decide)
    spec = data.inputs.model_spec(options.model, data.values, pretrained=options.pretrained)
    if is_global_zero():
        check_run_record(run_dir, run_record(data, task, spec, options.config))
    torch.manual_seed(options.config.seed)  # the initial weights depend on the seed alone
    network = create_network(spec, task)
    balance = _balance(data, task, options.config)
    train, valid = data.split.train, data.split.valid
    loss, head = build_loss(
        task,
        config=options.config,
        balance=balance,
        num_features=network.num_features,
        train_targets=data.targets[train],
        decide=options.decide,
    )
    result = fit_network(
        network,
        task,
        train=data.inputs.dataset(data.values[train], data.targets[train], train=True),
        valid=data.inputs.dataset(data.values[valid], data.targets[valid], train=False),
        loss=loss,
        config=options.config,
        run_dir=run_dir,
        progress_bar=options.progress,
        resume=resume,
    )
    info = {
        "target": source.target,
        "feature_columns": source.feature_columns,
        "training": training_record(result, data, balance, options),
        "train_counts": count_targets(data.targets[train], task),  # evaluate's head/torso/tail segments
        "head": head,
        "versions": library_versions(),
    }
    return _finish(
        result, task=task, inputs=data.inputs, spec=spec, valid_targets=data.targets[valid], options=options, info=info
    )


def _finish(
    result: TrainResult,
    *,
    task: Task,
    inputs: Inputs,
    spec: ModelSpec,
    valid_targets: torch.Tensor,
    options: FitOptions,
    info: dict[str, Any],
) -> Classifier:
    """Calibrate, fit the decision policy and measure it on the validation rows; assemble the Classifier.

    The same steps whichever way the training rows were fed (in memory or streamed); ``info`` gains the metrics.
    """
    if result.valid_logits is None:
        return finish_ranked(
            result, task=task, inputs=inputs, spec=spec, valid_targets=valid_targets, options=options, info=info
        )
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
    return Classifier(
        task=task,
        network=result.network,
        inputs=inputs,
        model_spec=spec,
        calibration=calibration,
        policy=policy,
        info={**info, "metrics": {"valid": valid_metrics}},
    )


def _streamed(
    data: Any,
    *,
    stream: StreamOption,
    target: str | list[str] | None,
    image_col: str | None,
    options: FitOptions,
    resume: bool,
    allow_none: str | None,
    **task_options: Any,  # infer_task's label options, passed through
) -> StreamedData | None:
    """The streamed run's data when ``stream`` (and the data) call for streaming; else None."""
    if not should_stream(data, stream=stream, target=target, image_col=image_col):
        return None
    if resume:
        raise ConfigError(
            "--resume with a streamed Parquet run: a stream's position inside an epoch is not checkpointed, so it "
            "cannot continue where it stopped. Drop --resume to train afresh, or pass --stream off to read the data "
            "into memory."
        )
    from labelwise.train.distributed import world_size

    config = options.config
    return prepare_stream(data, target=target, one_vs_rest=allow_none == "one_vs_rest", seed=config.seed,
                          batch_size=config.resolve_batch_size, num_workers=config.num_workers,
                          world_size=world_size(config), **task_options)  # fmt: skip


def _fit_streamed(run_dir: Path, data: StreamedData, options: FitOptions) -> Classifier:
    """`_fit_in` for a `ParquetStream`: the same network, loss, training and `_finish`; validation in memory."""
    task, config = data.task, options.config
    check_enough_to_calibrate(len(data.valid_targets), options.decide)
    spec = data.inputs.model_spec(options.model, data.valid_values, pretrained=options.pretrained)
    torch.manual_seed(config.seed)  # the initial weights depend on the seed alone
    network = create_network(spec, task)
    balance = Balance(None, None, "no loss weights (balance='none').")
    if config.balance != "none":
        balance = infer_balance(data.label_targets, task)  # the table's class frequencies, from the target column
    loss, head = build_loss(
        task,
        config=config,
        balance=balance,
        num_features=network.num_features,
        train_targets=data.label_targets,
        decide=options.decide,
    )
    valid = data.inputs.dataset(data.valid_values, data.valid_targets, train=False)
    result = fit_network(network, task, train=data.train, valid=valid, loss=loss, config=config, run_dir=run_dir,
                         progress_bar=options.progress)  # fmt: skip
    record = {
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stopped": result.stopped_reason,
        "history": result.history,
        "guards": result.guards,
        "balance": balance.message,
        "split": data.how,
        "num_train": data.train.num_train,
        "num_valid": len(data.valid_targets),
        "streamed": {"preprocessing_sample_rows": data.num_sampled, "files": len(data.train.scan.files)},
        "skipped_images": [],
        "config": config.to_dict(),
        "decide": options.decide.to_dict(),
    }
    info = {
        "target": data.target,
        "feature_columns": data.feature_columns,
        "training": record,
        # The target column's summary (class shares of all rows, validation included): what the segments need.
        "train_counts": count_targets(data.label_targets, task),
        "head": head,
        "versions": library_versions(),
    }
    return _finish(
        result, task=task, inputs=data.inputs, spec=spec, valid_targets=data.valid_targets, options=options, info=info
    )


def _prepare(source: Source, task: Task, options: FitOptions) -> Prepared:
    all_targets = task.encode(source.labels)
    split = split_source(source, all_targets, task, seed=options.config.seed)
    inputs = Inputs.fit(source, split.train, image_size=options.image_size)
    encoded = inputs.encode(source, skip_bad=options.skip_bad)
    kept = torch.from_numpy(encoded.kept)
    return Prepared(inputs, encoded.values, all_targets[kept], drop_unreadable(split, encoded.kept), encoded.skipped)


def _balance(data: Prepared, task: Task, config: TrainConfig) -> Balance:
    if config.balance == "none":
        return Balance(None, None, "no loss weights (balance='none').")
    return infer_balance(data.targets[data.split.train], task)
