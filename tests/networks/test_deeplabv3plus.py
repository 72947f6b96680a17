from __future__ import annotations

import pytest
import torch

from t2d_monai.networks import DeepLabV3Plus

CASES = [
    ({"in_channels": 1, "out_channels": 2}, (1, 1, 33, 47)),
    ({"in_channels": 3, "out_channels": 1, "aspp": True}, (2, 3, 31, 16)),
    ({"in_channels": 12, "out_channels": 3, "output_stride": 8, "decoder_channels": 32}, (1, 12, 20, 20)),
    ({"in_channels": 1, "out_channels": 2, "decoder": "unet", "decoder_channels": 32}, (1, 1, 33, 47)),
    ({"in_channels": 3, "out_channels": 1, "decoder": "unet", "aspp": True, "unet_channels": (8, 4)}, (2, 3, 29, 38)),
    ({"in_channels": 5, "out_channels": 2, "decoder": "unet", "output_stride": 32, "decoder_channels": 16}, (1, 5, 21, 20)),
    ({"in_channels": 6, "out_channels": 1, "decoder": "unet", "encoder_depth": 4, "decoder_channels": 16},
     (1, 6, 21, 20)),
    ({"in_channels": 1, "out_channels": 2, "encoder_depth": 4, "decoder_channels": 32}, (1, 1, 33, 47)),
]


@pytest.mark.parametrize("kwargs,shape", CASES)
def test_shape_and_script(kwargs, shape, tmp_path):
    net = DeepLabV3Plus(backbone="resnet18", **kwargs).eval()
    x = torch.randn(*shape)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (shape[0], kwargs["out_channels"], shape[2], shape[3])
    assert net.decoder_name == kwargs.get("decoder", "deeplabv3plus")
    assert net.encoder.depth == kwargs.get("encoder_depth", 5)
    torch.jit.save(torch.jit.script(net), tmp_path / "net.pt")
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(tmp_path / "net.pt")(x), y, atol=1e-5, rtol=1e-5)


def test_ill_arg():
    with pytest.raises(ValueError, match="out_channels"):
        DeepLabV3Plus(1, 0, backbone="resnet18")
    with pytest.raises(ValueError, match="resnet"):
        DeepLabV3Plus(1, 1, backbone="vgg16")
    with pytest.raises(ValueError, match="deeplabv3plus.*unet|unet.*deeplabv3plus"):
        DeepLabV3Plus(1, 1, backbone="resnet18", decoder="Unet++")
    with pytest.raises(ValueError, match="unet_channels"):
        DeepLabV3Plus(1, 1, backbone="resnet18", decoder="unet", unet_channels=(8, -1))
