"""The backbone registry: our names, timm's names, suggestions, and local-only pretrained weights."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file
from torch import nn

from labelwise.errors import ConfigError
from labelwise.models import create_backbone, list_backbones, register_backbone, registry


@pytest.fixture
def empty_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the Hugging Face and torch hub caches at empty folders."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch"))
    return tmp_path


def test_timm_backbone_takes_one_channel() -> None:
    net = create_backbone("resnet18", in_chans=1)
    features = net(torch.zeros(2, 1, 32, 32))
    assert features.shape == (2, 512) and net.num_features == 512


def test_our_backbones_are_listed_first_and_timm_follows() -> None:
    names = list_backbones()
    assert names.index("cnn") < names.index("mlp") < names.index("caformer_b36")  # ours sorted, then timm's
    assert "resnet18" in names and "efficientnet_b0" in names
    assert list_backbones("m*")[0] == "mlp"
    assert list_backbones("no_such_backbone*") == []


def test_unknown_name_lists_the_closest_names() -> None:
    with pytest.raises(ConfigError, match=r"unknown backbone 'resnt18'\. Closest names: 'resnet18'.*list_backbones"):
        create_backbone("resnt18")
    with pytest.raises(ConfigError, match=r"Closest names: 'mlp'"):
        create_backbone("mlpp", in_features=3)


def test_pretrained_without_local_weights_fails_fast(empty_caches: Path) -> None:
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"not available locally.*pretrained_cfg_overlay.*pretrained=False"):
        create_backbone("resnet18", pretrained=True)
    assert time.perf_counter() - start < 5.0  # no network call, no retry loop


def test_pretrained_from_an_overlay_file(tmp_path: Path) -> None:
    reference = timm.create_model("resnet18", num_classes=0)
    path = tmp_path / "weights.safetensors"
    save_file(reference.state_dict(), str(path))
    net = create_backbone("resnet18", pretrained=True, pretrained_cfg_overlay={"file": str(path)})
    torch.testing.assert_close(net.conv1.weight, reference.conv1.weight, rtol=0, atol=0)  # loaded, not re-initialized


def test_pretrained_from_the_hugging_face_cache(empty_caches: Path) -> None:
    # The cache layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<commit>/<file>}.
    reference = timm.create_model("resnet18", num_classes=0)
    repo = empty_caches / "hf" / "models--timm--resnet18.a1_in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    save_file(reference.state_dict(), str(snapshot / "model.safetensors"))
    net = create_backbone("resnet18", pretrained=True)
    torch.testing.assert_close(net.conv1.weight, reference.conv1.weight, rtol=0, atol=0)


def test_missing_overlay_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"file=.*missing\.safetensors.* does not exist; pass the path"):
        create_backbone(
            "resnet18", pretrained=True, pretrained_cfg_overlay={"file": str(tmp_path / "missing.safetensors")}
        )


def test_in_features_is_refused_by_image_models() -> None:
    with pytest.raises(ConfigError, match=r"in_features=30.*timm image model.*'mlp'"):
        create_backbone("resnet18", in_features=30)


def test_misspelt_option_gets_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"'hiden' \(did you mean 'hidden'\?\).*accepts: 'hidden'"):
        create_backbone("mlp", in_features=3, hiden=(8,))


def test_unknown_timm_option_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"timm model 'resnet18' does not accept"):
        create_backbone("resnet18", no_such_option=1)


def test_register_and_reject_a_duplicate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @register_backbone("tiny")
    def tiny(*, in_features: int | None, in_chans: int | None, pretrained: bool) -> nn.Module:
        layer = nn.Linear(in_features or 1, 4)
        layer.num_features = 4
        return layer

    assert create_backbone("tiny", in_features=2)(torch.zeros(3, 2)).shape == (3, 4)
    assert "tiny" in list_backbones()
    with pytest.raises(ConfigError, match=r"'tiny' is already registered; pick another name"):
        register_backbone("tiny")(lambda **kwargs: nn.Identity())


def test_builder_without_num_features_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register_backbone("bare")(lambda **kwargs: nn.Identity())
    with pytest.raises(
        ConfigError, match=r"'bare' has num_features=None; expected a positive int.*Set `module.num_features`"
    ):
        create_backbone("bare")
