"""Decode images once into a uint8 tensor at one size, and normalize (and augment) them per item.

Decoding is the slow part of small-image training, so `load_images` does it once, in a thread pool (PIL
releases the GIL while decoding and resizing), into one preallocated ``(N, C, size, size)`` uint8 array:
4x smaller than float32 and converted per batch by `labelwise.data.transforms.image_transforms`.
"""

from __future__ import annotations

import io
import math
import os
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from labelwise.errors import ConfigError, DataError, format_examples

if TYPE_CHECKING:
    import torch  # imported where pixels become a tensor: reading a table's sources must not load torch

__all__ = ["ImageSpec", "LoadedImages", "decode_image_bytes", "infer_image_spec", "load_images"]

_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_WIDE_GRAY_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_SIZE_RANGE = (16, 64)  # inferred sizes suit the compact CNN; timm models pass their own size
_MAX_SHOWN_BAD = 5


@dataclass(frozen=True, kw_only=True)
class ImageSpec:
    """How every image is presented to the network.

    Args:
        size: images are resized to ``size x size`` (stretched, not cropped, so no content is lost).
        channels: 1 (grayscale) or 3 (RGB).
        mean: per-channel mean of pixel values in [0, 1], subtracted after scaling.
        std: per-channel standard deviation, divided by after subtracting the mean.

    Example:
        >>> ImageSpec(size=32, channels=1, mean=(0.5,), std=(0.25,)).to_dict()
        {'size': 32, 'channels': 1, 'mean': [0.5], 'std': [0.25]}
    """

    size: int
    channels: Literal[1, 3]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 1:
            raise ConfigError(f"image size={self.size!r}; expected a positive int (e.g. 32, or 224 for timm models).")
        if self.channels not in (1, 3):
            raise ConfigError(f"image channels={self.channels!r}; expected 1 (grayscale) or 3 (RGB).")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ConfigError(
                f"image mean={self.mean!r} and std={self.std!r} must hold one value per channel ({self.channels})."
            )
        if not all(s > 0 and math.isfinite(s) for s in self.std):
            raise ConfigError(f"image std={self.std!r}; expected positive finite values.")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; `from_dict` inverts it."""
        return {"size": self.size, "channels": self.channels, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageSpec:
        """Rebuild a spec written by `to_dict`."""
        return cls(size=int(data["size"]), channels=data["channels"], mean=tuple(data["mean"]), std=tuple(data["std"]))


@dataclass(frozen=True, kw_only=True)
class LoadedImages:
    """Decoded images.

    Args:
        pixels: ``(K, C, size, size)`` uint8, the readable images in input order (K = ``kept.sum()``).
        kept: ``(N,)`` bool, which of the N input paths were read.
        bad: ``(path, reason)`` of each file that could not be read.
    """

    pixels: torch.Tensor
    kept: np.ndarray
    bad: list[tuple[str, str]]


def infer_image_spec(
    paths: Sequence[str | Path],
    *,
    size: int | None = None,
    channels: Literal[1, 3] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    sample_size: int = 64,
) -> ImageSpec:
    """Choose size, channels and normalization from an evenly spaced sample of the images.

    Args:
        paths: the training images.
        size: keep this size (224, or a timm model's input size); by default the median short side of the sample,
            clamped to [16, 64].
        channels: keep this; by default 1 when every sampled image is grayscale, else 3.
        mean: keep this (e.g. a pretrained model's); by default the sample's per-channel mean.
        std: keep this; by default the sample's per-channel standard deviation.
        sample_size: how many images to look at.

    Raises:
        DataError: no paths, or none of the sampled files is a readable image.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> Image.new("L", (28, 20), color=128).save(folder / "a.png")
        >>> spec = infer_image_spec([folder / "a.png"])
        >>> spec.size, spec.channels, spec.mean
        (20, 1, (0.502,))
    """
    if not len(paths):
        raise DataError("no images to infer an image size from; expected at least one image path.")
    step = max(1, len(paths) / sample_size)
    sample = [str(paths[int(i * step)]) for i in range(min(sample_size, len(paths)))]
    with _pil_warnings():
        headers = {path: header for path in sample if (header := _read_header(path)) is not None}
    if not headers:
        raise _unreadable_sample(sample)
    channels = channels or (1 if all(gray for gray, _ in headers.values()) else 3)
    short_sides = sorted(side for _, side in headers.values())
    size = size or min(max(short_sides[len(short_sides) // 2], _SIZE_RANGE[0]), _SIZE_RANGE[1])
    if mean is None or std is None:
        try:
            sample_mean, sample_std = _sample_stats(list(headers), size=size, channels=channels)
        except DataError:  # headers readable, pixels not (truncated files)
            raise _unreadable_sample(sample) from None
        mean = mean if mean is not None else sample_mean
        std = std if std is not None else sample_std
    return ImageSpec(size=size, channels=channels, mean=tuple(mean), std=tuple(std))


def _unreadable_sample(sample: list[str]) -> DataError:
    return DataError(
        f"none of the {len(sample)} sampled files is a readable image ({format_examples(sample)}). Expected image "
        "files PIL can open; check the paths."
    )


def _sample_stats(paths: list[str], *, size: int, channels: Literal[1, 3]) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of pixel values in [0, 1], rounded to 4 places (1.0 for a flat channel)."""
    placeholder = ImageSpec(size=size, channels=channels, mean=(0.5,) * channels, std=(0.25,) * channels)
    pixels = load_images(paths, placeholder, skip_bad=True).pixels.float() / 255
    per_channel = pixels.transpose(0, 1).reshape(channels, -1)
    mean = [round(float(m), 4) for m in per_channel.mean(dim=1)]
    std = [round(float(s), 4) if s > 1e-3 else 1.0 for s in per_channel.std(dim=1)]
    return mean, std


def _read_header(path: str) -> tuple[bool, int] | None:
    """(is grayscale, short side) from the file header, without decoding pixels; None if unreadable."""
    try:
        with Image.open(path) as image:
            return _is_gray(image), min(image.size)
    except Exception:  # noqa: BLE001 - any decoder failure means "not readable"; load_images reports it
        return None


def _is_gray(image: Image.Image) -> bool:
    if image.mode == "P":
        palette = np.asarray(image.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
        return bool((palette == palette[:, :1]).all())
    return image.mode in _GRAY_MODES


def load_images(
    paths: Sequence[str | Path], spec: ImageSpec, *, skip_bad: bool = False, num_threads: int | None = None
) -> LoadedImages:
    """Decode, convert and resize images into one uint8 tensor.

    Grayscale, RGB, RGBA (composited onto white), palette and 16-bit images are all converted to
    ``spec.channels``; EXIF rotation is applied.

    Args:
        paths: image files.
        spec: the size and channels to produce.
        skip_bad: leave unreadable files out (listed in ``bad``) instead of raising.
        num_threads: decoding threads; by default one per CPU core, at most 8.

    Returns:
        the readable images in input order, which paths were kept, and why the others were not.

    Raises:
        DataError: unreadable files (truncated, empty, not an image, missing), all of them named at once, unless
            ``skip_bad``; or no readable image at all.

    Example:
        >>> import tempfile, pathlib
        >>> file = pathlib.Path(tempfile.mkdtemp()) / "a.png"
        >>> Image.new("RGBA", (40, 30)).save(file)
        >>> load_images([file], ImageSpec(size=16, channels=3, mean=(0.5,) * 3, std=(0.25,) * 3)).pixels.shape
        torch.Size([1, 3, 16, 16])
    """
    names = [str(p) for p in paths]
    pixels = np.empty((len(names), spec.channels, spec.size, spec.size), dtype=np.uint8)
    reasons: list[str | None] = [None] * len(names)

    def decode_chunk(chunk: range) -> None:
        for i in chunk:
            try:
                pixels[i] = _decode(names[i], spec)
            except Exception as err:  # noqa: BLE001 - PIL raises many types on corrupt files; each is reported
                reasons[i] = _reason(err, names[i])

    _run_chunks(decode_chunk, len(names), num_threads=num_threads)
    kept = np.array([reason is None for reason in reasons], dtype=bool)
    bad = [(name, reason) for name, reason in zip(names, reasons, strict=True) if reason is not None]
    _check_bad(bad, total=len(names), skip_bad=skip_bad)
    import torch

    return LoadedImages(pixels=torch.from_numpy(pixels if kept.all() else pixels[kept]), kept=kept, bad=bad)


def _run_chunks(work: Callable[[range], None], total: int, *, num_threads: int | None) -> None:
    """Run ``work`` over ``range(total)`` in chunks; chunks of many small images keep the pool's overhead low.

    PIL's warnings inside ``work`` are handled as `_pil_warnings` says.
    """
    threads = num_threads or min(8, _usable_cores())
    chunk = max(1, min(256, math.ceil(total / (threads * 4))))
    chunks = [range(start, min(start + chunk, total)) for start in range(0, total, chunk)]
    with _pil_warnings():
        if threads == 1 or len(chunks) <= 1:
            for part in chunks:
                work(part)
            return
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="labelwise-decode") as pool:
            list(pool.map(work, chunks))  # list() re-raises any error from the workers


def _usable_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers restrict), not the host's count."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _check_bad(bad: list[tuple[str, str]], *, total: int, skip_bad: bool) -> None:
    if not bad or (skip_bad and len(bad) < total):
        return
    shown = "; ".join(f"{path!r} ({reason})" for path, reason in bad[:_MAX_SHOWN_BAD])
    more = f" and {len(bad) - _MAX_SHOWN_BAD} more" if len(bad) > _MAX_SHOWN_BAD else ""
    fix = (
        "check the paths" if skip_bad
        else "replace or delete those files, or pass --skip-bad-images (skip_bad=True) to leave them out"
    )  # fmt: skip
    raise DataError(
        f"{len(bad)} of {total} image files cannot be read: {shown}{more}. Expected image files PIL can decode "
        f"(png, jpg, bmp, gif, webp, tif); {fix}."
    )


@contextmanager
def _pil_warnings() -> Iterator[None]:
    """While decoding: PIL's decompression-bomb warning is an error, its other warnings about a file are dropped.

    Between ``Image.MAX_IMAGE_PIXELS`` and twice that, PIL only warns and then decodes: the user would see a raw
    warning on stderr and wait minutes for gigabytes of pixels that are resized to a few dozen anyway, so it fails
    the file like PIL's own error above twice the limit. PIL's other warnings (corrupt EXIF data, a truncated TIFF
    directory) do not say which file they are about: a file that then fails to decode is named in the error, and
    one that decodes is usable. Set in the calling thread: warning filters are process-wide, and changing them from
    the decode threads is not safe.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _reason(err: Exception, path: str) -> str:
    """Why a file could not be read, in words for the common cases."""
    if isinstance(err, FileNotFoundError):
        return "file not found"
    if isinstance(err, Image.DecompressionBombError | Image.DecompressionBombWarning):
        pixels = re.search(r"\((\d+) pixels\)", str(err))
        size = f"{int(pixels.group(1)):,} pixels" if pixels else "too many pixels"
        return (
            f"{size}, over PIL's limit of {Image.MAX_IMAGE_PIXELS or 0:,} against decompression bombs; downscale it "
            "if it is a real image"
        )
    if isinstance(err, UnidentifiedImageError):
        return "empty file (0 bytes)" if os.path.getsize(path) == 0 else "not an image format PIL recognizes"
    return f"{type(err).__name__}: {err}"


def decode_image_bytes(data: bytes, spec: ImageSpec) -> np.ndarray:
    """One encoded image (the bytes of a png, jpg, ... file) as ``(C, size, size)`` uint8, as `load_images` decodes.

    For images that arrive without a file (an HTTP request); the same decoder, conversion and resize as files get.

    Raises:
        DataError: the bytes are empty or not an image PIL can decode; the message says why.

    Example:
        >>> import io
        >>> buffer = io.BytesIO()
        >>> Image.new("RGB", (40, 30)).save(buffer, format="PNG")
        >>> decode_image_bytes(buffer.getvalue(), ImageSpec(size=16, channels=1, mean=(0.5,), std=(0.25,))).shape
        (1, 16, 16)
    """
    if not data:
        raise DataError("empty image (0 bytes); expected the bytes of an image file (png, jpg, bmp, gif, webp, tif).")
    try:
        with _pil_warnings():
            return _decode(io.BytesIO(data), spec)
    except Exception as err:  # noqa: BLE001 - PIL raises many types on corrupt data; each becomes one reason
        reason = "not an image format PIL recognizes" if isinstance(err, UnidentifiedImageError) else None
        raise DataError(
            f"cannot decode the image ({reason or _reason(err, '')}); expected the bytes of an image file PIL can "
            "decode (png, jpg, bmp, gif, webp, tif)."
        ) from err


def _decode(path: str | io.BytesIO, spec: ImageSpec) -> np.ndarray:
    """One image as ``(C, size, size)`` uint8."""
    target = "L" if spec.channels == 1 else "RGB"
    with Image.open(path) as file:
        # JPEG only: decode at the smallest DCT scale still >= the target size (2-8x faster for large photos).
        file.draft(target, (spec.size, spec.size))
        image = _to_mode(ImageOps.exif_transpose(file), target)  # exif_transpose loads: truncated files raise here
        if image.size != (spec.size, spec.size):
            image = image.resize((spec.size, spec.size), Image.Resampling.BILINEAR)
        array = np.asarray(image)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _to_mode(image: Image.Image, target: str) -> Image.Image:
    """Convert to ``L`` or ``RGB``: wide grayscale scaled to 8 bits, transparency composited onto white."""
    if image.mode in _WIDE_GRAY_MODES:
        image = _to_8bit(image)
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return image if image.mode == target else image.convert(target)


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and float grayscale to 8 bits; PIL's own conversion clips at 255 instead of scaling."""
    values = np.asarray(image, dtype=np.float64)
    top = values.max() if values.size else 0.0
    if image.mode == "F" and top <= 1.0:
        values = values * 255
    elif top > 255:
        values = values / 257  # 65535 -> 255
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")
