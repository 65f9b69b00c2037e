"""The tabular MLP backbone."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from labelwise.errors import ConfigError
from labelwise.models import create_backbone
from labelwise.models.mlp import TabularMLP


@pytest.mark.parametrize("norm", ["layer", "batch", "none"])
@pytest.mark.parametrize("activation", ["gelu", "relu"])
def test_output_is_num_features_wide(norm: str, activation: str) -> None:
    net = create_backbone("mlp", in_features=7, hidden=[32, 16], norm=norm, activation=activation)
    assert net.num_features == 16
    assert net(torch.randn(5, 7)).shape == (5, 16)


def test_layer_norm_trains_on_a_batch_of_one() -> None:
    net = create_backbone("mlp", in_features=3, norm="layer").train()
    net(torch.randn(1, 3)).sum().backward()  # BatchNorm would raise here


def test_default_is_one_hidden_layer_linear_batchnorm_gelu_dropout() -> None:
    net = TabularMLP(4)
    kinds = [type(m) for m in net.layers]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.GELU, nn.Dropout] and net.num_features == 256


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({}, r"needs in_features, the number of input columns", id="no-in-features"),
        pytest.param({"in_features": 3, "in_chans": 3}, r"in_chans=3 .*tabular 'mlp'.*use 'cnn'", id="in-chans"),
        pytest.param(
            {"in_features": 3, "pretrained": True}, r"no pretrained weights; pass pretrained=False", id="pretrained"
        ),
        pytest.param({"in_features": 0}, r"needs in_features.*got 0", id="zero-features"),
        pytest.param(
            {"in_features": 3, "hidden": []}, r"hidden=\(\); expected one or more positive ints", id="no-hidden"
        ),
        pytest.param({"in_features": 3, "hidden": [8, -1]}, r"hidden=\(8, -1\); expected", id="negative-hidden"),
        pytest.param(
            {"in_features": 3, "dropout": 1.0}, r"dropout=1.0; expected a probability in \[0, 1\)", id="dropout"
        ),
        pytest.param(
            {"in_features": 3, "norm": "group"}, r"norm='group'; expected 'layer', 'batch' or 'none'", id="norm"
        ),
        pytest.param(
            {"in_features": 3, "activation": "tanh"}, r"activation='tanh'; expected one of \['gelu', 'relu'\]", id="act"
        ),
    ],
)
def test_bad_options_raise(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_backbone("mlp", **kwargs)  # type: ignore[arg-type]
