"""ThickSliceInferer with the real T2DNet: the f1 cache gives the plain per-window result."""

from __future__ import annotations

import pytest
import torch

from t2d_monai.inferers import MultiViewInferer, ThickSliceInferer
from t2d_monai.networks import T2DNet


@pytest.mark.parametrize(
    "num_slices, stride, depth, decoder",
    [(6, 1, 11, "deeplabv3plus"), (7, 2, 13, "deeplabv3plus"), (6, 1, 4, "deeplabv3plus"), (7, 2, 13, "unet"), (6, 1, 4, "unet")],
)
def test_cache_equals_plain_forward_with_t2dnet(num_slices, stride, depth, decoder):
    """The cache holds every scale a group encodes (f1; stem and f1 for decoder="unet")."""
    torch.manual_seed(0)
    net = T2DNet(num_slices, backbone="resnet18", decoder_channels=32, decoder=decoder).eval()
    volume = torch.rand(1, 1, 35, 29, depth)
    cached = ThickSliceInferer(num_slices, stride=stride, batch_size=3, cache_f1=True)(volume, net)
    plain = ThickSliceInferer(num_slices, stride=stride, batch_size=3, cache_f1=False)(volume, net)
    assert cached.shape == (1, 1, 35, 29, depth)
    assert torch.max(torch.abs(cached - plain)).item() < 1e-5
    assert 0.0 <= cached.min().item() and cached.max().item() <= 1.0


def test_multi_view_inferer_returns_to_input_layout():
    """Each view's network sees its own layout; the fused result is back in the input's layout."""
    seen = {}

    class Recorder(torch.nn.Module):
        def __init__(self, view: str, k: int) -> None:
            super().__init__()
            self.view, self.num_slices = view, k

        def forward(self, x):
            seen[self.view] = x.shape
            return torch.full_like(x, 10.0 if self.view != "sagittal" else -10.0)  # sagittal says "no"

    nets = torch.nn.ModuleDict({v: Recorder(v, 3) for v in ("axial", "coronal", "sagittal")})
    volume = torch.rand(1, 1, 12, 10, 8)  # RAS (X, Y, Z)
    fused = MultiViewInferer(ThickSliceInferer(3), fusion="vote")(volume, nets)
    assert fused.shape == (1, 1, 12, 10, 8)
    assert seen["axial"][2:] == (12, 10) and seen["coronal"][2:] == (12, 8) and seen["sagittal"][2:] == (10, 8)
    assert torch.all(fused == 1)  # two of three views vote foreground
    mean = MultiViewInferer(ThickSliceInferer(3), fusion="mean")(volume, nets)
    torch.testing.assert_close(mean, torch.full_like(mean, (2 * torch.sigmoid(torch.tensor(10.0)) + torch.sigmoid(torch.tensor(-10.0))).item() / 3))


def test_multi_view_inferer_ill_arg():
    with pytest.raises(ValueError, match="missing \\['sagittal'\\]"):
        MultiViewInferer(ThickSliceInferer(3))(torch.rand(1, 1, 4, 4, 4), {"axial": None, "coronal": None})
    with pytest.raises(ValueError, match="vote"):
        MultiViewInferer(ThickSliceInferer(3), fusion="median")
    with pytest.raises(ValueError, match="at least one view"):
        MultiViewInferer(ThickSliceInferer(3), views=[])
