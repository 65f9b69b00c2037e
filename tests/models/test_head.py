"""Backbone + head, the user's own backbones, and the spec that rebuilds an architecture."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from _factories import make_task
from labelwise.errors import ConfigError
from labelwise.models import ModelSpec, Network, build_network, create_backbone, create_network
from labelwise.task import TaskKind


class _NoWidth(nn.Module):
    """A user's backbone that does not say how wide its features are."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # type: ignore[no-any-return]


def test_head_width_follows_the_task(kind: TaskKind) -> None:
    task = make_task(kind)
    net = build_network(create_backbone("mlp", in_features=6, hidden=[12]), task)
    assert net(torch.randn(4, 6)).shape == (4, task.head_width)
    assert isinstance(net.head, nn.Linear) and net.head.in_features == 12 == net.num_features


def test_own_backbone_width_from_a_dry_run() -> None:
    backbone = _NoWidth().train()
    running_mean = backbone.body[1].running_mean.clone()
    net = build_network(backbone, make_task("multiclass"), example_input=torch.randn(1, 3, 8, 8))
    assert backbone.training  # the dry run put it back in training mode
    torch.testing.assert_close(backbone.body[1].running_mean, running_mean, rtol=0, atol=0)  # statistics untouched
    assert net.num_features == 5 and net(torch.randn(2, 3, 8, 8)).shape == (2, 4)


def test_own_backbone_with_num_features_needs_no_example() -> None:
    backbone = _NoWidth()
    backbone.num_features = 5
    assert build_network(backbone, make_task("binary"))(torch.randn(2, 3, 8, 8)).shape == (2, 1)


def test_own_backbone_without_width_or_example() -> None:
    with pytest.raises(
        ConfigError, match=r"_NoWidth has no `num_features`.*Set `backbone.num_features = F`.*example_input="
    ):
        build_network(_NoWidth(), make_task("binary"))


def test_declared_width_must_match_the_output() -> None:
    backbone = _NoWidth()
    backbone.num_features = 7
    with pytest.raises(ConfigError, match=r"num_features=7 but the backbone outputs 5 features.*fix `num_features`"):
        build_network(backbone, make_task("binary"), example_input=torch.randn(1, 3, 8, 8))


def test_bad_declared_width() -> None:
    backbone = _NoWidth()
    backbone.num_features = "5"
    with pytest.raises(ConfigError, match=r"backbone.num_features='5'; expected a positive int"):
        build_network(backbone, make_task("binary"))


def test_feature_maps_are_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"outputs \(1, 4, 6, 6\).*needs \(N, F\).*AdaptiveAvgPool2d\(1\) \+ nn.Flatten\(\)"
    ):
        build_network(nn.Conv2d(3, 4, 3), make_task("binary"), example_input=torch.randn(1, 3, 8, 8))


def test_example_the_backbone_cannot_take() -> None:
    with pytest.raises(
        ConfigError, match=r"failed on the example input of shape \(1, 2\).*shaped like one training batch"
    ):
        build_network(nn.Linear(3, 4), make_task("binary"), example_input=torch.randn(1, 2))


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(ModelSpec(backbone="mlp", in_features=9, options={"hidden": [16, 8], "dropout": 0.0}), id="mlp"),
        pytest.param(ModelSpec(backbone="cnn", in_chans=1, image_size=32, options={"widths": [8, 16]}), id="cnn"),
        pytest.param(ModelSpec(backbone="resnet18", in_chans=3, image_size=64), id="timm"),
    ],
)
def test_spec_round_trips_through_json_and_rebuilds_the_same_architecture(spec: ModelSpec) -> None:
    task = make_task("multilabel")
    again = ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    first, second = create_network(spec, task), create_network(again, task)
    assert isinstance(first, Network)
    second.load_state_dict(first.state_dict())  # same names and shapes: an artifact's weights fit
    shape = (2, spec.in_features) if spec.in_features else (2, spec.in_chans or 3, spec.image_size, spec.image_size)
    first.eval(), second.eval()
    torch.testing.assert_close(first(torch.ones(shape)), second(torch.ones(shape)), rtol=0, atol=0)


def test_create_network_never_loads_weights_when_told_not_to(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = ModelSpec(backbone="resnet18", in_chans=1, pretrained=True)
    net = create_network(spec, make_task("binary"), pretrained=False)  # an artifact loads its own weights
    assert net.eval()(torch.zeros(1, 1, 32, 32)).shape == (1, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"backbone": ""}, r"ModelSpec.backbone=''; expected a backbone name", id="empty-name"),
        pytest.param(
            {"backbone": "mlp", "in_features": 0}, r"ModelSpec.in_features=0; expected a positive int", id="features"
        ),
        pytest.param({"backbone": "cnn", "image_size": True}, r"ModelSpec.image_size=True; expected", id="bool-size"),
        pytest.param(
            {"backbone": "mlp", "options": {"act": nn.ReLU}}, r"options must hold JSON values only", id="not-json"
        ),
    ],
)
def test_bad_spec(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ModelSpec(**kwargs)  # type: ignore[arg-type]


def test_spec_from_dict_refuses_unknown_keys() -> None:
    with pytest.raises(ConfigError, match=r"unknown ModelSpec keys \['depth'\]; was this written by a newer labelwise"):
        ModelSpec.from_dict({"backbone": "mlp", "depth": 3})
