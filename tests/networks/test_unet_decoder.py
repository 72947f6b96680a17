"""The full-resolution ("unet") decoder block, its skips from the encoder, and what it changes in T2DNet."""

from __future__ import annotations

import hashlib
import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from t2d_monai.networks import DeepLabV3Plus, ResNetEncoder, T2DNet, UNetDecoder
from t2d_monai.networks.blocks import (
    DECODERS,
    ConcatSliceFusion,
    DeepLabV3PlusDecoder,
    DotSliceFusion,
    default_unet_channels,
    make_decoder,
)

SMALL = {"backbone": "resnet18", "decoder_channels": 32}

# output stride, input size, stage widths (None: defaults)
CASES = [(16, (33, 47), None), (8, (29, 38), (12, 6)), (32, (20, 21), None), (16, (1, 1), (4, 4))]


@pytest.mark.parametrize("output_stride,hw,stages", CASES)
def test_shapes_any_size(output_stride, hw, stages):
    enc = ResNetEncoder(2, "resnet18", output_stride).eval()
    dec = UNetDecoder((enc.stem_channels, enc.f1_channels), enc.f2_channels, 16, stages).eval()
    x = torch.randn(2, 2, *hw)
    with torch.no_grad():
        skips = enc.forward_early(x)
        assert skips[0].shape == (2, 64, math.ceil(hw[0] / 2), math.ceil(hw[1] / 2))
        torch.testing.assert_close(skips[1], enc.forward_f1(x))  # [-1] is f1
        y = dec(skips, enc.forward_f2(skips[1]), list(hw))
    width = (stages or default_unet_channels(16))[1]
    assert y.shape == (2, width, *hw) and dec.out_channels == width
    assert torch.isfinite(y).all()


def test_widths_and_structure():
    assert default_unet_channels(256) == (128, 64) and default_unet_channels(2) == (1, 1)
    dec = UNetDecoder((64, 256), 2048)  # resnet50 widths, defaults
    assert dec.stage_channels == [128, 64] and dec.out_channels == 64
    assert isinstance(dec.stride4, DeepLabV3PlusDecoder) and dec.stride4.out_channels == 256
    assert dec.stride2.fuse[0][0].in_channels == 128 + 64  # reduced stride-4 feature + stride-2 skip
    assert dec.stride1.fuse[0][0].in_channels == 64  # no skip at stride 1
    assert isinstance(make_decoder("deeplabv3plus", (64, 256), 2048), DeepLabV3PlusDecoder)
    assert make_decoder("unet", (64, 256), 2048, 256, (32, 16)).stage_channels == [32, 16]
    assert DECODERS == ("deeplabv3plus", "unet")


def test_encoder_state_dict_unchanged_by_the_early_features():
    enc = ResNetEncoder(3, "resnet18")
    assert not any(k.startswith(("stem", "forward")) for k in enc.state_dict())
    assert enc.stem_channels == 64 and enc.forward_stem(torch.randn(1, 3, 9, 8)).shape == (1, 64, 5, 4)


def _key_digest(module: torch.nn.Module) -> tuple[int, str]:
    keys = sorted(module.state_dict())
    return len(keys), hashlib.sha1("\n".join(keys).encode()).hexdigest()


