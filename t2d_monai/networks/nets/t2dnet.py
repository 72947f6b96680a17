"""T2DNet: the thickened 2D network of Yu et al. 2019 (early fusion or Early-Stage Multiplexing, with
optional slice-sensitive attention)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.utils import deprecated, deprecated_arg, look_up_option
from torch import nn

from t2d_monai import __version__
from t2d_monai.networks.blocks.conv import conv_norm_relu
from t2d_monai.networks.blocks.slice_attention import make_slice_fusion
from t2d_monai.networks.blocks.slice_heads import make_slice_head
from t2d_monai.networks.blocks.unet_decoder import DECODERS, default_unet_channels, make_decoder
from t2d_monai.networks.nets.resnet_encoder import ResNetEncoder
from t2d_monai.utils.windows import window_starts

__all__ = ["T2DNet", "FUSIONS", "ATTENTIONS", "DECODERS", "group_starts"]

FUSIONS = ("early", "esm")
ATTENTIONS = (None, "concat", "dot", "ssa")


class T2DNet(nn.Module):
    """
    Thickened 2D network (Yu et al., "Thickened 2D Networks for Efficient 3D Medical Image Segmentation",
    2019, https://arxiv.org/abs/1904.01150): a 2D DeepLabV3+ (dilated ResNet, no ASPP) that reads
    ``num_slices`` neighbouring slices as channels and predicts a mask for each of them.

    - ``fusion="early"``: all slices enter the first convolution together (the plain thickened DeepLabV3+
      baseline; with ``num_slices`` 1 or 3 the paper's 2D baselines). Needs ``attention=None``.
    - ``fusion="esm"`` (Early-Stage Multiplexing): the window is cut into mini-groups of ``group_size``
      slices (:attr:`group_starts`; when ``num_slices`` is not a multiple of ``group_size`` the last group
      overlaps the one before); a shared f1 (stem + layer1) encodes each group on its own; the group
      features are concatenated on channels and compressed by two 1x1 conv-norm-ReLU (to half the
      channels, then to f1's width: 256 for resnet50); f2 (layer2-4) and the decoder follow, the compressed
      fused feature serving as the decoder's stride-4 skip. When ``num_slices < group_size``
      the network uses one group of all ``num_slices`` slices (``group_size`` becomes ``num_slices``, with a
      warning).
    - ``attention`` (needs ``fusion="esm"``; Table 3 of the paper): None predicts every slice from the
      fused decoder feature U with one 1x1 conv; ``"ssa"`` (slice-sensitive attention,
      :class:`~t2d_monai.networks.blocks.SliceSensitiveAttention`), ``"concat"`` or ``"dot"`` combine each
      group's pre-fusion feature O_g with U into ``Z_g``, and the group's slices are predicted from ``Z_g``
      by their rows of a 1x1 conv with one row per slice and class; a slice in two overlapping groups
      gets the mean of their logits. SSA's output scale starts at zero, so ESM + SSA starts as ESM.
    - ``decoder``: ``"deeplabv3plus"`` (the paper's: U at stride 4, logits bilinearly upsampled to the input
      size) or ``"unet"`` (:class:`~t2d_monai.networks.blocks.UNetDecoder`, an extension of the paper for
      structures one or two voxels wide: after the DeepLabV3+ stage, upsampling stages to stride 2, with a
      skip, and to stride 1, so U and the logits are at the input size). The stride-2 skip is each group's
      stem output (conv, norm, ReLU, before the max-pool), concatenated over the groups and compressed like f1
      by its own two 1x1 conv-norm-ReLU (``G*64 -> G*32 -> 64``); with early fusion the window's stem output.
      The attention blocks keep O_g = the group's f1 feature (stride 4); concat and dot resize it to U's size,
      SSA pools it to ``ssa_pool_size`` anyway.

    Input ``(N, num_slices, H, W)``, any ``H``, ``W``; output logits ``(N, num_slices * out_channels, H, W)``,
    channel ``s * out_channels + c`` = class ``c`` of slice ``s``.

    Split forward (``fusion="esm"`` only, :attr:`supports_group_cache` True) for inferers that reuse a
    group's features across overlapping windows
    (:class:`~t2d_monai.networks.protocols.GroupCacheNetwork`)::

        net.decode([net.encode_group(x[:, s : s + net.group_size]) for s in net.group_starts], [H, W]) == net(x)

    ``encode_group`` returns the group's early features, finest first, ending with f1: ``[f1]`` for
    ``"deeplabv3plus"``, ``[slices, stem, f1]`` for ``"unet"``.

    Args:
        num_slices: slices per input window (k), >= 1.
        out_channels: classes per slice. Defaults to 1.
        group_size: slices per mini-group for ESM. Defaults to 3.
        backbone: ``"resnet18"``, ``"resnet34"``, ``"resnet50"`` or ``"resnet101"``. Defaults to ``"resnet50"``.
        fusion: ``"early"`` or ``"esm"``. Defaults to ``"esm"``.
        attention: None, ``"concat"``, ``"dot"`` or ``"ssa"``. Defaults to ``"ssa"``.
        output_stride: encoder output stride, 8, 16 or 32. Defaults to 16.
        aspp: ASPP in the decoder. Defaults to False (the paper's setting).
        decoder_channels: width of the decoder's stride-4 stage (the whole DeepLabV3+ decoder). Defaults to 256.
        norm: MONAI norm of the encoder, decoder, compression and concat/dot blocks. Defaults to ``"batch"``.
        ssa_norm: norm on the SSA output. Defaults to ``"switchable"``.
        ssa_pool_size: side of SSA's adaptive average pooling. Defaults to 32.
        pretrained: local torchvision ResNet state-dict file for f1 and f2 (first conv adapted to the
            group's or window's channel count), or None. Nothing is downloaded. Defaults to None.
        decoder: ``"deeplabv3plus"`` or ``"unet"``. Defaults to ``"deeplabv3plus"`` (the paper's).
        unet_channels: widths of the ``"unet"`` decoder's stride-2 and stride-1 stages (the stride-1 one is
            U's width, seen by the head and attention); None: ``(decoder_channels // 2, max(decoder_channels // 4,
            2 * num_slices * out_channels))``, so U has at least two channels per predicted map. The ``"unet"``
            decoder's stride-1 stage also sees the window's slices themselves (a skip at full resolution). Ignored
            by ``"deeplabv3plus"``. Defaults to None.
        encoder_depth: ResNet stages used, 5 (the full ResNet, the paper's) or 4 (without ``layer4``: a quarter
            of resnet18's parameters, output stride 8 or 16), see :class:`ResNetEncoder`. Defaults to 5.
        in_slices: deprecated name of ``num_slices`` (removed in 0.2.0).

    Raises:
        ValueError: ``num_slices``, ``out_channels`` or ``group_size`` not an int >= 1; unknown ``backbone``,
            ``fusion``, ``attention``, ``decoder``, ``encoder_depth`` (the message lists the allowed values);
            an ``output_stride`` the ``encoder_depth`` cannot give; ``attention`` with ``fusion="early"``;
            ``unet_channels`` not two ints >= 1.

    Example::

        >>> net = T2DNet(num_slices=12, out_channels=1, backbone="resnet18")
        >>> net.group_starts
        [0, 3, 6, 9]
        >>> net(torch.randn(1, 12, 33, 47)).shape
        torch.Size([1, 12, 33, 47])
        >>> [f.shape for f in T2DNet(6, backbone="resnet18", decoder="unet").encode_group(torch.randn(1, 3, 33, 47))]
        [torch.Size([1, 64, 17, 24]), torch.Size([1, 64, 9, 12])]
    """

    __jit_unused_properties__ = ["in_slices"]
    # TorchScript constant: the branches on it are resolved when scripting (the two decoders take different inputs)
    __constants__ = ["full_resolution"]

    @deprecated_arg(
        "in_slices", since="0.1.0", removed="0.2.0", new_name="num_slices", version_val=__version__,
        msg_suffix="k is called num_slices everywhere (network, transforms, inferer, configs).",
    )
    def __init__(
        self,
        num_slices: int,
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
        decoder: str = "deeplabv3plus",
        unet_channels: Sequence[int] | None = None,
        encoder_depth: int = 5,
        in_slices: int | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("num_slices", num_slices), ("out_channels", out_channels), ("group_size", group_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}.")
        fusion = look_up_option(fusion, FUSIONS)
        decoder = look_up_option(decoder, DECODERS)
        if attention is not None and attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {list(ATTENTIONS)}, got {attention!r}.")
        if fusion == "early" and attention is not None:
            raise ValueError(
                f"attention={attention!r} needs fusion='esm' (it combines each mini-group's pre-fusion feature "
                "with the fused one); use fusion='esm', or attention=None for early fusion."
            )
        if fusion == "esm" and num_slices < group_size:
            warnings.warn(
                f"T2DNet: num_slices={num_slices} < group_size={group_size}; using one group of {num_slices} slices.",
                stacklevel=2,
            )
            group_size = num_slices
        self.num_slices = num_slices
        self.out_channels = out_channels
        self.fusion = fusion
        self.attention = attention
        self.decoder_name = decoder
        #: True for decoder="unet" (U and the logits at the input size)
        self.full_resolution = decoder == "unet"
        #: early features per group (1: f1; 3: the group's input slices, stem and f1), the length of each
        #: encode_group result
        self.num_scales = 3 if self.full_resolution else 1
        self.supports_group_cache = fusion == "esm"
        if fusion == "esm":
            self.group_size = group_size
            self.group_starts = window_starts(num_slices, group_size, group_size)
        else:
            # early fusion: the whole window is one group (the attributes stay meaningful for inferers)
            self.group_size = num_slices
            self.group_starts = [0]
        self.encoder = ResNetEncoder(self.group_size, backbone, output_stride, norm, pretrained, encoder_depth)
        c0, c1 = self.encoder.stem_channels, self.encoder.f1_channels
        groups = len(self.group_starts) if fusion == "esm" else 0
        self.compress = _compression(groups, c1, norm)
        # the stride-2 skip's own compression; no parameters (no state-dict keys) unless ESM + "unet"
        self.compress_stem = _compression(groups if decoder == "unet" else 0, c0, norm)
        if self.full_resolution and unet_channels is None:
            # U at full resolution predicts every slice of the window: at least two channels per output map
            stride2, stride1 = default_unet_channels(decoder_channels)
            unet_channels = (stride2, max(stride1, 2 * num_slices * out_channels))
        # the stride-1 skip: the window's slices as the groups hold them (ESM: every group's slices, a slice in
        # two overlapping groups twice)
        input_channels = len(self.group_starts) * self.group_size if self.full_resolution else 0
        self.decoder = make_decoder(
            decoder, (c0, c1), self.encoder.f2_channels, decoder_channels, unet_channels, aspp=aspp, norm=norm,
            input_channels=input_channels,
        )
        u_channels = int(self.decoder.out_channels)
        block = None if attention is None else make_slice_fusion(
            attention, c1, u_channels, norm, ssa_norm, ssa_pool_size
        )
        self.head = make_slice_head(block, u_channels, self.group_starts, num_slices, self.group_size, out_channels)

    @property
    def in_slices(self) -> int:
        """Deprecated name of :attr:`num_slices`."""
        warnings.warn("T2DNet.in_slices is deprecated, use num_slices.", FutureWarning, stacklevel=2)
        return self.num_slices

    def _encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The early features the decoder needs, finest first, ending with f1."""
        if self.full_resolution:
            return [x] + self.encoder.forward_early(x)
        return [self.encoder.forward_f1(x)]

    @torch.jit.export
    def encode_group(self, x_group: torch.Tensor) -> list[torch.Tensor]:
        """
        Early features of one mini-group (``fusion="esm"`` only), finest first, ending with f1:
        ``(N, group_size, H, W) ->`` ``[f1 (N, C1, ceil(H/4), ceil(W/4))]`` for ``decoder="deeplabv3plus"``,
        ``[x_group, stem (N, 64, ceil(H/2), ceil(W/2)), f1]`` for ``decoder="unet"`` (:attr:`num_scales`
        tensors; the group's slices themselves are the decoder's stride-1 skip).
        """
        if not self.supports_group_cache:
            raise RuntimeError("encode_group is only defined for fusion='esm' (supports_group_cache is False).")
        if x_group.dim() != 4 or x_group.shape[1] != self.group_size:
            raise ValueError(f"x_group must be (N, {self.group_size}, H, W), got shape {list(x_group.shape)}.")
        return self._encode(x_group)

    @torch.jit.export
    def decode(self, features: list[list[torch.Tensor]], out_size: list[int]) -> torch.Tensor:
        """
        Logits from the groups' early features (one :meth:`encode_group` result per group, in
        :attr:`group_starts` order; for early fusion the one window's features):
        ``-> (N, num_slices * out_channels, out_size[0], out_size[1])``.
        """
        if len(features) != len(self.group_starts):
            raise ValueError(
                f"decode expects {len(self.group_starts)} group features (group_starts={self.group_starts}), "
                f"got {len(features)}."
            )
        for f in features:
            if len(f) != self.num_scales:
                raise ValueError(
                    f"decode expects {self.num_scales} features per group (decoder='{self.decoder_name}'), got {len(f)}."
                )
        f1 = [f[-1] for f in features]  # O_g: each group's f1 feature
        fused = self.compress(torch.cat(f1, dim=1))
        high = self.encoder.forward_f2(fused)
        size = [int(out_size[0]), int(out_size[1])]
        if self.full_resolution:
            slices = torch.cat([f[0] for f in features], dim=1)
            stem = self.compress_stem(torch.cat([f[1] for f in features], dim=1))
            u = self.decoder([slices, stem, fused], high, size)
        else:
            u = self.decoder(fused, high)
        logits = self.head(u, f1)
        if logits.shape[2] == size[0] and logits.shape[3] == size[1]:  # the "unet" decoder ends at out_size
            return logits
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, num_slices, H, W) -> (N, num_slices * out_channels, H, W)`` logits."""
        if x.dim() != 4 or x.shape[1] != self.num_slices:
            raise ValueError(f"T2DNet expects (N, {self.num_slices}, H, W), got shape {list(x.shape)}.")
        if self.supports_group_cache:
            features = [self._encode(x[:, s : s + self.group_size]) for s in self.group_starts]
        else:
            features = [self._encode(x)]
        return self.decode(features, [x.shape[2], x.shape[3]])


def _compression(groups: int, channels: int, norm: str | tuple) -> nn.Module:
    """ESM's compression of ``groups`` concatenated ``channels``-wide features: two 1x1 conv-norm-ReLU,
    ``groups * channels -> groups * channels // 2 -> channels``; the identity for ``groups == 0`` (no ESM)."""
    if groups == 0:
        return nn.Identity()
    cat_channels = groups * channels
    return nn.Sequential(
        conv_norm_relu(cat_channels, cat_channels // 2, 1, norm), conv_norm_relu(cat_channels // 2, channels, 1, norm)
    )


@deprecated(since="0.1.0", removed="0.2.0", msg_suffix="use t2d_monai.utils.window_starts(num_slices, group_size, group_size).", version_val=__version__)
def group_starts(num_slices: int, group_size: int) -> list[int]:
    """Start of each mini-group of ``group_size`` slices in a window of ``num_slices`` slices (deprecated alias)."""
    return window_starts(num_slices, group_size, group_size)
