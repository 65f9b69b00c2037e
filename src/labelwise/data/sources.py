"""One entry point for DATA: a table (CSV/Parquet, with features or image paths) or an image folder tree.

`load_source` reads whatever the user pointed at into a `Source`: one row per item in input order, the
labels as the user wrote them (the Task is inferred later, from ``Source.labels``), and any split the data
itself declares (an ``is_valid`` column, or ``valid/`` and ``test/`` folders).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from labelwise.data._columns import format_column_list
from labelwise.data.folders import IMAGE_EXTENSIONS, scan_image_folder
from labelwise.data.tables import is_parquet_folder, read_columns, read_table
from labelwise.errors import DataError, format_examples, format_rows

__all__ = ["IS_VALID_COLUMN", "TARGET_NAMES", "Source", "load_source", "source_from_frame"]

TARGET_NAMES = ("label", "labels", "target", "class", "y")
IS_VALID_COLUMN = "is_valid"
_TRUE = frozenset({"true", "1", "yes", "y", "t", "1.0"})
_FALSE = frozenset({"false", "0", "no", "n", "f", "0.0"})


@dataclass(frozen=True, kw_only=True)
class Source:
    """Items read from DATA, one row per item in input order.

    Args:
        frame: the table as read (for a folder: `scan_image_folder`'s columns ``path``, ``id``, ``label``, ``split``).
        kind: ``"table"`` (features in columns) or ``"images"`` (one image per row).
        root: the folder relative paths are resolved against (the table's folder, or the image folder).
        ids: one id per row: the ``id_col`` value, else the image path as given, else the row number.
        feature_columns: table only: every column except the targets, ``image_col``, ``id_col`` and ``is_valid``
            (a table with an image column may have some: the model reads the images and these columns).
        target: table only: the target column, or the list of target columns; None without targets (and for a
            folder, whose labels are its folder names).
        image_col: table only: the column of image paths (given or detected), else None.
        image_paths: images only: absolute paths, one per row.
        labels: the target column as a Series, several 0/1 target columns as a DataFrame, or None without targets.
        is_valid: ``(N,)`` bool from an ``is_valid`` column or a ``valid/`` folder; None when the data names none.
        is_test: ``(N,)`` bool for a ``test/`` folder's rows; None without one.
    """

    frame: pd.DataFrame
    kind: Literal["table", "images"]
    root: Path
    ids: list[str]
    feature_columns: list[str] = field(default_factory=list)
    target: str | list[str] | None = None
    image_col: str | None = None
    image_paths: list[str] = field(default_factory=list)
    labels: pd.Series | pd.DataFrame | None = None
    is_valid: np.ndarray | None = None
    is_test: np.ndarray | None = None

    @property
    def num_items(self) -> int:
        """Number of rows (items)."""
        return len(self.frame)


def load_source(
    path: str | Path,
    *,
    target: str | Sequence[str] | None = None,
    image_col: str | None = None,
    id_col: str | None = None,
    for_training: bool,
) -> Source:
    """Read DATA: a CSV/Parquet table, a folder of Parquet files, or an image folder tree.

    Args:
        path: the file or folder.
        target: table only: the label column, or several 0/1 columns (multilabel indicator). By default the one
            column named ``label``, ``labels``, ``target``, ``class`` or ``y`` (any case).
        image_col: table only: a column of image paths, relative to the table's folder unless absolute. By default
            the one column whose every value is an image file name; without one the table is a feature table.
        id_col: table only: a column identifying each row in predictions.
        for_training: labels are required (a target column, or two or more class folders). For a folder,
            ``target`` and ``image_col`` are refused when training and ignored otherwise (a model trained from a
            table passes them along when it predicts on a folder).

    Raises:
        DataError: a missing path, an unreadable table or folder, no or an ambiguous target column, an unknown
            column (with the closest names), a bad ``is_valid`` column, or missing image paths.

    Example:
        >>> import tempfile, pathlib
        >>> file = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = file.write_text("x,color,label\\n1.5,red,cat dog\\n2.0,blue,\\n")
        >>> source = load_source(file, for_training=True)
        >>> source.kind, source.feature_columns, source.labels.tolist(), source.ids
        ('table', ['x', 'color'], ['cat dog', ''], ['0', '1'])
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(
            f"no file or folder at {str(path)!r}. Expected a CSV/Parquet table or a folder of images; check the path."
        )
    path = path.resolve()
    if path.is_dir() and not is_parquet_folder(path):
        given = {"target": target, "image_col": image_col, "id_col": id_col}
        return _folder_source(path, given=given, for_training=for_training)
    return _read_table_source(path, target=target, image_col=image_col, id_col=id_col, for_training=for_training)


def _folder_source(path: Path, *, given: Mapping[str, object], for_training: bool) -> Source:
    # Predicting or evaluating, a model trained from a table passes its target and image column along; they
    # describe how that table held the items, and a folder holds them in its tree, so only id_col is refused.
    refused = given if for_training else {"id_col": given["id_col"]}
    options = [f"{name}={value!r}" for name, value in refused.items() if value is not None]
    if options:
        raise DataError(
            f"{', '.join(options)} apply to tables, but {str(path)!r} is an image folder whose labels are its class "
            "folder names and whose ids are its file paths. Drop those options, or pass a CSV that lists the images."
        )
    frame = scan_image_folder(path, for_training=for_training)
    labelled = frame["label"].notna().any()
    return Source(
        frame=frame,
        kind="images",
        root=path,
        ids=frame["id"].tolist(),
        image_paths=frame["path"].tolist(),
        labels=frame["label"] if labelled else None,
        is_valid=_split_mask(frame, "valid"),
        is_test=_split_mask(frame, "test"),
    )


def _split_mask(frame: pd.DataFrame, split: str) -> np.ndarray | None:
    mask = (frame["split"] == split).to_numpy(dtype=bool)
    return mask if mask.any() else None


def source_from_frame(
    frame: pd.DataFrame,
    *,
    target: str | Sequence[str] | None = None,
    image_col: str | None = None,
    id_col: str | None = None,
    root: str | Path | None = None,
    for_training: bool = False,
) -> Source:
    """A `Source` from an in-memory table, with the same rules as `load_source` for a CSV.

    Args:
        frame: one row per item; column names are used as strings.
        target: as in `load_source`.
        image_col: as in `load_source`; relative paths are resolved against ``root``.
        id_col: as in `load_source`.
        root: folder relative image paths start from; by default the current directory.
        for_training: labels are required.

    Example:
        >>> frame = pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "b"]})
        >>> source_from_frame(frame).target
        'y'
    """
    frame = frame.rename(columns=str) if not all(isinstance(c, str) for c in frame.columns) else frame
    columns = list(frame.columns)
    targets = _resolve_targets(target, columns, where="the DataFrame", for_training=for_training)
    base = Path(root).expanduser().resolve() if root is not None else Path.cwd()
    return _table_source(
        frame, targets=targets, image_col=image_col, id_col=id_col, root=base, for_training=for_training
    )


def _read_table_source(
    path: Path, *, target: str | Sequence[str] | None, image_col: str | None, id_col: str | None, for_training: bool
) -> Source:
    targets = _resolve_targets(target, read_columns(path), where=repr(str(path)), for_training=for_training)
    frame = read_table(path, text_columns=targets)
    root = path if path.is_dir() else path.parent
    return _table_source(
        frame, targets=targets, image_col=image_col, id_col=id_col, root=root, for_training=for_training
    )


def _table_source(
    frame: pd.DataFrame,
    *,
    targets: list[str],
    image_col: str | None,
    id_col: str | None,
    root: Path,
    for_training: bool,
) -> Source:
    columns = [str(c) for c in frame.columns]
    for role, name in (("image_col", image_col), ("id_col", id_col)):
        if name is not None:
            _check_known(name, columns, option=role)
    if image_col is None:
        image_col = _detect_image_column(frame, exclude={*targets, id_col})
    used = {*targets, image_col, id_col, IS_VALID_COLUMN}
    features = [c for c in columns if c not in used]  # with an image column too: one model reads them all
    if for_training and image_col is None and not features:
        raise DataError(
            f"the table has no feature columns: its columns {format_column_list(columns)} are all targets, ids or "
            "`is_valid`. Expected at least one feature column, or an image column (--image-col)."
        )
    return Source(
        frame=frame,
        kind="images" if image_col is not None else "table",
        root=root,
        ids=_ids(frame, id_col=id_col, image_col=image_col),
        feature_columns=features,
        target=None if not targets else targets[0] if len(targets) == 1 else targets,
        image_col=image_col,
        image_paths=_image_paths(frame, image_col, root=root) if image_col is not None else [],
        labels=None if not targets else frame[targets[0]] if len(targets) == 1 else frame[targets],
        is_valid=_is_valid(frame) if IS_VALID_COLUMN in frame.columns else None,
    )


def _resolve_targets(
    target: str | Sequence[str] | None, columns: list[str], *, where: str, for_training: bool
) -> list[str]:
    if target is None:
        found = [c for c in columns if c.lower() in TARGET_NAMES]
        if len(found) == 1:
            return found
        if for_training:
            what = f"several possible target columns ({format_examples(found)})" if found else "no target column"
            raise DataError(
                f"{where} has {what}; its columns are {format_column_list(columns)}. Expected exactly one column "
                f"named {', '.join(TARGET_NAMES)}; pass the label column with --target (target=...)."
            )
        return []  # prediction: an ambiguous or absent label column just means "no labels"
    names = [target] if isinstance(target, str) else list(target)
    if not names:
        raise DataError("target=[] names no column; pass the label column (or several 0/1 columns) with --target.")
    for name in names:
        _check_known(name, columns, option="target")
    if len(set(names)) != len(names):
        raise DataError(f"target={names!r} repeats a column; list each target column once.")
    return names


def _check_known(name: str, columns: list[str], *, option: str) -> None:
    if name in columns:
        return
    close = difflib.get_close_matches(name, columns, n=3, cutoff=0.5)
    hint = f" Did you mean {format_examples(close)}?" if close else ""
    flag = "--" + option.replace("_", "-")
    raise DataError(
        f"{option}={name!r} is not a column of the table; it has {format_column_list(columns)}.{hint} "
        f"Pass a column name as written in the header with {flag}."
    )


def _detect_image_column(frame: pd.DataFrame, *, exclude: set[str | None]) -> str | None:
    """The one text column whose every value ends in an image extension; None if there is none."""
    found = []
    for name in frame.columns:
        column = frame[name]
        if name in exclude or not isinstance(column.dtype, pd.StringDtype | np.dtypes.ObjectDType):
            continue
        suffixes = column.dropna().astype("str").str.lower().str.extract(r"(\.[a-z0-9]+)\s*$")[0]
        if len(suffixes) and suffixes.isin(IMAGE_EXTENSIONS).all():
            found.append(str(name))
    if len(found) > 1:
        raise DataError(
            f"columns {format_examples(found)} all hold image file names. Expected one image column; say which "
            "one with --image-col (image_col=...)."
        )
    return found[0] if found else None


def _image_paths(frame: pd.DataFrame, image_col: str, *, root: Path) -> list[str]:
    column = frame[image_col]
    missing = np.flatnonzero(column.isna().to_numpy() | (column.astype("str").str.strip() == "").to_numpy(dtype=bool))
    if missing.size:
        raise DataError(
            f"image column {image_col!r} is empty in {format_rows(missing.tolist())}. Expected an image path in every "
            "row; fill in or drop those rows."
        )
    return [str(root / Path(str(value).strip()).expanduser()) for value in column]


def _ids(frame: pd.DataFrame, *, id_col: str | None, image_col: str | None) -> list[str]:
    if id_col is not None:
        return [str(value) for value in frame[id_col]]
    if image_col is not None:
        return [str(value).strip() for value in frame[image_col]]
    return [str(i) for i in range(len(frame))]


def _is_valid(frame: pd.DataFrame) -> np.ndarray:
    """The ``is_valid`` column as bool: booleans, 0/1, or true/false/yes/no text."""
    column = frame[IS_VALID_COLUMN]
    if pd.api.types.is_bool_dtype(column.dtype) and not column.isna().any():
        return np.asarray(column.to_numpy(dtype=bool))
    text = column.astype("str").str.strip().str.lower()
    truthy, falsy = text.isin(_TRUE).to_numpy(), text.isin(_FALSE).to_numpy()
    bad = np.flatnonzero(~(truthy | falsy))
    if bad.size:
        raise DataError(
            f"column {IS_VALID_COLUMN!r} holds {format_examples(column.iloc[bad].drop_duplicates().tolist())} in "
            f"{format_rows(bad.tolist())}. Expected true/false (or 1/0) in every row; fix those cells, or rename the "
            "column if it is a feature."
        )
    return np.asarray(truthy, dtype=bool)
