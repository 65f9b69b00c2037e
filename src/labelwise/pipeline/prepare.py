"""The prepare stage: any data source becomes one `Prepared` value, whether it is read into memory or streamed.

In memory: read the source -> infer the Task -> encode the labels -> split -> fit the inputs on the training rows
-> encode every row (unreadable images dropped or refused). Streamed (`labelwise.data.stream_prep`): the Task from
the target column alone, the inputs fitted on a sample of training rows, the validation rows read into memory and a
`ParquetStream` of the training rows. Either way the later stages see the same fields.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from labelwise.data.sources import Source, load_source, source_from_frame
from labelwise.data.splits import Split, assign_folds, split_source
from labelwise.data.stream_prep import StreamedData, prepare_stream, should_stream
from labelwise.decide.conformal import min_calibration_size
from labelwise.errors import ConfigError, DataError
from labelwise.inputs import Encoded, Inputs, Values, drop_unreadable
from labelwise.inputs.columns import ImageColumn
from labelwise.models import ModelSpec
from labelwise.models.hf_text import text_model_for
from labelwise.models.image_recipe import ImageRecipe, image_recipe
from labelwise.models.text import sized_for
from labelwise.options import FitOptions
from labelwise.pipeline.folds import resolve_folds, row_counts
from labelwise.task import Task, infer_task
from labelwise.train.distributed import world_size

__all__ = ["Prepared", "prepare", "read_source"]


@dataclass(frozen=True, eq=False)
class Prepared:
    """The data as training reads it.

    Attributes:
        task: the Task, inferred once.
        inputs: the inputs fitted on training rows.
        spec: the network's spec, from the model option and the encoded inputs.
        train: the training rows (in memory, or a `labelwise.data.streaming.ParquetStream`).
        valid: the validation rows, in memory (`Inputs.dataset`).
        train_targets: the training targets class balance, the loss choice and the per-class counts read
            (streamed: the target column's labels at its class frequencies).
        valid_targets: `Task.encode` of the validation labels, in the order of ``valid``.
        target: the label column(s) as resolved (None for a folder).
        feature_columns: the feature columns, in order.
        record: how the rows were split and read: ``split``, ``num_train``, ``num_valid``, ``skipped_images``, and
            ``streamed`` for a stream.
        fingerprint: SHA-256 of the encoded rows, their split and the inputs, which a resumed run must share;
            None for a stream, which cannot resume.
        folds: cross-fitting (`labelwise.pipeline.folds`): the fold of each row, and then ``train`` and ``valid``
            hold the same rows (``valid`` read without augmentation), each row predicted by the member that did not
            train on it; None: one network, trained on ``train`` and early-stopped on ``valid``.
        valid_rows: the row of the input table (0-based) of each validation item, in order.
        recipe: the batch size and epochs that the image recipe (`labelwise.models.image_recipe`) chose for a run
            of images alone read by the compact CNN; training uses them where the options leave them to auto. None
            for every other run.
    """

    task: Task
    inputs: Inputs
    spec: ModelSpec
    train: Dataset[Any]
    valid: Dataset[Any]
    train_targets: torch.Tensor
    valid_targets: torch.Tensor
    target: Any
    feature_columns: tuple[str, ...]
    record: Mapping[str, Any]
    fingerprint: str | None
    folds: np.ndarray | None = None
    valid_rows: np.ndarray | None = None
    recipe: ImageRecipe | None = None


def prepare(data: Any, options: FitOptions, *, resume: bool = False) -> Prepared:
    """Read ``data`` as `options` say and prepare it for training; see the module docstring.

    Raises:
        ConfigError: ``resume`` of a streamed run; the decision options need more validation rows than there are.
        DataError, LabelError: data or labels that cannot be used as given.
    """
    given = options.data
    if should_stream(data, stream=given.stream, target=given.target_arg, image_col=given.image_col):
        if options.train.folds not in ("auto", 1):
            raise ConfigError(
                f"--folds {options.train.folds} with a streamed Parquet source: cross-fitting trains every row in "
                "several models and predicts each out of fold, which needs the rows in memory. Pass --stream off, "
                "or drop --folds."
            )
        if resume:
            raise ConfigError(
                "--resume with a streamed Parquet run: a stream's position inside an epoch is not checkpointed, so "
                "it cannot continue where it stopped. Drop --resume to train afresh, or pass --stream off to read "
                "the data into memory."
            )
        prepared = _prepare_streamed(data, options)
    else:
        prepared = _prepare_in_memory(read_source(data, target=given.target_arg, image_col=given.image_col), options)
    _check_enough_to_calibrate(len(prepared.valid_targets), options)
    return prepared


def read_source(data: Any, *, target: str | list[str] | None, image_col: str | None) -> Source:
    """A labelled `Source` from a path, a DataFrame or a `Source`.

    Raises:
        DataError: another type of data, or data without labels.
    """
    if isinstance(data, Source):
        source = data
    elif isinstance(data, str | os.PathLike):
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


def _infer(labels: Any, options: FitOptions) -> Task:
    given, decide = options.data, options.decide
    if decide.allow_none is not None and given.task == "multilabel":
        raise ConfigError(
            "--allow-none with --task multilabel: a multilabel model already answers none when no label passes "
            "its threshold (an empty prediction), so there is nothing to add. Drop --allow-none, or drop --task "
            "multilabel and pass --allow-none one_vs_rest for one sigmoid per class on single-label data."
        )
    task = infer_task(
        labels,
        kind=given.task,
        label_sep=given.label_sep,
        positive=given.positive,
        binary_head=given.binary_head,
        one_vs_rest=decide.allow_none == "one_vs_rest",
    )
    decide.check_for(task)
    return task


def _prepare_in_memory(source: Source, options: FitOptions) -> Prepared:
    task = _infer(source.labels, options)
    all_targets = task.encode(source.labels)
    split = split_source(source, all_targets, task, seed=options.train.seed)
    inputs = _fit_inputs(source, split.train, options)
    folds = resolve_folds(
        options,
        inputs=inputs,
        task=task,
        class_counts=row_counts(all_targets[torch.from_numpy(split.train)].numpy(), task),
        num_rows=len(split.train) + len(split.valid),
        given_valid=source.is_valid is not None and bool(source.is_valid.any()),
    )
    fold_of: np.ndarray | None = None
    if folds.count > 1:
        # Every row is trained on and predicted out of fold, so the inputs are fitted on all of them (their
        # statistics read no labels).
        rows = np.sort(np.concatenate([split.train, split.valid]))
        fold_of = assign_folds(all_targets[torch.from_numpy(rows)], task, folds=folds.count, seed=options.train.seed)
        split = Split(rows, rows, f"{folds.count}-fold cross-fitting ({folds.why}; seed {options.train.seed})")
        inputs = _fit_inputs(source, rows, options)
    encoded = inputs.encode(source, skip_bad=options.data.skip_bad_images)
    targets = all_targets[torch.from_numpy(encoded.kept)]
    if fold_of is not None and not encoded.kept.all():
        fold_of = fold_of[encoded.kept[split.train]]
    split = drop_unreadable(split, encoded.kept)
    return _prepared(source, task, inputs, encoded, targets, split, options, folds=fold_of)


def _fit_inputs(source: Source, rows: np.ndarray, options: FitOptions) -> Inputs:
    return Inputs.fit(
        source,
        rows,
        image_size=options.model.image_size,
        column_kinds=options.data.column_kinds,
        text_cols=options.data.text_cols,
        text_model=text_model_for(options.model.model, pretrained=options.model.pretrained),
    )


def _prepared(
    source: Source,
    task: Task,
    inputs: Inputs,
    encoded: Encoded,
    targets: torch.Tensor,
    split: Split,
    options: FitOptions,
    *,
    folds: np.ndarray | None,
) -> Prepared:
    train, valid = split.train, split.valid
    spec = sized_for(inputs.model_spec(options.model.model, encoded.values, pretrained=options.model.pretrained), task)
    recipe = _image_recipe(inputs, spec, num_train=len(train), options=options)
    if recipe is not None:
        inputs = inputs.with_augment(recipe.augment)
    return Prepared(
        task=task,
        inputs=inputs,
        spec=spec,
        train=inputs.dataset(encoded.values[train], targets[train], train=True),
        valid=inputs.dataset(encoded.values[valid], targets[valid], train=False),
        train_targets=targets[train],
        valid_targets=targets[valid],
        target=source.target,
        feature_columns=tuple(source.feature_columns),
        record={
            "split": split.how,
            "num_train": len(train),
            "num_valid": len(valid),
            "skipped_images": [list(item) for item in encoded.skipped],
            **({"image_recipe": recipe.to_dict()} if recipe is not None else {}),
        },
        fingerprint=_fingerprint(inputs, encoded.values, targets, split),
        folds=folds,
        valid_rows=np.flatnonzero(encoded.kept)[valid],
        recipe=recipe,
    )


def _image_recipe(inputs: Inputs, spec: ModelSpec, *, num_train: int, options: FitOptions) -> ImageRecipe | None:
    """The image recipe of a run of images alone read by the compact CNN (whose spec the recipe's rule shaped), with
    the batch size and epochs the options name."""
    groups = inputs.groups
    if len(groups) != 1 or not isinstance(groups[0], ImageColumn) or spec.backbone != "cnn":
        return None
    config = options.train
    return image_recipe(
        image_size=groups[0].spec.size, num_train=num_train, batch_size=config.batch_size, epochs=config.epochs
    )


def _prepare_streamed(path: Any, options: FitOptions) -> Prepared:
    given, config = options.data, options.train
    if given.text_cols:
        raise ConfigError(
            f"text_cols={list(given.text_cols)!r} with a streamed table: labelwise reads free text from tables in "
            "memory only (a text column's vocabulary is fitted on every training row). Pass stream='off' "
            "(--stream off), or leave the text columns out."
        )
    data: StreamedData = prepare_stream(
        path,
        target=given.target_arg,
        task=given.task,
        label_sep=given.label_sep,
        positive=given.positive,
        binary_head=given.binary_head,
        one_vs_rest=options.decide.allow_none == "one_vs_rest",
        column_kinds=given.column_kinds,
        seed=config.seed,
        batch_size=config.resolve_batch_size,
        num_workers=config.num_workers,
        world_size=world_size(config),
    )
    options.decide.check_for(data.task)
    return Prepared(
        task=data.task,
        inputs=data.inputs,
        spec=data.inputs.model_spec(options.model.model, data.valid_values, pretrained=options.model.pretrained),
        train=data.train,
        valid=data.inputs.dataset(data.valid_values, data.valid_targets, train=False),
        train_targets=data.label_targets,
        valid_targets=data.valid_targets,
        target=data.target,
        feature_columns=tuple(data.feature_columns),
        record={
            "split": data.how,
            "num_train": data.train.num_train,
            "num_valid": len(data.valid_targets),
            "skipped_images": [],
            "streamed": {"preprocessing_sample_rows": data.num_sampled, "files": len(data.train.scan.files)},
        },
        fingerprint=None,
    )


def _fingerprint(inputs: Inputs, values: Values, targets: torch.Tensor, split: Split) -> str:
    digest = hashlib.sha256()
    for tensor in (*values.parts.values(), targets, torch.from_numpy(split.train), torch.from_numpy(split.valid)):
        digest.update(str((tensor.dtype, tuple(tensor.shape))).encode())
        digest.update(memoryview(tensor.contiguous().numpy()).cast("B"))  # type: ignore[arg-type]  # no copy: GBs
    digest.update(json.dumps(inputs.to_dict(), sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _check_enough_to_calibrate(num_valid: int, options: FitOptions) -> None:
    """Fail before training when the validation split cannot carry the asked-for conformal guarantee."""
    level = options.decide.conformal
    if level is not None and num_valid < (need := min_calibration_size(level)):
        raise DataError(
            f"--conformal {level} needs at least {need} validation items to guarantee that level; the "
            f"validation split holds {num_valid}. Use more data or a larger validation split (an is_valid "
            "column or valid/ folder), or a lower --conformal level."
        )