def test_deeplabv3plus_checkpoint_keys_unchanged():
    """decoder="deeplabv3plus" (the default) keeps the state-dict keys of existing checkpoints (digests of 0.1.0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _key_digest(T2DNet(15)) == (365, "b7d5fcc48d1488d6361a9c774097250c45d35919")
        assert _key_digest(
            T2DNet(14, backbone="resnet18", attention="dot", decoder_channels=32, output_stride=8)
        ) == (164, "2e31c2447d535fa52e563282d3082ee526052418")
        assert _key_digest(T2DNet(6, backbone="resnet18", fusion="early", attention=None, aspp=True)) == (
            160,
            "505ba218efba968c92f428c77467b6709701b804",
        )
        assert _key_digest(DeepLabV3Plus(3, 2, backbone="resnet18")) == (146, "04dd27de3cdc51a19a034885853cf66886f821cf")


def test_unet_adds_only_its_own_modules():
    paper = set(T2DNet(12, **SMALL).state_dict())
    unet = set(T2DNet(12, decoder="unet", **SMALL).state_dict())
    shared = {k for k in paper if not k.startswith("decoder.")}
    assert shared <= unet  # encoder, compression, head and SSA under the same names
    added = {k.split(".")[0] + "." + k.split(".")[1] for k in unet - shared}
    assert added == {"compress_stem.0", "compress_stem.1", "decoder.stride4", "decoder.stride2", "decoder.stride1"}


def test_esm_compresses_the_stride2_skip_like_f1():
    net = T2DNet(12, decoder="unet", **SMALL)  # 4 groups
    first, second = net.compress_stem[0][0], net.compress_stem[1][0]
    assert (first.in_channels, first.out_channels, second.out_channels) == (4 * 64, 2 * 64, 64)
    assert net.head.block.query.in_channels == 64  # SSA's O_g stays the group's f1 feature
    assert net.head.conv.in_channels == net.decoder.out_channels == 24  # U's width: max(32 // 4, 2 * 12 slices)
    assert net.decoder.input_channels == 12  # the stride-1 skip: the groups' slices
    early = T2DNet(6, fusion="early", attention=None, decoder="unet", **SMALL)
    assert isinstance(early.compress_stem, torch.nn.Identity) and isinstance(early.compress, torch.nn.Identity)
    custom = T2DNet(6, decoder="unet", unet_channels=(24, 12), **SMALL)
    assert custom.decoder.stage_channels == [24, 12] and custom.head.conv.in_channels == 12


@pytest.mark.parametrize("block_type", [ConcatSliceFusion, DotSliceFusion])
def test_concat_and_dot_resize_the_group_feature_to_u(block_type):
    torch.manual_seed(0)
    block = block_type(5, 7).eval()
    u, o = torch.randn(2, 7, 33, 47), torch.randn(2, 5, 9, 12)
    with torch.no_grad():
        expected = block(u, F.interpolate(o, size=[33, 47], mode="bilinear", align_corners=False))
        torch.testing.assert_close(block(u, o), expected)
        assert block(u, o).shape == (2, 7, 33, 47)


def test_deeplabv3plus_unet_gradients_and_onnx(tmp_path, onnx_matches_eager):
    torch.manual_seed(0)
    net = DeepLabV3Plus(2, 3, backbone="resnet18", decoder="unet", decoder_channels=16).train()
    y = net(torch.randn(2, 2, 29, 38))
    assert y.shape == (2, 3, 29, 38)
    (y * torch.randn_like(y)).sum().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing
    onnx_matches_eager(net, torch.randn(1, 2, 29, 38), tmp_path)


def test_ill_arg():
    for bad in ((64,), (64, 0), (64, 2.5), "ab", 64, (True, 64)):
        with pytest.raises(ValueError, match="skip_channels"):
            UNetDecoder(bad, 512)
        with pytest.raises(ValueError, match="stage_channels"):
            UNetDecoder((64, 64), 512, 32, bad)
        with pytest.raises(ValueError, match="unet_channels"):
            make_decoder("unet", (64, 64), 512, 32, bad)
    with pytest.raises(ValueError, match="deeplabv3plus"):
        make_decoder("unet3d", (64, 64), 512)
    dec = UNetDecoder((64, 64), 512, 16)
    with pytest.raises(ValueError, match="2 skips"):
        dec([torch.randn(1, 64, 4, 4)], torch.randn(1, 512, 1, 1), [8, 8])


def test_input_slices_are_a_stride1_skip():
    """With input_channels the stride-1 stage sees the input itself: one input pixel reaches the output there."""
    dec = UNetDecoder((64, 64), 512, 16, input_channels=3).eval()
    x = torch.zeros(1, 3, 17, 23, requires_grad=True)
    skips = [x, torch.randn(1, 64, 9, 12), torch.randn(1, 64, 5, 6)]
    y = dec(skips, torch.randn(1, 512, 2, 2), [17, 23])
    assert y.shape == (1, dec.out_channels, 17, 23)
    y[0, :, 8, 11].sum().backward()
    grad = x.grad.abs().sum(1)[0]
    assert grad[8, 11] > 0 and grad[0, 0] == 0  # the 3x3 convs reach 2 pixels, not the corner
    with pytest.raises(ValueError, match="3 skips"):
        dec(skips[1:], torch.randn(1, 512, 2, 2), [17, 23])
    with pytest.raises(ValueError, match="input_channels"):
        UNetDecoder((64, 64), 512, 16, input_channels=-1)
