"""T2DNet: the thickened 2D network of Yu et al. 2019 (early fusion or Early-Stage Multiplexing, with
optional slice-sensitive attention)."""

from __future__ import annotations

import os
import warnings

import torch
import torch.nn.functional as F
from monai.utils import look_up_option
from torch import nn

from t2d_monai.networks.blocks.slice_attention import SliceSensitiveAttention, fused_feature_moments, make_slice_fusion
from t2d_monai.networks.nets.deeplabv3plus import DeepLabV3PlusDecoder, conv_norm_relu
from t2d_monai.networks.nets.resnet_encoder import ResNetEncoder

__all__ = ["T2DNet", "FUSIONS", "ATTENTIONS", "group_starts"]

FUSIONS = ("early", "esm")
ATTENTIONS = (None, "concat", "dot", "ssa")


def group_starts(in_slices: int, group_size: int) -> list[int]:
    """
    Start index of each mini-group of ``group_size`` slices in a window of ``in_slices`` slices:
    consecutive groups, and when ``in_slices`` is not a multiple of ``group_size`` one more group that
    ends on the last slice (so it overlaps the one before). Needs ``1 <= group_size <= in_slices``.

    Example::

        >>> group_starts(15, 3), group_starts(14, 3), group_starts(4, 3)
        ([0, 3, 6, 9, 12], [0, 3, 6, 9, 11], [0, 1])
    """
    if not 1 <= group_size <= in_slices:
        raise ValueError(f"need 1 <= group_size <= in_slices, got group_size={group_size}, in_slices={in_slices}.")
    starts = list(range(0, in_slices - group_size + 1, group_size))
    if starts[-1] + group_size < in_slices:
        starts.append(in_slices - group_size)
    return starts


