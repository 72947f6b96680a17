"""A small network that implements the T2DNet contract, for the inferer tests and the benchmark test."""

from __future__ import annotations

import pytest
import torch

from t2d_monai.utils import window_starts


class StandInESM(torch.nn.Module):
    """
    Small network implementing the T2DNet contract (t2d_monai.networks.GroupCacheNetwork): split forward over
    mini-groups, each encoded at two scales (stride 1 and stride 2, as T2DNet's decoder="unet" encodes two).
    """

    def __init__(self, num_slices: int = 15, out_channels: int = 1, group_size: int = 3, width: int = 4) -> None:
        super().__init__()
        self.num_slices, self.out_channels, self.group_size = num_slices, out_channels, group_size
        self.fusion, self.supports_group_cache = "esm", True
        starts = window_starts(num_slices, group_size, group_size)
        self.group_starts = starts
        self.fine = torch.nn.Sequential(torch.nn.Conv2d(group_size, 2, 3, padding=1), torch.nn.Tanh())
        self.f1 = torch.nn.Sequential(torch.nn.Conv2d(2, width, 3, stride=2, padding=1), torch.nn.Tanh())
        self.fuse = torch.nn.Conv2d(width * len(starts), width, 1)
        self.fuse_fine = torch.nn.Conv2d(2 * len(starts), width, 1)
        self.head = torch.nn.Conv2d(width, num_slices * out_channels, 3, padding=1)

    def encode_group(self, x_group: torch.Tensor) -> list[torch.Tensor]:
        fine = self.fine(x_group)
        return [fine, self.f1(fine)]

    def decode(self, features: list[list[torch.Tensor]], out_size: list[int]) -> torch.Tensor:
        coarse = torch.tanh(self.fuse(torch.cat([f[1] for f in features], 1)))
        coarse = torch.nn.functional.interpolate(coarse, size=out_size, mode="bilinear", align_corners=False)
        return self.head(coarse + self.fuse_fine(torch.cat([f[0] for f in features], 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [self.encode_group(x[:, s : s + self.group_size]) for s in self.group_starts]
        return self.decode(features, list(x.shape[2:]))


@pytest.fixture(scope="session")
def stand_in_esm() -> type:
    """The class :class:`StandInESM` (a fixture, since test modules are not importable packages)."""
    return StandInESM
