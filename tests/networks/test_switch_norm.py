from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from monai.networks.layers import Norm
from monai.networks.layers.utils import get_norm_layer
from torch import nn

from t2d_monai.networks import SwitchNorm1d, SwitchNorm2d, SwitchNorm3d

# index of the selected statistics in [instance, layer, batch]
SELECT = {"instance": 0, "layer": 1, "batch": 2}


def _select(norm: SwitchNorm2d, kind: str) -> SwitchNorm2d:
    logits = torch.full((3,), -1e4)
    logits[SELECT[kind]] = 1e4
    with torch.no_grad():
        norm.mean_weight.copy_(logits)
        norm.var_weight.copy_(logits)
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    return norm


def _reference(kind: str, norm: SwitchNorm2d) -> nn.Module:
    c = norm.num_features
    if kind == "batch":
        ref = nn.BatchNorm2d(c)
    elif kind == "instance":
        ref = nn.InstanceNorm2d(c, affine=True)
    else:
        ref = nn.GroupNorm(1, c)  # LayerNorm over (C, H, W) with a per-channel affine
    with torch.no_grad():
        ref.weight.copy_(norm.weight)
        ref.bias.copy_(norm.bias)
    return ref


@pytest.mark.parametrize("kind", ["instance", "layer", "batch"])
def test_selects_torch_norm_train_and_eval(kind):
    torch.manual_seed(0)
    norm = _select(SwitchNorm2d(5), kind)
    ref = _reference(kind, norm)
    for _ in range(3):  # training steps update BN running statistics identically
        x = torch.randn(4, 5, 7, 9) * 3 + 1
        torch.testing.assert_close(norm(x), ref(x), atol=1e-5, rtol=1e-5)
    norm.eval()
    ref.eval()
    x = torch.randn(2, 5, 6, 3) * 2 - 1
    torch.testing.assert_close(norm(x), ref(x), atol=1e-5, rtol=1e-5)
    if kind == "batch":
        torch.testing.assert_close(norm.running_mean, ref.running_mean)
        torch.testing.assert_close(norm.running_var, ref.running_var)


def test_mixture_and_gradients():
    torch.manual_seed(0)
    norm = SwitchNorm2d(3)
    x = torch.randn(2, 3, 4, 5)
    out = norm(x)
    # default weights mix the three statistics equally: per-sample, per-channel means are not all zero
    assert out.shape == x.shape
    assert out.mean(dim=(2, 3)).abs().max() > 1e-3
    out.pow(2).sum().backward()
    for name, p in norm.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_factory_and_script(tmp_path):
    assert Norm["switchable", 2] is SwitchNorm2d
    assert Norm["switchable", 1] is SwitchNorm1d and Norm["switchable", 3] is SwitchNorm3d
    layer = get_norm_layer(("switchable", {"momentum": 0.2}), spatial_dims=2, channels=6)
    assert isinstance(layer, SwitchNorm2d) and layer.num_features == 6 and layer.momentum == 0.2
    x = torch.randn(2, 6, 5, 5)
    scripted = torch.jit.script(layer.eval())
    torch.jit.save(scripted, tmp_path / "sn.pt")
    torch.testing.assert_close(torch.jit.load(tmp_path / "sn.pt")(x), layer(x))


def test_ill_arg():
    with pytest.raises(ValueError, match="num_features"):
        SwitchNorm2d(0)
    with pytest.raises(ValueError, match="momentum"):
        SwitchNorm2d(4, momentum=2.0)
    with pytest.raises(ValueError, match="eps"):
        SwitchNorm2d(4, eps=0.0)
    with pytest.raises(ValueError, match="expects input"):
        SwitchNorm2d(4)(torch.randn(2, 3, 5, 5))
    with pytest.raises(ValueError, match="4D"):
        SwitchNorm2d(4)(torch.randn(2, 4, 5))
    with pytest.raises(ValueError, match="spatial dims"):
        Norm["switchable", 4]


def test_layer_reference_matches_functional():
    """The GroupNorm(1) reference above is LayerNorm over (C, H, W)."""
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(nn.GroupNorm(1, 3, affine=False)(x), F.layer_norm(x, x.shape[1:]))


@pytest.mark.parametrize("training", [True, False])
def test_affine_from_moments_equals_forward(training):
    """forward(x) is x * scale + shift with (scale, shift) from x's per-(sample, channel) mean and variance."""
    torch.manual_seed(0)
    norm = SwitchNorm2d(4)
    with torch.no_grad():
        for p in (norm.mean_weight, norm.var_weight, norm.weight, norm.bias, norm.running_mean):
            p.normal_()
        norm.running_var.uniform_(0.5, 2.0)
    twin = SwitchNorm2d(4)
    twin.load_state_dict(norm.state_dict())
    norm.train(training)
    twin.train(training)
    x = torch.randn(3, 4, 5, 6) * 2 + 0.5
    var, mean = torch.var_mean(x.flatten(2), dim=-1, unbiased=False)
    scale, shift = twin.affine_from_moments(mean, var, 30)
    assert scale.shape == shift.shape == (3, 4)
    torch.testing.assert_close(x * scale[..., None, None] + shift[..., None, None], norm(x), atol=1e-5, rtol=1e-5)
    # the running statistics move (training) or stay (eval) the same way
    torch.testing.assert_close(twin.running_mean, norm.running_mean)
    torch.testing.assert_close(twin.running_var, norm.running_var)