class _PlainHead(nn.Module):
    """All slices predicted from the fused feature by one 1x1 convolution."""

    def __init__(self, channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, out_channels, 1)

    def forward(self, u: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        return self.conv(u)


class _GroupHead(nn.Module):
    """
    One prediction per mini-group g from ``Z_g = block(U, O_g)``: the rows of group g's slices of one 1x1
    convolution with a row per slice and class (``in_slices * out_channels`` rows, as the plain head), so
    slice ``s`` is predicted by its own weights from the feature of its group. Slices covered by two
    overlapping groups get the mean of both logits.
    """

    def __init__(
        self, block: nn.Module, channels: int, starts: list[int], in_slices: int, group_size: int, out_channels: int
    ) -> None:
        super().__init__()
        self.block = block
        self.conv = nn.Conv2d(channels, in_slices * out_channels, 1)
        self.starts: list[int] = list(starts)
        self.total = in_slices * out_channels
        self.width = group_size * out_channels
        self.out_channels = out_channels
        coverage = torch.zeros(in_slices)
        for s in starts:
            coverage[s : s + group_size] += 1
        inv = (1.0 / coverage).repeat_interleave(out_channels).reshape(1, -1, 1, 1)
        self.register_buffer("inv_coverage", inv, persistent=False)

    def forward(self, u: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        return self.forward_blocks(u, features)

    def conv_bias(self) -> torch.Tensor:
        """The prediction conv's bias (always present; the check narrows the type for TorchScript)."""
        bias = self.conv.bias
        if bias is None:
            raise RuntimeError("the group head's 1x1 convolution has no bias.")
        return bias

    def forward_blocks(self, u: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        """``u (N, C, h, w)``, features ``[(N, C1, h, w)]`` -> ``(N, in_slices * out_channels, h, w)`` logits."""
        out = torch.zeros_like(u[:, :1]).expand(-1, self.total, -1, -1)
        bias = self.conv_bias()
        for i, o in enumerate(features):
            first = self.starts[i] * self.out_channels
            rows = slice(first, first + self.width)
            pred = F.conv2d(self.block(u, o), self.conv.weight[rows], bias[rows])
            out = out + F.pad(pred, [0, 0, 0, 0, first, self.total - first - self.width])
        return out * self.inv_coverage


class _SSAGroupHead(_GroupHead):
    """
    :class:`_GroupHead` with slice-sensitive attention whose output norm is affine given its input's
    statistics (switchable norm). Training runs the blocks as they are; in eval mode the same function is
    computed without materialising any group's ``(N, C, h, w)`` attention output: U's keys, mean and
    covariance are computed once and every group's SSA + 1x1 head folds into one ``(K, C)`` map per sample
    (:meth:`~t2d_monai.networks.blocks.SliceSensitiveAttention.project`), so all slices' logits come from
    one ``(N, in_slices * out_channels, C) x (N, C, h*w)`` product.
    """

    def forward(self, u: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        if self.training:
            return self.forward_blocks(u, features)
        n, c, h, w = u.shape[0], u.shape[1], u.shape[2], u.shape[3]
        k = self.block.keys(u)
        mean, cov = fused_feature_moments(u)
        weight = self.conv.weight.reshape(self.total, c)
        bias = self.conv_bias()
        maps = u.new_zeros(n, self.total, c)
        shifts = u.new_zeros(n, self.total)
        for i, o in enumerate(features):
            first = self.starts[i] * self.out_channels
            rows = slice(first, first + self.width)
            w_g, b_g = self.block.project(o, k, mean, cov, h * w, weight[rows], bias[rows])
            maps = maps + F.pad(w_g, [0, 0, first, self.total - first - self.width])
            shifts = shifts + F.pad(b_g, [first, self.total - first - self.width])
        inv = self.inv_coverage.reshape(1, -1)
        logits = torch.baddbmm((shifts * inv).unsqueeze(-1), maps * inv.unsqueeze(-1), u.reshape(n, c, h * w))
        return logits.reshape(n, self.total, h, w)


class T2DNet(nn.Module):
    """
    Thickened 2D network (Yu et al., "Thickened 2D Networks for Efficient 3D Medical Image Segmentation",
    2019, https://arxiv.org/abs/1904.01150): a 2D DeepLabV3+ (dilated ResNet, no ASPP) that reads
    ``in_slices`` neighbouring slices as channels and predicts a mask for each of them.

    - ``fusion="early"``: all slices enter the first convolution together (the plain thickened DeepLabV3+
      baseline; with ``in_slices`` 1 or 3 the paper's 2D baselines). Needs ``attention=None``.
    - ``fusion="esm"`` (Early-Stage Multiplexing): the window is cut into mini-groups of ``group_size``
      slices (:attr:`group_starts`; when ``in_slices`` is not a multiple of ``group_size`` the last group
      overlaps the one before); a shared f1 (stem + layer1) encodes each group on its own; the group
      features are concatenated on channels and compressed by two 1x1 conv-norm-ReLU (to half the
      channels, then to f1's width: 256 for resnet50); f2 (layer2-4) and the DeepLabV3+ decoder follow,
      the compressed fused feature serving as the decoder's low-level skip. When ``in_slices < group_size``
      the network uses one group of all ``in_slices`` slices (``group_size`` becomes ``in_slices``, with a
      warning).
    - ``attention`` (needs ``fusion="esm"``; Table 3 of the paper): None predicts every slice from the
      fused decoder feature U with one 1x1 conv; ``"ssa"`` (slice-sensitive attention,
      :class:`~t2d_monai.networks.blocks.SliceSensitiveAttention`), ``"concat"`` or ``"dot"`` combine each
      group's pre-fusion feature O_g with U into ``Z_g``, and the group's slices are predicted from ``Z_g``
      by their rows of a 1x1 conv with one row per slice and class; a slice in two overlapping groups
      gets the mean of their logits. SSA's output scale starts at zero, so ESM + SSA starts as ESM.

    Input ``(N, in_slices, H, W)``, any ``H``, ``W``; output logits ``(N, in_slices * out_channels, H, W)``,
    channel ``s * out_channels + c`` = class ``c`` of slice ``s``.

    Split forward (``fusion="esm"`` only, :attr:`supports_group_cache` True) for inferers that reuse a
    group's f1 feature across overlapping windows::

        net.decode([net.encode_group(x[:, s : s + net.group_size]) for s in net.group_starts], [H, W]) == net(x)

    Args:
        in_slices: slices per input window (k), >= 1.
        out_channels: classes per slice. Defaults to 1.
        group_size: slices per mini-group for ESM. Defaults to 3.
        backbone: ``"resnet18"``, ``"resnet34"``, ``"resnet50"`` or ``"resnet101"``. Defaults to ``"resnet50"``.
        fusion: ``"early"`` or ``"esm"``. Defaults to ``"esm"``.
        attention: None, ``"concat"``, ``"dot"`` or ``"ssa"``. Defaults to ``"ssa"``.
        output_stride: encoder output stride, 8, 16 or 32. Defaults to 16.
        aspp: ASPP in the decoder. Defaults to False (the paper's setting).
        decoder_channels: width of the decoder (and of the compressed ESM feature's consumer). Defaults to 256.
        norm: MONAI norm of the encoder, decoder, compression and concat/dot blocks. Defaults to ``"batch"``.
        ssa_norm: norm on the SSA output. Defaults to ``"switchable"``.
        ssa_pool_size: side of SSA's adaptive average pooling. Defaults to 32.
        pretrained: local torchvision ResNet state-dict file for f1 and f2 (first conv adapted to the
            group's or window's channel count), or None. Nothing is downloaded. Defaults to None.

    Raises:
        ValueError: ``in_slices``, ``out_channels`` or ``group_size`` not an int >= 1; unknown ``backbone``,
            ``fusion``, ``attention`` (the message lists the allowed values); ``attention`` with
            ``fusion="early"``.

    Example::

        >>> net = T2DNet(in_slices=12, out_channels=1, backbone="resnet18")
        >>> net.group_starts
        [0, 3, 6, 9]
        >>> net(torch.randn(1, 12, 33, 47)).shape
        torch.Size([1, 12, 33, 47])
    """

    def __init__(
        self,
        in_slices: int,
        out_channels: int = 1,
        group_size: int = 3,
        backbone: str = "resnet50",
        fusion: str = "esm",
        attention: str | None = "ssa",
        output_stride: int = 16,
        aspp: bool = False,
        decoder_channels: int = 256,
        norm: str | tuple = "batch",
        ssa_norm: str | tuple = "switchable",
        ssa_pool_size: int = 32,
        pretrained: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("in_slices", in_slices), ("out_channels", out_channels), ("group_size", group_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}.")
        fusion = look_up_option(fusion, FUSIONS)
        if attention is not None and attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {list(ATTENTIONS)}, got {attention!r}.")
        if fusion == "early" and attention is not None:
            raise ValueError(
                f"attention={attention!r} needs fusion='esm' (it combines each mini-group's pre-fusion feature "
                "with the fused one); use fusion='esm', or attention=None for early fusion."
            )
        if fusion == "esm" and in_slices < group_size:
            warnings.warn(
                f"T2DNet: in_slices={in_slices} < group_size={group_size}; using one group of {in_slices} slices.",
                stacklevel=2,
            )
            group_size = in_slices
        self.in_slices = in_slices
        self.out_channels = out_channels
        self.fusion = fusion
        self.attention = attention
        self.supports_group_cache = fusion == "esm"
        if fusion == "esm":
            self.group_size = group_size
            self.group_starts = group_starts(in_slices, group_size)
        else:
            # early fusion: the whole window is one group (the attributes stay meaningful for inferers)
            self.group_size = in_slices
            self.group_starts = [0]
        self.encoder = ResNetEncoder(self.group_size, backbone, output_stride, norm, pretrained)
        c1 = self.encoder.f1_channels
        if fusion == "esm":
            cat_channels = len(self.group_starts) * c1
            self.compress: nn.Module = nn.Sequential(
                conv_norm_relu(cat_channels, cat_channels // 2, 1, norm), conv_norm_relu(cat_channels // 2, c1, 1, norm)
            )
        else:
            self.compress = nn.Identity()
        self.decoder = DeepLabV3PlusDecoder(c1, self.encoder.f2_channels, decoder_channels, aspp=aspp, norm=norm)
        if attention is None:
            self.head: nn.Module = _PlainHead(decoder_channels, in_slices * out_channels)
        else:
            block = make_slice_fusion(attention, c1, decoder_channels, norm, ssa_norm, ssa_pool_size)
            foldable = isinstance(block, SliceSensitiveAttention) and hasattr(block.norm, "affine_from_moments")
            head_type = _SSAGroupHead if foldable else _GroupHead
            self.head = head_type(block, decoder_channels, self.group_starts, in_slices, self.group_size, out_channels)

    @torch.jit.export
    def encode_group(self, x_group: torch.Tensor) -> torch.Tensor:
        """f1 of one mini-group: ``(N, group_size, H, W) -> (N, C1, ceil(H/4), ceil(W/4))`` (``fusion="esm"`` only)."""
        if not self.supports_group_cache:
            raise RuntimeError("encode_group is only defined for fusion='esm' (supports_group_cache is False).")
        if x_group.dim() != 4 or x_group.shape[1] != self.group_size:
            raise ValueError(f"x_group must be (N, {self.group_size}, H, W), got shape {list(x_group.shape)}.")
        return self.encoder.forward_f1(x_group)

    @torch.jit.export
    def decode(self, features: list[torch.Tensor], out_size: list[int]) -> torch.Tensor:
        """
        Logits from the groups' f1 features (in :attr:`group_starts` order; for early fusion the one f1
        feature of the window): ``-> (N, in_slices * out_channels, out_size[0], out_size[1])``.
        """
        if len(features) != len(self.group_starts):
            raise ValueError(
                f"decode expects {len(self.group_starts)} group features (group_starts={self.group_starts}), "
                f"got {len(features)}."
            )
        fused = self.compress(torch.cat(features, dim=1))
        u = self.decoder(fused, self.encoder.forward_f2(fused))
        logits = self.head(u, features)
        return F.interpolate(logits, size=[int(out_size[0]), int(out_size[1])], mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_slices, H, W) -> (N, in_slices * out_channels, H, W)`` logits."""
        if x.dim() != 4 or x.shape[1] != self.in_slices:
            raise ValueError(f"T2DNet expects (N, {self.in_slices}, H, W), got shape {list(x.shape)}.")
        if self.supports_group_cache:
            features = [self.encoder.forward_f1(x[:, s : s + self.group_size]) for s in self.group_starts]
        else:
            features = [self.encoder.forward_f1(x)]
        return self.decode(features, [x.shape[2], x.shape[3]])
