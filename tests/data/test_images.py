"""Tests of labelwise.data.images: decoding against PIL directly, bad files, spec inference, transforms."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from labelwise.data.images import ImageSpec, infer_image_spec, load_images
from labelwise.data.transforms import image_transforms
from labelwise.errors import ConfigError, DataError

MakeImage = Callable[..., Path]  # the `make_image` fixture of tests/data/conftest.py


def _spec(size: int, channels: int) -> ImageSpec:
    return ImageSpec(size=size, channels=channels, mean=(0.5,) * channels, std=(0.25,) * channels)  # type: ignore[arg-type]


def _reference(path: Path, *, size: int, mode: str) -> np.ndarray:
    """What PIL itself gives: convert, then bilinear resize; as (C, H, W)."""
    with Image.open(path) as image:
        array = np.asarray(ImageOps.exif_transpose(image).convert(mode).resize((size, size), Image.Resampling.BILINEAR))
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


@pytest.mark.parametrize("mode", ["L", "RGB", "P"])
@pytest.mark.parametrize("channels", [1, 3])
def test_decoding_matches_pil(make_image: MakeImage, mode: str, channels: int) -> None:
    paths = [make_image(f"{mode}{i}.png", mode=mode, size=(30 + i, 20), seed=i) for i in range(3)]
    loaded = load_images(paths, _spec(16, channels))
    assert loaded.pixels.dtype == torch.uint8 and loaded.pixels.shape == (3, channels, 16, 16)
    assert loaded.kept.tolist() == [True] * 3 and loaded.bad == []
    for pixels, path in zip(loaded.pixels, paths, strict=True):
        np.testing.assert_array_equal(pixels.numpy(), _reference(path, size=16, mode="L" if channels == 1 else "RGB"))


def test_transparency_is_composited_onto_white(make_image: MakeImage, tmp_path: Path) -> None:
    path = tmp_path / "clear.png"
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(path)
    half = tmp_path / "half.png"
    Image.new("LA", (8, 8), (0, 128)).save(half)
    loaded = load_images([path, half, make_image("rgba.png", mode="RGBA")], _spec(8, 3))
    assert (loaded.pixels[0] == 255).all()  # fully transparent red -> white, not red or black
    assert (loaded.pixels[1] == 127).all()  # black at alpha 128/255 over white
    assert loaded.pixels.shape == (3, 3, 8, 8)


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.fromarray(np.array([[0, 1000], [32768, 65535]], dtype=np.uint16)).save(path)
    pixels = load_images([path], _spec(2, 1)).pixels
    np.testing.assert_array_equal(pixels[0, 0].numpy(), np.rint(np.array([[0, 1000], [32768, 65535]]) / 257))


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    array = np.zeros((20, 30, 3), dtype=np.uint8)
    array[:, :15] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(array).save(path, exif=exif, quality=95)
    pixels = load_images([path], _spec(16, 1)).pixels[0].numpy()
    np.testing.assert_array_equal(pixels, _reference(path, size=16, mode="L"))
    assert pixels[0, :4].mean() > 200 and pixels[0, -4:].mean() < 50  # white on top after rotation, not on the left


def test_large_jpeg_draft_decoding_stays_close_to_a_full_decode(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    y, x = np.mgrid[0:400, 0:400]
    Image.fromarray(np.stack([x * 255 // 400, y * 255 // 400, (x + y) * 255 // 800], -1).astype(np.uint8)).save(path)
    pixels = load_images([path], _spec(32, 3)).pixels[0].numpy().astype(int)
    # JPEG's reduced-scale DCT decode differs from decode-then-resize by a few levels at most on smooth images.
    assert np.abs(pixels - _reference(path, size=32, mode="RGB").astype(int)).mean() < 3


def test_threads_do_not_change_the_result(make_image: MakeImage) -> None:
    paths = [make_image(f"{i}.png", size=(10 + i, 12), seed=i) for i in range(40)]
    one = load_images(paths, _spec(12, 3), num_threads=1).pixels
    many = load_images(paths, _spec(12, 3), num_threads=4).pixels
    assert torch.equal(one, many)


def test_bad_files_are_all_named_with_the_flag(bad_files: dict[str, Path], make_image: MakeImage) -> None:
    good = [make_image("ok1.png"), make_image("ok2.png")]
    with pytest.raises(DataError) as info:
        load_images([good[0], *bad_files.values(), good[1]], _spec(8, 3))
    message = str(info.value)
    assert message.startswith("4 of 6 image files cannot be read:")
    for name, reason in [
        ("truncated.png", "OSError: image file is truncated"),
        ("empty.png", "empty file (0 bytes)"),
        ("text.png", "not an image format PIL recognizes"),
        ("missing.png", "file not found"),
    ]:
        assert f"{name}' ({reason}" in message
    assert "--skip-bad-images (skip_bad=True)" in message


def test_more_than_five_bad_files_are_counted(tmp_path: Path) -> None:
    paths = [tmp_path / f"gone{i}.png" for i in range(7)]
    with pytest.raises(DataError, match=r"7 of 7 image files.*gone4.png' \(file not found\) and 2 more\. Expected"):
        load_images(paths, _spec(8, 1))


def test_skip_bad_keeps_the_readable_images_in_order(bad_files: dict[str, Path], make_image: MakeImage) -> None:
    good = [make_image("ok1.png", seed=1), make_image("ok2.png", seed=2)]
    paths = [bad_files["text"], good[0], bad_files["truncated"], good[1]]
    loaded = load_images(paths, _spec(8, 3), skip_bad=True)
    assert loaded.kept.tolist() == [False, True, False, True]
    assert [path for path, _ in loaded.bad] == [str(bad_files["text"]), str(bad_files["truncated"])]
    assert torch.equal(loaded.pixels, load_images(good, _spec(8, 3)).pixels)


def test_skip_bad_with_nothing_readable_still_raises(bad_files: dict[str, Path]) -> None:
    with pytest.raises(DataError, match=r"4 of 4 image files cannot be read.*check the paths"):
        load_images(list(bad_files.values()), _spec(8, 3), skip_bad=True)


# -- infer_image_spec ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("modes", "channels"),
    [
        pytest.param(["L", "L", "I;16", "LA"], 1, id="all-gray"),
        pytest.param(["L", "RGB"], 3, id="mixed"),
        pytest.param(["P"], 3, id="color-palette"),
        pytest.param(["RGBA"], 3, id="rgba"),
    ],
)
def test_infer_channels(make_image: MakeImage, modes: list[str], channels: int) -> None:
    paths = [make_image(f"{i}.png", mode=mode) for i, mode in enumerate(modes)]
    assert infer_image_spec(paths).channels == channels


def test_gray_palette_counts_as_grayscale(tmp_path: Path) -> None:
    path = tmp_path / "gray-palette.png"
    Image.new("L", (8, 8), 90).convert("P").save(path)
    with Image.open(path) as image:
        assert image.mode == "P"
    assert infer_image_spec([path]).channels == 1


@pytest.mark.parametrize(
    ("sides", "expected"),
    [
        pytest.param([(8, 8), (10, 12)], 16, id="clamped-up"),
        pytest.param([(40, 30), (30, 50), (28, 28)], 30, id="median-short-side"),
        pytest.param([(300, 200)], 64, id="clamped-down"),
    ],
)
def test_infer_size(make_image: MakeImage, sides: list[tuple[int, int]], expected: int) -> None:
    paths = [make_image(f"{i}.png", size=side) for i, side in enumerate(sides)]
    assert infer_image_spec(paths).size == expected
    assert infer_image_spec(paths, size=224).size == 224


def test_infer_normalization_matches_the_pixels(make_image: MakeImage, bad_files: dict[str, Path]) -> None:
    paths = [make_image(f"{i}.png", size=(20, 20), seed=i) for i in range(5)]
    spec = infer_image_spec([*paths, bad_files["text"]])  # unreadable files are left out of the sample
    pixels = np.stack([_reference(p, size=20, mode="RGB") for p in paths]).astype(np.float64) / 255
    np.testing.assert_allclose(spec.mean, pixels.mean(axis=(0, 2, 3)), atol=1e-4)  # stored rounded to 4 places
    np.testing.assert_allclose(spec.std, pixels.std(axis=(0, 2, 3), ddof=1), atol=1e-4)
    kept = infer_image_spec(paths, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    assert kept.mean == (0.485, 0.456, 0.406) and kept.std == (0.229, 0.224, 0.225)


def test_infer_refuses_no_or_unreadable_images(bad_files: dict[str, Path]) -> None:
    with pytest.raises(DataError, match="no images to infer"):
        infer_image_spec([])
    with pytest.raises(DataError, match=r"none of the 4 sampled files is a readable image.*check the paths"):
        infer_image_spec(list(bad_files.values()))


# -- ImageSpec ----------------------------------------------------------------------------------------
def test_spec_json_round_trip() -> None:
    spec = ImageSpec(size=32, channels=3, mean=(0.1, 0.2, 0.3), std=(0.4, 0.5, 0.6))
    assert ImageSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"size": 0}, r"size=0; expected a positive int", id="size"),
        pytest.param({"channels": 2, "mean": (0.5,) * 2, "std": (0.5,) * 2}, r"channels=2; expected 1", id="channels"),
        pytest.param({"mean": (0.5, 0.5)}, r"one value per channel \(1\)", id="mean-length"),
        pytest.param({"std": (0.0,)}, r"std=\(0.0,\); expected positive", id="std"),
    ],
)
def test_spec_refuses(kwargs: dict[str, object], match: str) -> None:
    fields: dict[str, object] = {"size": 8, "channels": 1, "mean": (0.5,), "std": (0.5,), **kwargs}
    with pytest.raises(ConfigError, match=match):
        ImageSpec(**fields)  # type: ignore[arg-type]


# -- image_transforms ---------------------------------------------------------------------------------
def test_eval_transform_normalizes() -> None:
    spec = ImageSpec(size=8, channels=3, mean=(0.1, 0.5, 0.9), std=(0.2, 0.3, 0.4))
    pixels = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    reference = (pixels.float() / 255 - torch.tensor(spec.mean)[:, None, None]) / torch.tensor(spec.std)[:, None, None]
    out = image_transforms(spec, train=False)(pixels)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, reference)


def test_train_transform_augments_reproducibly() -> None:
    spec = ImageSpec(size=16, channels=1, mean=(0.5,), std=(0.25,))
    pixels = torch.randint(0, 256, (1, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    train = image_transforms(spec, train=True)
    torch.manual_seed(1)
    first = train(pixels)
    torch.manual_seed(1)
    assert torch.equal(first, train(pixels))
    assert first.shape == (1, 16, 16) and not torch.equal(first, image_transforms(spec, train=False)(pixels))


def test_train_transform_fills_with_the_mean_colour() -> None:
    spec = ImageSpec(size=16, channels=3, mean=(100 / 255, 50 / 255, 200 / 255), std=(0.2, 0.2, 0.2))
    pixels = torch.tensor([100, 50, 200], dtype=torch.uint8)[:, None, None].expand(3, 16, 16).contiguous()
    torch.manual_seed(0)
    out = image_transforms(spec, train=True)(pixels)
    torch.testing.assert_close(out, torch.zeros_like(out), atol=1e-5, rtol=0)  # no dark border from shifting


def test_train_transform_draws_each_image_of_a_batch_independently() -> None:
    spec = ImageSpec(size=16, channels=1, mean=(0.5,), std=(0.25,))
    image = torch.randint(0, 256, (1, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    out = image_transforms(spec, train=True)(image.expand(8, 1, 16, 16).contiguous())
    assert out.shape == (8, 1, 16, 16)
    assert len({tuple(row.flatten().tolist()) for row in out}) == 8  # eight copies, eight different draws


def test_train_transform_strength_scales_the_augmentation() -> None:
    """Strength 0 is the eval transform; a weaker draw moves the image less than a full one from the same seed."""
    spec = ImageSpec(size=16, channels=1, mean=(0.5,), std=(0.25,))
    pixels = torch.randint(0, 256, (8, 1, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    plain = image_transforms(spec, train=False)(pixels)
    assert torch.equal(image_transforms(spec, train=True, strength=0.0)(pixels), plain)
    moved = {}
    for strength in (0.25, 1.0):
        torch.manual_seed(0)
        moved[strength] = float((image_transforms(spec, train=True, strength=strength)(pixels) - plain).abs().mean())
    assert 0 < moved[0.25] < moved[1.0]


@pytest.mark.parametrize("strength", [-0.1, 1.5])
def test_train_transform_strength_outside_zero_one_is_refused(strength: float) -> None:
    spec = ImageSpec(size=16, channels=1, mean=(0.5,), std=(0.25,))
    with pytest.raises(ConfigError, match=rf"strength={strength}; expected a number in \[0, 1\] \(0: no augmentation"):
        image_transforms(spec, train=True, strength=strength)
