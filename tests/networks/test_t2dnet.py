from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F

from t2d_monai.networks import GroupCacheNetwork, T2DNet, group_starts
from t2d_monai.networks.blocks import GroupSliceHead, SSAGroupSliceHead
from t2d_monai.utils import window_starts

COMBOS = [("early", None), ("esm", None), ("esm", "concat"), ("esm", "dot"), ("esm", "ssa")]
SLICES = [1, 3, 6, 12, 15, 24]
DECODERS = ["deeplabv3plus", "unet"]
SMALL = {"backbone": "resnet18", "decoder_channels": 32}
HW = (33, 47)


def _net(num_slices: int, fusion: str, attention: str | None, out_channels: int = 2, **kwargs) -> T2DNet:
    torch.manual_seed(0)
    shrinks = fusion == "esm" and num_slices < kwargs.get("group_size", 3)
    ctx = pytest.warns(UserWarning, match="one group") if shrinks else contextlib.nullcontext()
    with ctx:
        return T2DNet(num_slices, out_channels, fusion=fusion, attention=attention, **{**SMALL, **kwargs})


def _encode(net: T2DNet, x: torch.Tensor) -> list[list[torch.Tensor]]:
    """Every group's encoding (split forward, ESM)."""
    return [net.encode_group(x[:, s : s + net.group_size]) for s in net.group_starts]


def _fused_feature(net: T2DNet, feats: list[list[torch.Tensor]], size: list[int]) -> torch.Tensor:
    """U, the decoder output the head sees, from the groups' encodings (as decode computes it)."""
    fused = net.compress(torch.cat([f[-1] for f in feats], 1))
    high = net.encoder.forward_f2(fused)
    if net.decoder_name == "unet":
        slices, stem = torch.cat([f[0] for f in feats], 1), net.compress_stem(torch.cat([f[1] for f in feats], 1))
        return net.decoder([slices, stem, fused], high, size)
    return net.decoder(fused, high)


@pytest.mark.parametrize("fusion,attention", COMBOS)
@pytest.mark.parametrize(
    "num_slices,decoder", [(k, "deeplabv3plus") for k in SLICES] + [(k, "unet") for k in (1, 6, 14)]
)
def test_shape(num_slices, fusion, attention, decoder):
    net = _net(num_slices, fusion, attention, decoder=decoder).eval()
    with torch.no_grad():
        y = net(torch.randn(1, num_slices, *HW))
    assert y.shape == (1, num_slices * 2, *HW)
    assert torch.isfinite(y).all()
    assert net.num_slices == num_slices and net.out_channels == 2 and net.fusion == fusion
    assert net.decoder_name == decoder and net.num_scales == (3 if decoder == "unet" else 1)
    assert net.supports_group_cache == (fusion == "esm")
    if fusion == "esm":
        assert net.group_size == min(3, num_slices)
        assert net.group_starts == window_starts(num_slices, net.group_size, net.group_size)
    assert isinstance(net, GroupCacheNetwork)


@pytest.mark.parametrize(
    "num_slices,size,expected",
    [(15, 3, [0, 3, 6, 9, 12]), (14, 3, [0, 3, 6, 9, 11]), (4, 3, [0, 1]), (3, 3, [0]), (5, 1, [0, 1, 2, 3, 4])],
)
def test_group_starts(num_slices, size, expected):
    assert window_starts(num_slices, size, size) == expected
    with pytest.warns(FutureWarning, match="window_starts"):
        assert group_starts(num_slices, size) == expected  # deprecated alias
    assert _net(num_slices, "esm", "ssa", group_size=size).group_starts == expected


def test_in_slices_is_a_deprecated_alias():
    with pytest.warns(FutureWarning, match="num_slices"):
        net = T2DNet(in_slices=6, **SMALL)
    assert net.num_slices == 6
    with pytest.warns(FutureWarning, match="num_slices"):
        assert net.in_slices == 6


def test_small_window_uses_one_group():
    net = _net(2, "esm", "ssa")
    assert net.group_size == 2 and net.group_starts == [0]
    assert net.encoder.conv1.in_channels == 2


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("fusion,attention", COMBOS[1:])
@pytest.mark.parametrize("num_slices", [14, 15, 2])
def test_split_forward_equals_forward(num_slices, fusion, attention, decoder):
    net = _net(num_slices, fusion, attention, decoder=decoder).eval()
    x = torch.randn(2, num_slices, 29, 38)
    with torch.no_grad():
        feats = _encode(net, x)
        assert all(len(f) == net.num_scales for f in feats)
        split = net.decode(feats, [29, 38])
        torch.testing.assert_close(split, net(x), atol=1e-5, rtol=0)
        # a group's encoding does not depend on the other rows of the batch (the inferer caches rows)
        one = net.encode_group(x[1:, -net.group_size :])
        for scale, row in zip(net.encode_group(x[:, -net.group_size :]), one):
            torch.testing.assert_close(scale[1:], row, atol=1e-5, rtol=1e-5)


