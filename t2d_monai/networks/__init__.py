"""Networks of the thickened 2D method: T2DNet, DeepLabV3+, the dilated ResNet encoder, the DeepLabV3+ and
full-resolution (U-Net-style) decoders, SwitchNorm2d.

Importing this package registers ``"switchable"`` in MONAI's ``Norm`` factory.
"""

from __future__ import annotations

from .blocks import ConcatSliceFusion, DeepLabV3PlusDecoder, DotSliceFusion, SliceSensitiveAttention, UNetDecoder
from .layers import SwitchNorm, SwitchNorm1d, SwitchNorm2d, SwitchNorm3d
from .nets import RESNET_BACKBONES, DeepLabV3Plus, ResNetEncoder, T2DNet, group_starts
from .protocols import GroupCacheNetwork, MomentAffineNorm
from .pretrained import adapt_input_conv, adapt_resnet_state_dict, load_resnet_state_dict

__all__ = [
    "T2DNet",
    "DeepLabV3Plus",
    "DeepLabV3PlusDecoder",
    "UNetDecoder",
    "ResNetEncoder",
    "RESNET_BACKBONES",
    "group_starts",
    "GroupCacheNetwork",
    "MomentAffineNorm",
    "SwitchNorm",
    "SwitchNorm1d",
    "SwitchNorm2d",
    "SwitchNorm3d",
    "SliceSensitiveAttention",
    "ConcatSliceFusion",
    "DotSliceFusion",
    "adapt_input_conv",
    "adapt_resnet_state_dict",
    "load_resnet_state_dict",
]
