"""Networks: dilated ResNet encoder, DeepLabV3+ and the thickened 2D network T2DNet."""

from __future__ import annotations

from t2d_monai.networks.blocks.deeplabv3plus_decoder import DeepLabV3PlusDecoder

from .deeplabv3plus import DeepLabV3Plus
from .resnet_encoder import RESNET_BACKBONES, ResNetEncoder
from .t2dnet import T2DNet, group_starts

__all__ = ["DeepLabV3Plus", "DeepLabV3PlusDecoder", "RESNET_BACKBONES", "ResNetEncoder", "T2DNet", "group_starts"]
