"""Find the images of a folder tree and read their labels (and splits) from the folder names.

Three layouts are understood::

    ROOT/<class>/**/*.png                    labelled, no split
    ROOT/{train,valid,test}/<class>/**/*.png labelled, split given (``val``/``validation`` mean ``valid``;
                                             a split folder may also hold images directly: unlabelled)
    ROOT/*.png                               unlabelled (for prediction)
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from labelwise.errors import DataError, format_examples

__all__ = ["IMAGE_EXTENSIONS", "SPLIT_NAMES", "scan_image_folder"]

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
SPLIT_NAMES = {"train": "train", "valid": "valid", "val": "valid", "validation": "valid", "test": "test"}
_COLUMNS = ["path", "id", "label", "split"]


def scan_image_folder(root: str | Path, *, for_training: bool = False) -> pd.DataFrame:
    """List the images under ``root`` with their labels and splits, in a stable (sorted) order.

    Hidden files and folders (``.name``, ``__MACOSX``) and files that are not images are skipped; a class folder
    without images is not a class.

    Args:
        root: the folder.
        for_training: require labels: at least two class folders (in ``train/`` for a split tree).

    Returns:
        one row per image: ``path`` (absolute), ``id`` (path relative to ``root``, ``/``-separated), ``label`` (the
        class folder name, None when unlabelled) and ``split`` (``"train"``, ``"valid"``, ``"test"`` or None).

    Raises:
        DataError: a missing folder, no images, class folders mixed with loose images or split folders, or, for
            training, fewer than two classes.

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> for name in ("cat/1.png", "dog/2.png"):
        ...     (root / name).parent.mkdir(exist_ok=True)
        ...     Image.new("L", (8, 8)).save(root / name)
        >>> scan_image_folder(root, for_training=True)[["id", "label", "split"]].values.tolist()
        [['cat/1.png', 'cat', None], ['dog/2.png', 'dog', None]]
    """
    root = _check_root(root)
    dirs, images = _list_dir(root)
    splits = [d for d in dirs if d.name.lower() in SPLIT_NAMES]
    if splits:
        _check_only(root, expected=splits, found=dirs, images=images)
        rows = [row for d in splits for row in _scan_labelled(d, root=root, split=SPLIT_NAMES[d.name.lower()])]
    else:
        rows = _scan_labelled(root, root=root, split=None)
    frame = pd.DataFrame(sorted(rows, key=lambda row: str(row[1])), columns=_COLUMNS, dtype=object)
    frame = frame.astype({"path": "str", "id": "str"})
    _check_found(frame, root, for_training=for_training)
    return frame


def _check_root(root: str | Path) -> Path:
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(
            f"no folder at {str(path)!r}. Expected a folder of images (ROOT/<class>/*.png); check the path."
        )
    if not path.is_dir():
        raise DataError(f"{str(path)!r} is a file, not a folder of images. Pass the folder, or a CSV with --image-col.")
    return path.resolve()


def _is_hidden(name: str) -> bool:
    return name.startswith((".", "__"))


def _list_dir(folder: Path) -> tuple[list[Path], list[Path]]:
    """Visible sub-folders and image files directly in ``folder``, sorted."""
    dirs, images = [], []
    with os.scandir(folder) as entries:
        for entry in entries:
            if _is_hidden(entry.name):
                continue
            if entry.is_dir():
                dirs.append(Path(entry.path))
            elif Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS:
                images.append(Path(entry.path))
    return sorted(dirs), sorted(images)


def _images_under(folder: Path) -> list[Path]:
    found = []
    for current, subdirs, files in os.walk(folder):
        subdirs[:] = [d for d in subdirs if not _is_hidden(d)]  # prune hidden folders in place (os.walk contract)
        found += [Path(current, f) for f in files if not _is_hidden(f) and Path(f).suffix.lower() in IMAGE_EXTENSIONS]
    return found


def _scan_labelled(folder: Path, *, root: Path, split: str | None) -> list[tuple[str, str, str | None, str | None]]:
    """Rows for ``folder``: its class sub-folders, or (without class folders) its loose images, unlabelled."""
    dirs, images = _list_dir(folder)
    classes = {d.name: _images_under(d) for d in dirs}
    classes = {name: found for name, found in classes.items() if found}
    if classes and images:
        raise DataError(
            f"{str(folder)!r} holds class folders ({format_examples(sorted(classes))}) and also loose images "
            f"({format_examples([p.name for p in images])}). Expected one of the two; move the loose images into a "
            "class folder, or elsewhere."
        )
    labelled = [(p, name) for name, found in classes.items() for p in found]
    pairs: list[tuple[Path, str | None]] = [*labelled, *((p, None) for p in images)]
    return [(str(p), p.relative_to(root).as_posix(), label, split) for p, label in pairs]


def _check_only(root: Path, *, expected: list[Path], found: list[Path], images: list[Path]) -> None:
    others = [d.name for d in found if d not in expected] + [p.name for p in images]
    if others:
        raise DataError(
            f"{str(root)!r} holds split folders ({format_examples([d.name for d in expected])}) and also "
            f"{format_examples(others)}. Expected only train/, valid/ and test/ at the top of a split tree; move the "
            "other entries into a split folder (or out of ROOT)."
        )


def _check_found(frame: pd.DataFrame, root: Path, *, for_training: bool) -> None:
    if frame.empty:
        raise DataError(
            f"no images under {str(root)!r}{_other_files(root)}. Expected files ending in "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))}; check the folder."
        )
    if not for_training:
        return
    has_splits = frame["split"].notna().any()
    train = frame[frame["split"] == "train"] if has_splits else frame
    classes = sorted(set(train["label"].dropna()))
    where = "train/" if has_splits else "ROOT"
    if len(classes) < 2:
        found = f"one class folder ({classes[0]!r})" if classes else "no class folders"
        raise DataError(
            f"{str(root)!r} has {found} under {where}; training needs at least two. Expected "
            "ROOT/<class>/*.png (or ROOT/train/<class>/*.png) with one folder per class; add the other classes' "
            "folders, or train from a CSV with a label column."
        )


def _other_files(root: Path) -> str:
    suffixes = sorted({p.suffix.lower() or p.name for p in root.rglob("*") if p.is_file()})
    return f" (found files of types {format_examples(suffixes)})" if suffixes else " (the folder is empty)"
