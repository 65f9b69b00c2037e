"""Everything a streamed training run needs before its first step, read without holding the table in memory.

`should_stream` decides whether ``labelwise.fit`` streams. `prepare_stream` then reads the Parquet data in four
bounded passes: the footers (`scan_parquet`); the target column alone, whose distinct values and counts give the
Task; a sample of training rows, on which the preprocessing statistics are fitted; and the validation rows, read into
memory once as tensors. The statistics come from a sample, not a streaming pass: medians, and the most frequent
categories of a column, have no exact one-pass form in bounded memory, and `TablePreprocessor` is the very code the
in-memory path uses, so both paths store the same kind of preprocessing. `SAMPLE_ROWS` training rows drawn from row
groups in a seeded random order pin a mean or median down to about 0.3% of a standard deviation.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from labelwise.data.parquet_scan import PARQUET_SUFFIXES, ParquetScan, read_unit, scan_parquet
from labelwise.data.sources import IS_VALID_COLUMN, _resolve_targets
from labelwise.data.stream_rows import ValidRule, fill_text
from labelwise.data.streaming import ParquetStream
from labelwise.data.tables import TablePreprocessor, has_parquet_magic, is_parquet_folder
from labelwise.errors import ConfigError, DataError
from labelwise.inputs import Inputs, Values
from labelwise.inputs.columns import FEATURES
from labelwise.task import BinaryHead, Task, infer_task

__all__ = ["MEMORY_FRACTION", "SAMPLE_ROWS", "StreamOption", "StreamedData", "prepare_stream", "should_stream"]

StreamOption = Literal["auto", "on", "off"]
SAMPLE_ROWS = 100_000
# `stream="auto"` streams when the table's uncompressed size exceeds this share of the available memory: reading it
# whole holds the Arrow table, the DataFrame and the float tensors at once, three to four times that size.
MEMORY_FRACTION = 0.25
# Rows of the label summary `infer_task` sees: every distinct value, at frequencies in proportion to the table's.
_SUMMARY_ROWS = 100_000


def _available_memory() -> int | None:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not every platform names these
        return None


def should_stream(data: Any, *, stream: StreamOption, target: str | list[str] | None, image_col: str | None) -> bool:
    """Whether ``labelwise.fit`` streams ``data``: ``on``, ``off``, or ``auto`` (large Parquet data only).

    ``auto`` streams a Parquet file or folder, with one target column and no image column, whose uncompressed size
    (from the footers) exceeds `MEMORY_FRACTION` of the available memory.

    Raises:
        ConfigError: ``stream="on"`` for data that cannot be streamed (a CSV file, a DataFrame, images, several
            target columns), or an unknown ``stream`` value.

    Example:
        >>> should_stream("table.csv", stream="off", target=None, image_col=None)
        False
    """
    if stream not in ("auto", "on", "off"):
        raise ConfigError(f"stream={stream!r}; expected 'auto', 'on' or 'off'.")
    if stream == "off":
        return False
    refusal = _why_not_streamable(data, target=target, image_col=image_col)
    if refusal is not None:
        if stream == "on":
            raise ConfigError(
                f"--stream on (stream='on') reads Parquet record batches, but {refusal}. Expected a Parquet file or "
                "folder of a feature table with one target column; convert the data to Parquet (e.g. "
                "`pandas.read_csv(path).to_parquet('table.parquet')`), or drop --stream on."
            )
        return False
    if stream == "on":
        return True
    available = _available_memory()
    return available is not None and scan_parquet(data).uncompressed_bytes > MEMORY_FRACTION * available


def _why_not_streamable(data: Any, *, target: str | list[str] | None, image_col: str | None) -> str | None:
    if not isinstance(data, str | os.PathLike):
        return f"the data is a {type(data).__name__} already in memory"
    path = Path(data).expanduser()
    if not path.exists():
        return None if path.suffix.lower() in PARQUET_SUFFIXES else f"there is no file or folder at {str(path)!r}"
    if path.is_file() and path.suffix.lower() not in PARQUET_SUFFIXES and not has_parquet_magic(path):
        return f"{str(path)!r} is not Parquet (a CSV has no row groups to stream)"
    if path.is_dir() and not is_parquet_folder(path):
        return f"{str(path)!r} is a folder without Parquet files (an image folder is read into memory)"
    if isinstance(target, list) and len(target) > 1:
        return f"target={target!r} names several 0/1 columns (streaming takes one target column)"
    if image_col is not None:
        return f"image_col={image_col!r} makes it an image table (images are decoded into memory)"
    return None


@dataclass(frozen=True, eq=False)
class StreamedData:
    """A streamed run's data: the Task, the fitted inputs, the training stream and the in-memory validation rows.

    Attributes:
        task: inferred from the target column alone.
        inputs: the preprocessing fitted on `SAMPLE_ROWS` training rows.
        train: the training batches.
        valid_values: the validation rows' features, ``(N_valid, num_features)`` float32 in one group.
        valid_targets: ``task.encode`` of the validation labels.
        labels: every distinct label at the table's class frequencies (at most ~100,000 rows; the Task's input).
        label_targets: ``task.encode(labels)`` (class weights and the loss choice read them).
        target: the target column.
        feature_columns: the feature columns, in the preprocessing's order.
        how: the validation rule in words.
        num_sampled: rows the preprocessing was fitted on.
    """

    task: Task
    inputs: Inputs
    train: ParquetStream
    valid_values: Values
    valid_targets: torch.Tensor
    labels: pd.Series
    label_targets: torch.Tensor
    target: str
    feature_columns: list[str]
    how: str
    num_sampled: int


def prepare_stream(
    path: str | Path,
    *,
    target: str | list[str] | None,
    task: str = "auto",
    label_sep: str | None = None,
    positive: Any = None,
    binary_head: BinaryHead = "one",
    one_vs_rest: bool = False,
    column_kinds: Mapping[str, str] | None = None,
    batch_size: Callable[[int], int],
    seed: int = 0,
    num_workers: int = 0,
    world_size: int | None = None,
) -> StreamedData:
    """Scan, infer the Task, fit the preprocessing on a sample and read the validation rows of a Parquet table.

    Args:
        path: a Parquet file or folder.
        target: the target column; by default the one named label, labels, target, class or y.
        task: ``auto`` or a kind to force, as in `infer_task`.
        label_sep: as in `infer_task`.
        positive: as in `infer_task`.
        binary_head: as in `infer_task`.
        column_kinds: as `TablePreprocessor.fit`'s ``kinds``; inferred kinds are read from the sample.
        one_vs_rest: as in `infer_task`.
        batch_size: rows per optimizer step of the training stream, from the number of training rows (e.g.
            ``TrainConfig.resolve_batch_size``).
        seed: seeds the validation hash, the sample and the stream's order.
        num_workers: DataLoader workers reading the stream.
        world_size: processes training in all; None: as `ParquetStream` finds it.

    Raises:
        DataError: files that disagree on columns or types, no target or feature column, no validation or fewer
            than two training rows, labels `infer_task` refuses.
    """
    scan = scan_parquet(path)
    columns = list(scan.columns)
    name = _resolve_targets(target, columns, where=repr(str(path)), for_training=True)[0]
    features = _feature_columns(columns, target=name)
    summary = _label_summary(scan, name)
    the_task = infer_task(
        summary, kind=task, label_sep=label_sep, positive=positive, binary_head=binary_head, one_vs_rest=one_vs_rest
    )
    rule = ValidRule.create(scan, seed=seed)
    sample = _training_sample(scan, rule, columns=features, seed=seed)
    preprocessor = TablePreprocessor.fit(sample, columns=features, kinds=column_kinds)
    valid_features, valid_targets = _validation_rows(scan, rule, preprocessor, the_task, target=name)
    size = batch_size(int(rule.train_per_unit.sum()))
    group = max(1, min(64, 8192 // size))  # as `labelwise.train.trainer._group_size` for in-memory tables
    stream = ParquetStream(scan, task=the_task, preprocessor=preprocessor, target=name, valid_rule=rule,
                           batch_size=size, group=group, seed=seed, num_workers=num_workers,
                           world_size=world_size)  # fmt: skip
    if stream.num_train < 2:
        raise DataError(f"{str(path)!r} holds {stream.num_train} training rows; training needs at least 2.")
    valid_values = Values({FEATURES: valid_features})
    return StreamedData(the_task, Inputs(preprocessor.specs), stream, valid_values, valid_targets, summary,
                        the_task.encode(summary), name, features, rule.how, len(sample))  # fmt: skip


def _feature_columns(columns: list[str], *, target: str) -> list[str]:
    features = [c for c in columns if c not in (target, IS_VALID_COLUMN)]
    if not features:
        raise DataError(
            f"the table has no feature columns: its columns {columns!r} are all targets or `is_valid`. Expected at "
            "least one feature column."
        )
    return features


def _label_summary(scan: ParquetScan, target: str) -> pd.Series:
    """Every distinct label, repeated in proportion to its count (at least once), read from the target column alone.

    `infer_task` needs the distinct values and which class is rarer (the default positive), not every row.
    """
    counts: pd.Series | None = None
    for file in scan.files:
        column = pq.read_table(file.path, columns=[target]).column(target)
        found = pc.value_counts(column).to_pandas()  # a Series of {"values", "counts"} dicts
        part = pd.Series([d["counts"] for d in found], index=pd.Index([d["values"] for d in found], dtype=object))
        counts = part if counts is None else counts.add(part, fill_value=0)
    if counts is None:  # a scan holds at least one file
        raise DataError(f"{str(scan.root)!r} holds no Parquet files.")
    if counts.index.hasnans and counts.index.inferred_type in ("string", "mixed"):
        counts = counts.groupby(counts.index.fillna(""), dropna=False).sum()
    total = int(counts.sum())
    scale = min(1.0, _SUMMARY_ROWS / max(total, 1))
    repeats = np.maximum(1, np.round(counts.to_numpy(dtype=np.float64) * scale)).astype(np.int64)
    values = np.repeat(counts.index.to_numpy(dtype=object), repeats)
    order = np.random.default_rng(0).permutation(len(values))  # mixed, as a table's rows would be
    return pd.Series(values[order], name=target).infer_objects()


def _training_sample(scan: ParquetScan, rule: ValidRule, *, columns: list[str], seed: int) -> pd.DataFrame:
    """Up to `SAMPLE_ROWS` training rows from row groups in a seeded random order (spread over the table)."""
    units = scan.units()
    frames, count = [], 0
    for index in np.random.default_rng([seed, 7]).permutation(len(units)).tolist():
        for frame in read_unit(scan, units[index], columns=[*columns, *rule.columns]):
            train = frame[~rule.is_valid(frame)]
            frames.append(train[columns])
            count += len(train)
            if count >= SAMPLE_ROWS:
                return pd.concat(frames).iloc[:SAMPLE_ROWS]
    return pd.concat(frames)


def _validation_rows(
    scan: ParquetScan, rule: ValidRule, preprocessor: TablePreprocessor, task: Task, *, target: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The kept validation rows, in row order, encoded (one pass over the table, only those rows transformed)."""
    values, targets = [], []
    columns = list(dict.fromkeys([*map(str, preprocessor.columns), target, *rule.columns]))
    for unit in scan.units():
        for frame in read_unit(scan, unit, columns=columns):
            kept = fill_text(frame[rule.is_kept(frame)], target)
            if len(kept):
                values.append(preprocessor.transform(kept))
                targets.append(task.encode(kept[target]))
    if not values:
        raise DataError(
            f"{str(scan.root)!r} leaves no validation rows ({rule.how}). Expected some: mark rows in an "
            f"{IS_VALID_COLUMN!r} column, or use a larger table."
        )
    return torch.cat(values), torch.cat(targets)
