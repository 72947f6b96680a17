from __future__ import annotations

import torch

from t2d_monai.networks import GroupCacheNetwork, MomentAffineNorm, SwitchNorm2d, T2DNet
from t2d_monai.networks.protocols import missing_members


def test_t2dnet_is_a_group_cache_network():
    esm = T2DNet(6, backbone="resnet18", decoder_channels=16)
    early = T2DNet(6, backbone="resnet18", decoder_channels=16, fusion="early", attention=None)
    assert isinstance(esm, GroupCacheNetwork) and esm.supports_group_cache
    assert isinstance(early, GroupCacheNetwork) and not early.supports_group_cache  # satisfies it, but no cache
    assert not isinstance(torch.nn.Conv2d(6, 6, 1), GroupCacheNetwork)
    assert isinstance(torch.jit.script(esm.eval()), GroupCacheNetwork)  # scripted models keep the contract


def test_moment_affine_norm():
    assert isinstance(SwitchNorm2d(4), MomentAffineNorm)
    assert not isinstance(torch.nn.BatchNorm2d(4), MomentAffineNorm)


def test_missing_members():
    assert missing_members(torch.nn.Conv2d(1, 1, 1), GroupCacheNetwork) == [
        "decode", "encode_group", "group_size", "group_starts", "num_slices", "supports_group_cache"
    ]
    assert missing_members(SwitchNorm2d(2), MomentAffineNorm) == []