def test_overlapping_groups_average_in_slice_order():
    """
    Channel s * out_channels + c is class c of slice s, predicted by the head's own row for (s, c) from the
    feature of the group holding s; slices of two groups get the mean logit.
    """
    net = _net(4, "esm", "dot", out_channels=2).eval()  # groups [0, 1, 2] and [1, 2, 3]
    assert net.head.conv.out_channels == 4 * 2  # one row per slice and class
    x = torch.randn(1, 4, 21, 18)
    with torch.no_grad():
        feats = _encode(net, x)
        u = _fused_feature(net, feats, [21, 18])
        preds = [net.head.conv(net.head.block(u, f[-1])) for f in feats]  # (1, 4 * 2, h, w) each: every row on Z_g
        expected = []
        for s in range(4):
            for c in range(2):
                maps = [p[:, s * 2 + c] for p, st in zip(preds, net.group_starts) if st <= s < st + 3]
                expected.append(torch.stack(maps).mean(0))
        expected = F.interpolate(torch.stack(expected, 1), size=[21, 18], mode="bilinear", align_corners=False)
        torch.testing.assert_close(net(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("num_slices,out_channels,decoder", [(14, 2, "deeplabv3plus"), (15, 1, "deeplabv3plus"), (14, 2, "unet")])
def test_ssa_head_eval_fast_path_equals_blocks(num_slices, out_channels, decoder):
    """
    In eval mode the SSA head folds attention, switchable norm and 1x1 conv into one map per sample: same logits
    (with the "unet" decoder U is at the input size and O_g at stride 4).
    """
    net = _net(num_slices, "esm", "ssa", out_channels=out_channels, decoder=decoder)
    ssa_norm = net.head.block.norm
    with torch.no_grad():  # a norm that is not the identity, with trained-looking running statistics
        for p in (ssa_norm.mean_weight, ssa_norm.var_weight, ssa_norm.weight, ssa_norm.bias, ssa_norm.running_mean):
            p.normal_()
        ssa_norm.running_var.uniform_(0.5, 2.0)
    net.eval()
    x = torch.randn(2, num_slices, 29, 38)
    with torch.no_grad():
        feats = _encode(net, x)
        u, f1 = _fused_feature(net, feats, [29, 38]), [f[-1] for f in feats]
        if decoder == "unet":
            assert u.shape[2:] == (29, 38) and f1[0].shape[2:] == (8, 10)
        torch.testing.assert_close(net.head(u, f1), net.head.forward_blocks(u, f1), atol=1e-5, rtol=1e-4)
    # other norms on the SSA output keep the plain blocks
    assert type(_net(6, "esm", "ssa", ssa_norm="instance").head) is GroupSliceHead
    assert type(net.head) is SSAGroupSliceHead


@pytest.mark.parametrize("decoder", DECODERS)
def test_ssa_starts_as_plain_esm(decoder):
    """SSA's output scale starts at zero (as non-local blocks): at initialisation ESM + SSA predicts like ESM."""
    net = _net(14, "esm", "ssa", decoder=decoder).eval()
    assert torch.count_nonzero(net.head.block.norm.weight) == 0
    x = torch.randn(2, 14, 29, 38)
    with torch.no_grad():
        feats = _encode(net, x)
        u, f1 = _fused_feature(net, feats, [29, 38]), [f[-1] for f in feats]
        plain = net.head.conv(u)  # the plain ESM head: every slice's row on the fused feature U
        torch.testing.assert_close(net.head(u, f1), plain, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(net.head.forward_blocks(u, f1), plain, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("fusion,attention", COMBOS)
def test_gradients_reach_every_parameter(fusion, attention, decoder):
    net = _net(5, fusion, attention, decoder=decoder).train()
    if attention == "ssa":  # its zero-initialised output scale holds the attention's gradient back until it moves
        with torch.no_grad():
            net.head.block.norm.weight.fill_(0.5)
    y = net(torch.randn(2, 5, 35, 30))
    (y * torch.randn_like(y)).sum().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("fusion,attention", COMBOS)
def test_torchscript(fusion, attention, decoder, tmp_path):
    net = _net(6, fusion, attention, decoder=decoder).eval()
    x = torch.randn(1, 6, *HW)
    torch.jit.save(torch.jit.script(net), tmp_path / "net.pt")
    loaded = torch.jit.load(tmp_path / "net.pt")
    with torch.no_grad():
        y = net(x)
        torch.testing.assert_close(loaded(x), y, atol=1e-5, rtol=1e-5)
        if net.supports_group_cache:
            feats = [loaded.encode_group(x[:, s : s + 3]) for s in net.group_starts]
            assert [len(f) for f in feats] == [net.num_scales] * len(net.group_starts)
            torch.testing.assert_close(loaded.decode(feats, [HW[0], HW[1]]), y, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "fusion,attention,decoder",
    [("early", None, "deeplabv3plus"), ("esm", "ssa", "deeplabv3plus"), ("early", None, "unet"), ("esm", "ssa", "unet")],
)
def test_onnx(fusion, attention, decoder, tmp_path, onnx_matches_eager):
    onnx_matches_eager(_net(6, fusion, attention, decoder=decoder), torch.randn(1, 6, *HW), tmp_path)


@pytest.mark.parametrize("fusion,attention", [("early", None), ("esm", "ssa")])
@pytest.mark.parametrize("decoder", DECODERS)
def test_encoder_depth_4(fusion, attention, decoder, tmp_path):
    """Without layer4: the same contracts (shapes, cache, TorchScript), f2 at half the channels."""
    net = _net(6, fusion, attention, decoder=decoder, encoder_depth=4).eval()
    assert net.encoder.depth == 4 and net.encoder.f2_channels == 256
    assert not any(".layer4." in k for k in net.state_dict())
    x = torch.randn(1, 6, *HW)
    with torch.no_grad():
        y = net(x)
        assert y.shape == (1, 12, *HW)
        if net.supports_group_cache:
            torch.testing.assert_close(net.decode(_encode(net, x), list(HW)), y, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(torch.jit.script(net)(x), y, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="needs depth=5"):
        T2DNet(6, output_stride=32, encoder_depth=4, **SMALL)


def test_paper_default_resnet50():
    net = T2DNet(15).eval()  # resnet50, group_size 3, ESM + SSA
    assert net.group_starts == [0, 3, 6, 9, 12] and net.attention == "ssa"
    first, second = net.compress[0][0], net.compress[1][0]
    assert (first.in_channels, first.out_channels, second.out_channels) == (5 * 256, 5 * 128, 256)
    assert net.head.block.pool_size == 32 and type(net.head.block.norm).__name__ == "SwitchNorm2d"
    with torch.no_grad():
        assert net(torch.randn(1, 15, 40, 36)).shape == (1, 15, 40, 36)


def test_ill_arg():
    for bad in (0, -3, 2.5, True, "3"):
        with pytest.raises(ValueError, match="num_slices"):
            T2DNet(bad, **SMALL)
    with pytest.raises(ValueError, match="out_channels"):
        T2DNet(3, 0, **SMALL)
    with pytest.raises(ValueError, match="group_size"):
        T2DNet(3, group_size=0, **SMALL)
    with pytest.raises(ValueError, match="resnet50"):
        T2DNet(3, backbone="resnet19")
    with pytest.raises(ValueError, match="esm"):
        T2DNet(3, fusion="late", **SMALL)
    with pytest.raises(ValueError, match="'ssa'"):
        T2DNet(3, attention="sum", **SMALL)
    with pytest.raises(ValueError, match="fusion='esm'"):
        T2DNet(3, fusion="early", attention="ssa", **SMALL)
    with pytest.raises(ValueError, match="deeplabv3plus.*unet|unet.*deeplabv3plus"):
        T2DNet(3, decoder="fpn", **SMALL)
    with pytest.raises(ValueError, match="unet_channels"):
        T2DNet(3, decoder="unet", unet_channels=(16,), **SMALL)
    net = _net(6, "esm", "ssa")
    with pytest.raises(ValueError, match=r"\(N, 6, H, W\)"):
        net(torch.randn(1, 5, 16, 16))
    with pytest.raises(ValueError, match="group features"):
        net.decode([[torch.randn(1, 64, 4, 4)]], [16, 16])
    with pytest.raises(ValueError, match="3 features per group"):
        _net(6, "esm", None, decoder="unet").decode([[torch.randn(1, 64, 4, 4)]] * 2, [16, 16])
    with pytest.raises(ValueError, match="x_group"):
        net.encode_group(torch.randn(1, 2, 16, 16))
    with pytest.raises(RuntimeError, match="fusion='esm'"):
        _net(6, "early", None).encode_group(torch.randn(1, 6, 16, 16))


def test_pretrained_initialises_shared_f1(tmp_path):
    torch.manual_seed(1)
    sd = {k: v for k, v in T2DNet(3, fusion="early", attention=None, **SMALL).encoder.state_dict().items()}
    sd["fc.weight"], sd["fc.bias"] = torch.randn(10, 512), torch.randn(10)
    torch.save(sd, tmp_path / "resnet18.pth")
    esm = _net(12, "esm", "ssa", pretrained=str(tmp_path / "resnet18.pth"))
    torch.testing.assert_close(esm.encoder.conv1.weight, sd["conv1.weight"])  # 3-slice groups keep the RGB kernel
    torch.testing.assert_close(esm.encoder.layer3[0].conv1.weight, sd["layer3.0.conv1.weight"])
    early = _net(12, "early", None, pretrained=str(tmp_path / "resnet18.pth"))
    assert early.encoder.conv1.weight.shape == (64, 12, 7, 7)
