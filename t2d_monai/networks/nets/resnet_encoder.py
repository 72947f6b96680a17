"""Dilated ResNet encoder (resnet18/34/50/101) split into f1 (stem + layer1) and f2 (layer2-4, or layer2-3)."""

from __future__ import annotations

import copy
import os
from typing import Any

import torch
from monai.networks.layers.utils import get_norm_layer
from monai.utils import look_up_option
from torch import nn

from t2d_monai.networks.layers import switch_norm as _switch_norm  # noqa: F401  registers "switchable"
from t2d_monai.networks.pretrained import load_resnet_state_dict

__all__ = ["RESNET_BACKBONES", "ResNetEncoder", "BasicBlock", "Bottleneck"]

#: backbone name -> plain description (deep-copied before use, never mutated)
RESNET_BACKBONES: dict[str, dict[str, Any]] = {
    "resnet18": {"block": "basic", "layers": (2, 2, 2, 2)},
    "resnet34": {"block": "basic", "layers": (3, 4, 6, 3)},
    "resnet50": {"block": "bottleneck", "layers": (3, 4, 6, 3)},
    "resnet101": {"block": "bottleneck", "layers": (3, 4, 23, 3)},
}

#: encoder depth -> output stride -> which of layer2/3/4 replace their stride by dilation (as torchvision/DeepLab);
#: depth 4 ends with layer3 (plain stride 16)
_DILATE: dict[int, dict[int, tuple[bool, ...]]] = {
    5: {32: (False, False, False), 16: (False, False, True), 8: (False, True, True)},
    4: {16: (False, False), 8: (False, True)},
}


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


