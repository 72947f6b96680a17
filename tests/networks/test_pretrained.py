from __future__ import annotations

import pytest
import torch

from t2d_monai.networks import ResNetEncoder, adapt_input_conv, adapt_resnet_state_dict


def _torchvision_format(backbone: str) -> dict[str, torch.Tensor]:
    """A state dict laid out like torchvision's ``resnet*``: 3-channel stem, ``fc`` classifier."""
    torch.manual_seed(0)
    sd = {k: v.clone() for k, v in ResNetEncoder(3, backbone).state_dict().items() if "num_batches" not in k}
    for k in sd:
        if k.endswith("running_var") or k.endswith("running_mean") or ".bn" in k or k.startswith("bn1"):
            sd[k] = torch.rand_like(sd[k]) + 0.5
    sd["fc.weight"] = torch.randn(1000, ResNetEncoder(3, backbone).f2_channels)
    sd["fc.bias"] = torch.randn(1000)
    return sd


@pytest.mark.parametrize("in_channels", [1, 2, 3, 12])
def test_adapt_input_conv(in_channels):
    w = torch.randn(8, 3, 7, 7)
    out = adapt_input_conv(w, in_channels)
    assert out.shape == (8, in_channels, 7, 7)
    # a constant-across-channels input gives the same response as with the RGB kernel
    torch.testing.assert_close(out.sum(1), w.sum(1), atol=1e-5, rtol=1e-5)
    if in_channels == 3:
        torch.testing.assert_close(out, w)
    assert out.data_ptr() != w.data_ptr()


def test_adapt_state_dict_is_pure():
    sd = {
        "module.conv1.weight": torch.randn(4, 3, 7, 7),
        "module.fc.weight": torch.randn(2, 4),
        "bn1.bias": torch.zeros(4),
    }
    before = {k: v.clone() for k, v in sd.items()}
    out = adapt_resnet_state_dict(sd, 1)
    assert set(out) == {"conv1.weight", "bn1.bias"} and out["conv1.weight"].shape == (4, 1, 7, 7)
    assert set(sd) == set(before) and all(torch.equal(sd[k], before[k]) for k in sd)
    with pytest.raises(KeyError, match="conv1.weight"):
        adapt_resnet_state_dict({"bn1.bias": torch.zeros(4)}, 1)


@pytest.mark.parametrize("in_channels", [1, 3, 5])
def test_load_local_file(tmp_path, in_channels):
    sd = _torchvision_format("resnet18")
    path = tmp_path / "resnet18.pth"
    torch.save(sd, path)
    enc = ResNetEncoder(in_channels, "resnet18", pretrained=str(path))
    loaded = enc.state_dict()
    torch.testing.assert_close(loaded["layer4.1.conv2.weight"], sd["layer4.1.conv2.weight"])
    torch.testing.assert_close(loaded["bn1.running_var"], sd["bn1.running_var"])
    torch.testing.assert_close(loaded["conv1.weight"], adapt_input_conv(sd["conv1.weight"], in_channels))
    # wrapped checkpoints ({"state_dict": ...}, "module." prefixes) load too
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "wrapped.pth")
    enc2 = ResNetEncoder(in_channels, "resnet18", pretrained=tmp_path / "wrapped.pth")
    torch.testing.assert_close(enc2.state_dict()["conv1.weight"], loaded["conv1.weight"])


def test_load_into_depth_4(tmp_path):
    """The full torchvision file initialises an encoder without layer4: layer4 is left out, nothing else."""
    sd = _torchvision_format("resnet18")
    torch.save(sd, tmp_path / "resnet18.pth")
    enc = ResNetEncoder(3, "resnet18", depth=4, pretrained=tmp_path / "resnet18.pth")
    loaded = enc.state_dict()
    assert not any(k.startswith("layer4.") for k in loaded)
    torch.testing.assert_close(loaded["layer3.1.conv2.weight"], sd["layer3.1.conv2.weight"])
    torch.testing.assert_close(loaded["conv1.weight"], sd["conv1.weight"])


def test_ill_arg(tmp_path):
    with pytest.raises(FileNotFoundError, match="Nothing is downloaded"):
        ResNetEncoder(1, "resnet18", pretrained=str(tmp_path / "missing.pth"))
    torch.save(_torchvision_format("resnet18"), tmp_path / "r18.pth")
    with pytest.raises(ValueError, match="does not match"):
        ResNetEncoder(1, "resnet34", pretrained=str(tmp_path / "r18.pth"))
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="state dict"):
        ResNetEncoder(1, "resnet18", pretrained=str(tmp_path / "list.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not be read"):
        ResNetEncoder(1, "resnet18", pretrained=str(tmp_path / "junk.pth"))
    with pytest.raises(ValueError):
        adapt_input_conv(torch.randn(3, 7, 7), 1)
    with pytest.raises(ValueError):
        adapt_input_conv(torch.randn(4, 3, 7, 7), 0)
