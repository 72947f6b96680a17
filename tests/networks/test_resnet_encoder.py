from __future__ import annotations

import math

import pytest
import torch

from t2d_monai.networks import RESNET_BACKBONES, ResNetEncoder, SwitchNorm2d

# backbone, output_stride, (f1 channels, f2 channels)
CASES = [
    ("resnet18", 16, (64, 512)),
    ("resnet18", 8, (64, 512)),
    ("resnet34", 16, (64, 512)),
    ("resnet18", 32, (64, 512)),
]


@pytest.mark.parametrize("backbone,stride,channels", CASES)
def test_shapes(backbone, stride, channels):
    enc = ResNetEncoder(2, backbone, stride)
    low, high = enc(torch.randn(1, 2, 33, 47))
    assert (enc.f1_channels, enc.f2_channels) == channels
    assert low.shape == (1, channels[0], math.ceil(33 / 4), math.ceil(47 / 4))
    assert high.shape[1] == channels[1]
    expected = (math.ceil(33 / stride), math.ceil(47 / stride))
    assert tuple(high.shape[2:]) == expected
    x = torch.ones(1, 2, 33, 47)
    torch.testing.assert_close(enc.forward_f2(enc.forward_f1(x)), enc(x)[1])


@pytest.mark.parametrize(
    "backbone,stride,f2_channels", [("resnet18", 16, 256), ("resnet18", 8, 256), ("resnet50", 16, 1024)]
)
def test_depth_4_stops_after_layer3(backbone, stride, f2_channels):
    full, short = ResNetEncoder(2, backbone, stride), ResNetEncoder(2, backbone, stride, depth=4)
    assert short.depth == 4 and short.f2_channels == f2_channels and short.f1_channels == full.f1_channels
    assert not any(k.startswith("layer4.") for k in short.state_dict())
    # every other parameter is the full encoder's, by name and shape
    assert {k: v.shape for k, v in short.state_dict().items()} == {
        k: v.shape for k, v in full.state_dict().items() if not k.startswith("layer4.")
    }
    short.load_state_dict({k: v for k, v in full.state_dict().items() if not k.startswith("layer4.")})
    x = torch.randn(1, 2, 33, 47)
    low, high = short.eval()(x)
    assert high.shape == (1, f2_channels, math.ceil(33 / stride), math.ceil(47 / stride))
    with torch.no_grad():  # f2 at depth 4 is the full encoder's layer3 output
        torch.testing.assert_close(high, full.eval().layer3(full.layer2(full.forward_f1(x))))
    torch.testing.assert_close(low, full.forward_f1(x))


def test_resnet50_dilation_and_names():
    enc = ResNetEncoder(3, "resnet50", 8)
    assert (enc.f1_channels, enc.f2_channels) == (256, 2048)
    assert enc.layer3[1].conv2.dilation == (2, 2) and enc.layer4[1].conv2.dilation == (4, 4)
    assert enc.layer3[0].conv2.stride == (1, 1)
    # torchvision parameter names: a few keys users rely on when loading ImageNet weights
    keys = set(enc.state_dict())
    assert {"conv1.weight", "bn1.running_mean", "layer1.0.downsample.0.weight", "layer4.2.conv3.weight"} <= keys
    low, high = enc(torch.randn(1, 3, 32, 32))
    assert low.shape == (1, 256, 8, 8) and high.shape == (1, 2048, 4, 4)


def test_norm_option():
    enc = ResNetEncoder(1, "resnet18", norm="switchable")
    assert isinstance(enc.bn1, SwitchNorm2d) and isinstance(enc.layer2[0].downsample[1], SwitchNorm2d)
    assert enc(torch.randn(2, 1, 17, 19))[1].shape[1] == 512


def test_registry_untouched():
    before = {k: dict(v) for k, v in RESNET_BACKBONES.items()}
    ResNetEncoder(1, "resnet18")
    assert before == RESNET_BACKBONES


def test_ill_arg():
    with pytest.raises(ValueError, match="resnet50"):
        ResNetEncoder(1, "resnet51")
    with pytest.raises(ValueError, match="16"):
        ResNetEncoder(1, "resnet18", output_stride=4)
    with pytest.raises(ValueError, match="in_channels"):
        ResNetEncoder(0, "resnet18")
    with pytest.raises(ValueError, match="output stride 32 needs depth=5"):
        ResNetEncoder(1, "resnet18", output_stride=32, depth=4)
    with pytest.raises(ValueError, match="depth"):
        ResNetEncoder(1, "resnet18", depth=3)