def _conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """torchvision's ResNet basic block (same parameter names), with dilation and a MONAI norm."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        dilation: int = 1,
        norm: str | tuple = "batch",
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride, dilation)
        self.bn1 = get_norm_layer(norm, 2, planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes, 1, dilation)
        self.bn2 = get_norm_layer(norm, 2, planes)
        self.downsample = downsample if downsample is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.downsample(x))


class Bottleneck(nn.Module):
    """torchvision's ResNet bottleneck block (v1.5, stride on the 3x3 conv), with dilation and a MONAI norm."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        dilation: int = 1,
        norm: str | tuple = "batch",
    ) -> None:
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = get_norm_layer(norm, 2, planes)
        self.conv2 = _conv3x3(planes, planes, stride, dilation)
        self.bn2 = get_norm_layer(norm, 2, planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = get_norm_layer(norm, 2, planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample if downsample is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.downsample(x))


class ResNetEncoder(nn.Module):
    """
    Dilated ResNet encoder for DeepLabV3+ (He et al. 2016, https://arxiv.org/abs/1512.03385; dilation as
    in Chen et al. 2018, https://arxiv.org/abs/1802.02611), split in the two parts of the thickened 2D
    network paper (Yu et al. 2019, https://arxiv.org/abs/1904.01150):

    - ``f1``: stem (7x7 conv stride 2, norm, ReLU, 3x3 max-pool stride 2) and ``layer1``:
      ``(N, in_channels, H, W) -> (N, f1_channels, ceil(H/4), ceil(W/4))`` (the DeepLabV3+ low-level feature);
      :meth:`forward_early` also returns the stem's stride-2 output before the max-pool
      ``(N, stem_channels, ceil(H/2), ceil(W/2))`` (the extra skip of the full-resolution ``"unet"`` decoder);
    - ``f2``: ``layer2``-``layer4``: ``(N, f1_channels, h, w) -> (N, f2_channels, ~h*4/output_stride, ...)``.

    ``output_stride`` 16 replaces the stride of ``layer4`` by dilation 2, 8 those of ``layer3`` and
    ``layer4`` by dilations 2 and 4 (torchvision's ``replace_stride_with_dilation``); 32 is the plain ResNet.
    ``depth=4`` stops after ``layer3`` (smp's ``encoder_depth``): f2 has half the channels
    (``256 * expansion``), the plain stride is 16 (8 dilates ``layer3``), and ``layer4`` (three quarters of
    resnet18's parameters) is an ``nn.Identity`` without parameters.
    Parameter names equal torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``, ...), so a torchvision
    ``resnet*`` state dict loads with only the classifier (and, at ``depth=4``, ``layer4``) dropped and the
    first conv adapted.

    Args:
        in_channels: input channels (slices). Defaults to 3.
        backbone: one of ``"resnet18"``, ``"resnet34"``, ``"resnet50"``, ``"resnet101"``. Defaults to ``"resnet50"``.
        output_stride: 8, 16 or 32. Defaults to 16.
        norm: MONAI norm name or ``(name, kwargs)``, e.g. ``"batch"``, ``"switchable"``,
            ``("group", {"num_groups": 16})``. Defaults to ``"batch"``.
        pretrained: path of a local torchvision-format ResNet state-dict file (ImageNet weights), or None.
            Nothing is downloaded. Defaults to None.
        depth: stages used, 5 (stem, layer1-4: the full ResNet) or 4 (stem, layer1-3). Defaults to 5.

    Raises:
        ValueError: unknown ``backbone``/``output_stride``/``depth``, ``in_channels < 1``, ``output_stride``
            32 with ``depth=4``, a pretrained file that does not match the backbone.
        FileNotFoundError: ``pretrained`` names a missing file.

    Example::

        >>> enc = ResNetEncoder(in_channels=3, backbone="resnet18")
        >>> low, high = enc(torch.randn(1, 3, 64, 64))
        >>> low.shape, high.shape
        (torch.Size([1, 64, 16, 16]), torch.Size([1, 512, 4, 4]))
    """

    def __init__(
        self,
        in_channels: int = 3,
        backbone: str = "resnet50",
        output_stride: int = 16,
        norm: str | tuple = "batch",
        pretrained: str | os.PathLike | None = None,
        depth: int = 5,
    ) -> None:
        super().__init__()
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels must be an int >= 1, got {in_channels!r}.")
        spec = copy.deepcopy(look_up_option(backbone, RESNET_BACKBONES))
        if depth not in _DILATE:
            raise ValueError(f"depth must be 5 (the full ResNet) or 4 (without layer4), got {depth!r}.")
        strides = _DILATE[depth]
        if output_stride not in strides:
            raise ValueError(
                f"output_stride={output_stride!r} is not possible with depth={depth}: use one of {sorted(strides)}"
                + (" (depth 4 ends with layer3, at stride 16; output stride 32 needs depth=5)." if depth == 4 else ".")
            )
        dilate = strides[output_stride]
        self.backbone = backbone
        self.in_channels = in_channels
        self.output_stride = output_stride
        self.depth = depth
        block: type[BasicBlock] | type[Bottleneck] = BasicBlock if spec["block"] == "basic" else Bottleneck
        self._norm = norm
        self._inplanes = 64
        self._dilation = 1
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = get_norm_layer(norm, 2, 64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        layers = spec["layers"]
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2, dilate=dilate[0])
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2, dilate=dilate[1])
        self.layer4 = (
            self._make_layer(block, 512, layers[3], stride=2, dilate=dilate[2]) if depth == 5 else nn.Identity()
        )
        #: channels of the stem output (stride 2), of the f1 output (low-level feature, stride 4) and of the
        #: f2 output (high-level feature)
        self.stem_channels: int = 64
        self.f1_channels: int = 64 * block.expansion
        self.f2_channels: int = (512 if depth == 5 else 256) * block.expansion
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if pretrained is not None:
            load_resnet_state_dict(self, pretrained, in_channels)

    def _make_layer(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        planes: int,
        blocks: int,
        stride: int = 1,
        dilate: bool = False,
    ) -> nn.Sequential:
        previous_dilation = self._dilation
        if dilate:
            self._dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self._inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                _conv1x1(self._inplanes, planes * block.expansion, stride),
                get_norm_layer(self._norm, 2, planes * block.expansion),
            )
        layers = [block(self._inplanes, planes, stride, downsample, previous_dilation, self._norm)]
        self._inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self._inplanes, planes, dilation=self._dilation, norm=self._norm))
        return nn.Sequential(*layers)

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """Stem conv, norm and ReLU (before the max-pool): ``(N, in_channels, H, W) -> (N, stem_channels,
        ceil(H/2), ceil(W/2))``, the stride-2 feature."""
        return self.relu(self.bn1(self.conv1(x)))

    def forward_f1(self, x: torch.Tensor) -> torch.Tensor:
        """f1 = stem + layer1: ``(N, in_channels, H, W) -> (N, f1_channels, ceil(H/4), ceil(W/4))``."""
        return self.layer1(self.maxpool(self.forward_stem(x)))

    def forward_early(self, x: torch.Tensor) -> list[torch.Tensor]:
        """
        The early features, finest first: ``[stem (N, stem_channels, ceil(H/2), ceil(W/2)), f1 (N, f1_channels,
        ceil(H/4), ceil(W/4))]`` (the skips of a full-resolution decoder); ``[-1]`` equals :meth:`forward_f1`.
        """
        stem = self.forward_stem(x)
        return [stem, self.layer1(self.maxpool(stem))]

    def forward_f2(self, x: torch.Tensor) -> torch.Tensor:
        """f2 = layer2-4 (``depth=4``: layer2-3): ``(N, f1_channels, h, w) -> (N, f2_channels, h', w')`` (overall
        stride ``output_stride``)."""
        return self.layer4(self.layer3(self.layer2(x)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``(N, in_channels, H, W)`` -> ``[f1 output, f2 output]``."""
        low = self.forward_f1(x)
        return [low, self.forward_f2(low)]
