from __future__ import annotations

import pytest
import torch

from t2d_monai.networks import ConcatSliceFusion, DotSliceFusion, SliceSensitiveAttention, SwitchNorm2d
from t2d_monai.networks.blocks import make_slice_fusion


@pytest.mark.parametrize("name", ["ssa", "concat", "dot"])
@pytest.mark.parametrize("hw", [(9, 12), (40, 33)])
def test_shapes_and_dependence(name, hw):
    torch.manual_seed(0)
    block = make_slice_fusion(name, 16, 8).train()
    u, o = torch.randn(2, 8, *hw), torch.randn(2, 16, *hw)
    if name == "ssa":  # starts as the identity on U (zero output scale, as non-local blocks); then O_g matters
        torch.testing.assert_close(block(u, o), u)
        with torch.no_grad():
            block.norm.weight.fill_(1.0)
    out = block(u, o)
    assert out.shape == u.shape
    assert not torch.allclose(block(u, o + torch.randn_like(o)), out), "the group feature must matter"


def test_ssa_reading():
    torch.manual_seed(0)
    ssa = SliceSensitiveAttention(16, 8, pool_size=4)
    assert isinstance(ssa.norm, SwitchNorm2d)
    u, o = torch.randn(2, 8, 6, 5), torch.randn(2, 16, 6, 5)
    # residual onto U: with the output norm's affine set to zero, the block returns U
    with torch.no_grad():
        ssa.norm.weight.zero_()
        ssa.norm.bias.zero_()
    torch.testing.assert_close(ssa(u, o), u)
    # the value path is U at full resolution: a C x C affinity times g(U); check against a direct computation
    ssa = SliceSensitiveAttention(16, 8, pool_size=4, norm=("group", {"num_groups": 1, "affine": False})).eval()
    q = ssa.query(torch.nn.functional.adaptive_avg_pool2d(o, 4)).flatten(2)
    k = ssa.key(torch.nn.functional.adaptive_avg_pool2d(u, 4)).flatten(2)
    a = torch.softmax(q @ k.transpose(1, 2) / 4.0, dim=-1)
    torch.testing.assert_close(a.sum(-1), torch.ones(2, 8))
    y = (a @ ssa.value(u).flatten(2)).reshape(u.shape)
    torch.testing.assert_close(ssa(u, o), u + ssa.norm(y), atol=1e-5, rtol=1e-5)


def test_types():
    assert isinstance(make_slice_fusion("concat", 4, 4), ConcatSliceFusion)
    assert isinstance(make_slice_fusion("dot", 4, 4), DotSliceFusion)


def test_ill_arg():
    with pytest.raises(ValueError, match="ssa"):
        make_slice_fusion("sum", 4, 4)
    with pytest.raises(ValueError, match="pool_size"):
        SliceSensitiveAttention(4, 4, pool_size=0)


def test_ssa_project_equals_conv_of_output():
    """project(): conv1x1(ssa(U, O_g)) as one linear map of U, from U's moments (eval mode, switchable norm)."""
    from t2d_monai.networks.blocks import fused_feature_moments

    torch.manual_seed(0)
    ssa = SliceSensitiveAttention(16, 8, pool_size=4)
    with torch.no_grad():
        for p in (ssa.norm.mean_weight, ssa.norm.var_weight, ssa.norm.weight, ssa.norm.bias, ssa.norm.running_mean):
            p.normal_()
        ssa.norm.running_var.uniform_(0.5, 2.0)
    ssa.eval()
    conv = torch.nn.Conv2d(8, 3, 1)
    u, o = torch.randn(2, 8, 7, 9) * 3, torch.randn(2, 16, 7, 9)
    mean, cov = fused_feature_moments(u)
    torch.testing.assert_close(mean, u.mean(dim=(2, 3)))
    torch.testing.assert_close(torch.diagonal(cov, dim1=1, dim2=2), u.flatten(2).var(-1, unbiased=False))
    w, b = ssa.project(o, ssa.keys(u), mean, cov, 63, conv.weight.reshape(3, 8), conv.bias)
    assert w.shape == (2, 3, 8) and b.shape == (2, 3)
    expected = conv(ssa(u, o))
    torch.testing.assert_close((w @ u.flatten(2) + b[..., None]).reshape(expected.shape), expected, atol=1e-5, rtol=1e-4)
