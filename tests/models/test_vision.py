"""The compact CNN backbone."""

from __future__ import annotations

import pytest
import torch

from labelwise.errors import ConfigError
from labelwise.models import create_backbone


@pytest.mark.parametrize("in_chans", [1, 3])
@pytest.mark.parametrize("size", [16, 17, 32, 45, 64])
def test_any_size_from_16_gives_num_features(in_chans: int, size: int) -> None:
    net = create_backbone("cnn", in_chans=in_chans).train()
    features = net(torch.randn(2, in_chans, size, size))
    assert features.shape == (2, net.num_features) == (2, 96)
    features.sum().backward()


def test_non_square_images_and_custom_widths() -> None:
    net = create_backbone("cnn", in_chans=3, widths=[8, 16, 32, 64], dropout=0.1)
    assert net(torch.randn(2, 3, 40, 24)).shape == (2, 64)


def test_avgmax_pooling_puts_the_mean_and_the_maximum_side_by_side() -> None:
    net = create_backbone("cnn", in_chans=1, widths=[8, 16], pool="avgmax").eval()
    x = torch.randn(2, 1, 32, 32)
    features = net(x)
    maps = net.features[:-2](x)  # everything before the pooling and the dropout
    assert net.num_features == 32 and features.shape == (2, 32)
    torch.testing.assert_close(features, torch.cat([maps.mean(dim=(2, 3)), maps.amax(dim=(2, 3))], dim=1))


def test_default_channels_are_rgb() -> None:
    assert create_backbone("cnn")(torch.zeros(1, 3, 16, 16)).shape == (1, 96)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"in_chans": 2}, r"in_chans 1 \(grayscale\) or 3 \(RGB\); got 2", id="chans"),
        pytest.param(
            {"in_features": 30}, r"in_features=30 .*image backbone 'cnn'; for tables use 'mlp'", id="features"
        ),
        pytest.param(
            {"pretrained": True}, r"no pretrained weights; pass pretrained=False, or a timm model", id="pretrained"
        ),
        pytest.param({"widths": []}, r"widths=\(\); expected one or more positive ints", id="widths"),
        pytest.param({"dropout": -0.1}, r"dropout=-0.1; expected a probability", id="dropout"),
        pytest.param({"pool": "max"}, r"pool='max'; expected one of 'avg', 'avgmax'", id="pool"),
    ],
)
def test_bad_options_raise(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_backbone("cnn", **kwargs)  # type: ignore[arg-type]
