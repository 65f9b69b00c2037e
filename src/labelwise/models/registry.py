"""Backbone registry: our own backbones by name, every other name resolved through timm.

A backbone is an ``nn.Module`` that maps a batch to a feature matrix ``(N, num_features)`` and carries the
attribute ``num_features`` (timm's spelling), so one head fits them all (`labelwise.models.head`).

Pretrained weights are only ever read from local files: this module never downloads. ``pretrained=True``
looks for the weights in the Hugging Face cache, the torch hub cache, or a file given as
``pretrained_cfg_overlay=dict(file=...)``, and raises `ConfigError` at once when none is there, instead of
letting a hub call wait on a network that is not there.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from labelwise.errors import ConfigError, format_examples

__all__ = ["BackboneBuilder", "create_backbone", "is_registered", "list_backbones", "register_backbone"]

BackboneBuilder = Callable[..., nn.Module]
_Builder = TypeVar("_Builder", bound=BackboneBuilder)
# name -> builder(*, in_features, in_chans, pretrained, **options); filled by @register_backbone at import.
_REGISTRY: dict[str, BackboneBuilder] = {}


def register_backbone(name: str) -> Callable[[_Builder], _Builder]:
    """Register a backbone builder under ``name`` (a decorator).

    The builder is called as ``builder(in_features=..., in_chans=..., pretrained=..., **options)`` and must
    return an ``nn.Module`` with an int attribute ``num_features``.

    Example:
        >>> @register_backbone("doctest_linear")
        ... def _linear(*, in_features, in_chans, pretrained, width=8):
        ...     layer = nn.Linear(in_features, width)
        ...     layer.num_features = width
        ...     return layer
        >>> create_backbone("doctest_linear", in_features=3).num_features
        8
        >>> _ = _REGISTRY.pop("doctest_linear")  # keep the registry as it was
    """

    def decorate(builder: _Builder) -> _Builder:
        if name in _REGISTRY and _REGISTRY[name] is not builder:
            raise ConfigError(f"a backbone named {name!r} is already registered; pick another name.")
        _REGISTRY[name] = builder
        return builder

    return decorate


def is_registered(name: str) -> bool:
    """Whether ``name`` is one of our backbones (no timm lookup).

    Example:
        >>> is_registered("mlp"), is_registered("resnet18")
        (True, False)
    """
    return name in _REGISTRY


def list_backbones(pattern: str = "*") -> list[str]:
    """Names ``create_backbone`` accepts that match an fnmatch ``pattern``: ours first, then timm's.

    Example:
        >>> list_backbones("mlp")
        ['mlp']
        >>> "resnet18" in list_backbones("res*")
        True
    """
    import timm  # deferred, as everywhere here: building one of our own backbones never needs timm

    ours = sorted(fnmatch.filter(_REGISTRY, pattern))
    return ours + [name for name in timm.list_models(pattern) if name not in _REGISTRY]


def create_backbone(
    name: str,
    *,
    in_features: int | None = None,
    in_chans: int | None = None,
    pretrained: bool = False,
    **options: Any,
) -> nn.Module:
    """Build the backbone ``name``; its output is ``(N, backbone.num_features)`` float.

    Args:
        name: one of ours (``"mlp"``, ``"cnn"``) or any timm model name (``"resnet18"``, ``"resnet18.a1_in1k"``).
        in_features: width of a tabular input ``(N, in_features)``; required by tabular backbones.
        in_chans: channels of an image input ``(N, in_chans, H, W)``; image backbones default to 3.
        pretrained: load pretrained weights, from local files only (see the module docstring).
        **options: forwarded to the builder (ours: its keyword arguments; timm: ``timm.create_model``).

    Raises:
        ConfigError: unknown name (lists the closest names), options the builder does not take, or
            pretrained weights that are not available locally.

    Example:
        >>> net = create_backbone("resnet18", in_chans=1)
        >>> net(torch.zeros(2, 1, 32, 32)).shape == (2, net.num_features)
        True
    """
    if name in _REGISTRY:
        backbone = _create_ours(
            name, in_features=in_features, in_chans=in_chans, pretrained=pretrained, options=options
        )
    else:  # timm is imported only here: building one of our own backbones (to predict) never needs it
        backbone = _create_timm(
            name, in_features=in_features, in_chans=in_chans, pretrained=pretrained, options=options
        )
    _check_num_features(backbone, name)
    return backbone


def _create_ours(
    name: str, *, in_features: int | None, in_chans: int | None, pretrained: bool, options: dict[str, Any]
) -> nn.Module:
    builder = _REGISTRY[name]
    params = inspect.signature(builder).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    accepted = [p for p in params if p not in ("in_features", "in_chans", "pretrained")]
    unknown = [key for key in options if key not in accepted]
    if unknown and not takes_any:
        hints = [
            f"{key!r} (did you mean {close[0]!r}?)"
            if (close := difflib.get_close_matches(key, accepted, n=1))
            else repr(key)
            for key in unknown
        ]
        raise ConfigError(
            f"backbone {name!r} does not accept the option(s) {', '.join(hints)}. "
            f"It accepts: {format_examples(accepted, limit=20)}."
        )
    return builder(in_features=in_features, in_chans=in_chans, pretrained=pretrained, **options)


def _create_timm(
    name: str, *, in_features: int | None, in_chans: int | None, pretrained: bool, options: dict[str, Any]
) -> nn.Module:
    import timm

    if not timm.is_model(name):
        close = difflib.get_close_matches(name, list(_REGISTRY) + timm.list_models(), n=3, cutoff=0.0)
        raise ConfigError(
            f"unknown backbone {name!r}. Closest names: {format_examples(close)}. "
            "See `labelwise.models.list_backbones(pattern)` for every name (ours and timm's)."
        )
    if in_features is not None:
        raise ConfigError(
            f"in_features={in_features!r} was given, but {name!r} is a timm image model that takes "
            "(N, in_chans, H, W) images. Use a tabular backbone such as 'mlp' for tables, or drop in_features."
        )
    options = dict(options)
    if pretrained:
        overlay = dict(options.pop("pretrained_cfg_overlay", None) or {})
        overlay.setdefault("file", str(_local_weights(name, overlay)))
        options["pretrained_cfg_overlay"] = overlay
    try:
        return timm.create_model(name, pretrained=pretrained, num_classes=0, in_chans=in_chans or 3, **options)
    except TypeError as err:
        raise ConfigError(f"timm model {name!r} does not accept these options: {err}.") from err


def _local_weights(name: str, overlay: dict[str, Any]) -> Path:
    """Path of locally stored pretrained weights for the timm model ``name``, never touching the network."""
    import timm

    if overlay.get("file"):
        path = Path(overlay["file"]).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"pretrained_cfg_overlay file={str(path)!r} does not exist; pass the path of the weights file."
            )
        return path
    cfg = timm.models.get_pretrained_cfg(name)
    candidates = _hf_cached(cfg) if cfg is not None else []
    if cfg is not None and cfg.url:
        # timm writes url downloads to <torch hub>/checkpoints/<file>; a (url, file) pair names the file itself.
        filename = cfg.url[1] if isinstance(cfg.url, tuple) else os.path.basename(cfg.url)
        candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / filename)
    for path in candidates:
        if path.is_file():
            return path
    repo = getattr(cfg, "hf_hub_id", None) or name
    raise ConfigError(
        f"pretrained weights for {name!r} are not available locally, and labelwise never downloads them. "
        f"Put them in the Hugging Face cache (`hf download {repo}` on a machine with network, then copy "
        "~/.cache/huggingface over), or pass `pretrained_cfg_overlay=dict(file='path/to/weights.safetensors')`; "
        "or use pretrained=False to train from scratch."
    )


def _hf_cached(cfg: Any) -> list[Path]:
    if not cfg.hf_hub_id:
        return []
    from huggingface_hub import try_to_load_from_cache

    repo_id, _, revision = str(cfg.hf_hub_id).partition("@")
    names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else []
    names += ["model.safetensors", "pytorch_model.bin", "open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    found = []
    for filename in names:
        hit = try_to_load_from_cache(repo_id, filename, revision=revision or None)
        if isinstance(hit, str):
            found.append(Path(hit))
    return found


def _check_num_features(backbone: nn.Module, name: str) -> None:
    width = getattr(backbone, "num_features", None)
    if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        raise ConfigError(
            f"backbone {name!r} has num_features={width!r}; expected a positive int, the width of the "
            "(N, num_features) features it outputs. Set `module.num_features` in the builder."
        )
