"""A network = backbone + linear head sized by the Task, and the spec that rebuilds it for an artifact."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from labelwise.errors import ConfigError
from labelwise.models.ensemble import Ensemble
from labelwise.models.registry import create_backbone
from labelwise.task import Task

__all__ = ["ModelSpec", "Network", "backbone_and_head", "build_network", "create_network"]


class Network(nn.Module):
    """``logits = head(backbone(x))``: features ``(N, num_features)``, then logits ``(N, task.head_width)``.

    Args:
        backbone: maps a batch to ``(N, num_features)`` float features.
        num_features: the backbone's feature width.
        head_width: number of logits (``task.head_width``).
    """

    def __init__(self, backbone: nn.Module, *, num_features: int, head_width: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(num_features, head_width)
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, head_width)`` float for a batch ``x``."""
        return self.head(self.backbone(x))  # type: ignore[no-any-return]


def backbone_and_head(network: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """The backbone and the linear head of a `Network`: what a large head's loss and its ranked outputs read.

    Raises:
        ConfigError: ``network`` is not a `Network` (a user module has no separate head to chunk).
    """
    if not isinstance(network, Network):
        raise ConfigError(
            f"a large head's loss (--loss chunked / sampled) computes the head from the backbone's features, so it "
            f"needs a labelwise Network (backbone + linear head); got {type(network).__name__}. Build it with "
            "`labelwise.models.build_network(backbone, task)`, or use the full loss."
        )
    return network.backbone, network.head


def build_network(backbone: nn.Module, task: Task, *, example_input: torch.Tensor | None = None) -> Network:
    """Put a linear head of width ``task.head_width`` on ``backbone``.

    Args:
        backbone: any module mapping a batch to ``(N, F)`` features; ``F`` comes from its ``num_features``
            attribute, else from one forward pass on ``example_input``.
        task: the Task whose logits the network outputs.
        example_input: a batch of real or dummy inputs, e.g. ``torch.zeros(2, 3, 32, 32)``; used (in eval mode,
            without gradients) to find ``F`` or to check it.

    Raises:
        ConfigError: ``F`` cannot be found, the backbone outputs other than ``(N, F)``, or ``num_features``
            disagrees with the output on ``example_input``.

    Example:
        >>> from labelwise.task import Task
        >>> task = Task(kind="multiclass", classes=("a", "b", "c"))
        >>> net = build_network(nn.Sequential(nn.Flatten(), nn.Linear(8, 5)), task, example_input=torch.zeros(1, 2, 4))
        >>> net(torch.zeros(6, 2, 4)).shape
        torch.Size([6, 3])
    """
    declared = getattr(backbone, "num_features", None)
    if declared is not None and (not isinstance(declared, int) or isinstance(declared, bool) or declared < 1):
        raise ConfigError(
            f"backbone.num_features={declared!r}; expected a positive int, the width of its (N, F) features."
        )
    measured = _dry_run_width(backbone, example_input) if example_input is not None else None
    if declared is None and measured is None:
        raise ConfigError(
            f"cannot size the head: {type(backbone).__name__} has no `num_features` attribute and no example input "
            "was given. Set `backbone.num_features = F` (the width of its (N, F) output), or pass "
            "`example_input=` a batch it accepts."
        )
    if declared is not None and measured is not None and declared != measured:
        raise ConfigError(
            f"backbone.num_features={declared} but the backbone outputs {measured} features on the example input; "
            "fix `num_features` to the width of its (N, F) output."
        )
    width = declared if declared is not None else measured
    assert width is not None  # narrowed above: one of them is set
    return Network(backbone, num_features=width, head_width=task.head_width)


def _dry_run_width(backbone: nn.Module, example_input: torch.Tensor) -> int:
    was_training = backbone.training
    backbone.eval()  # BatchNorm cannot run a batch of one in training mode, and must not update its statistics
    try:
        with torch.no_grad():
            out = backbone(example_input)
    except Exception as err:
        raise ConfigError(
            f"the backbone failed on the example input of shape {tuple(example_input.shape)}: {err}. "
            "Pass an example shaped like one training batch."
        ) from err
    finally:
        backbone.train(was_training)
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(
            f"the backbone outputs {shape} on the example input; a head needs (N, F) features. End the backbone "
            "with pooling and flattening, e.g. nn.AdaptiveAvgPool2d(1) + nn.Flatten()."
        )
    return int(out.shape[1])


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """What rebuilds the exact architecture before an artifact's weights are loaded into it.

    Args:
        backbone: a name `create_backbone` accepts.
        in_features: input width, tabular backbones.
        in_chans: input channels, image backbones.
        image_size: side of the square images the model was trained on (kept for preprocessing).
        pretrained: whether training started from pretrained weights.
        options: extra builder keyword arguments; JSON values only (tuples come back as lists).
        members: networks of this architecture averaged (`labelwise.models.ensemble.Ensemble`); 1: one network.

    Example:
        >>> spec = ModelSpec(backbone="mlp", in_features=30, options={"hidden": [64]})
        >>> ModelSpec.from_dict(spec.to_dict()) == spec
        True
    """

    backbone: str
    in_features: int | None = None
    in_chans: int | None = None
    image_size: int | None = None
    pretrained: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    members: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.backbone, str) or not self.backbone:
            raise ConfigError(
                f"ModelSpec.backbone={self.backbone!r}; expected a backbone name such as 'mlp' or 'resnet18'."
            )
        for name in ("in_features", "in_chans", "image_size", "members"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ConfigError(f"ModelSpec.{name}={value!r}; expected a positive int or None.")
        try:
            options = json.loads(json.dumps(dict(self.options)))
        except (TypeError, ValueError) as err:
            raise ConfigError(
                f"ModelSpec.options must hold JSON values only (numbers, strings, lists): {err}."
            ) from err
        object.__setattr__(self, "options", options)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; `from_dict` inverts it."""
        return {
            "backbone": self.backbone,
            "in_features": self.in_features,
            "in_chans": self.in_chans,
            "image_size": self.image_size,
            "pretrained": self.pretrained,
            "options": dict(self.options),
            "members": self.members,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """Rebuild a spec written by `to_dict`; unknown keys raise `ConfigError`."""
        known = {"backbone", "in_features", "in_chans", "image_size", "pretrained", "options", "members"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown ModelSpec keys {unknown!r}; was this written by a newer labelwise?")
        return cls(**dict(data))


def create_network(spec: ModelSpec, task: Task, *, pretrained: bool | None = None) -> Network | Ensemble:
    """Build backbone + head from a spec; ``spec.members`` of them in an `Ensemble` when more than one.

    Args:
        spec: the architecture.
        task: sizes the head.
        pretrained: overrides ``spec.pretrained``; pass False when weights are loaded right after (an artifact).

    Example:
        >>> from labelwise.task import Task
        >>> net = create_network(ModelSpec(backbone="cnn", in_chans=1), Task(kind="binary", classes=(0, 1)))
        >>> net(torch.zeros(2, 1, 16, 16)).shape
        torch.Size([2, 1])
    """
    if spec.members > 1:
        one = replace(spec, members=1)
        return Ensemble([create_network(one, task, pretrained=pretrained) for _ in range(spec.members)])
    backbone = create_backbone(
        spec.backbone,
        in_features=spec.in_features,
        in_chans=spec.in_chans,
        pretrained=spec.pretrained if pretrained is None else pretrained,
        **spec.options,
    )
    return build_network(backbone, task)
