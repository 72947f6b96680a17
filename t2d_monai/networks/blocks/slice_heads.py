"""Prediction heads of T2DNet: per-slice logits from the fused decoder feature U (and, with slice attention,
from each mini-group's pre-fusion feature O_g), including the eval-mode folding of slice-sensitive
attention into one linear map per group."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from t2d_monai.networks.blocks.slice_attention import SliceSensitiveAttention, fused_feature_moments
from t2d_monai.networks.protocols import MomentAffineNorm

__all__ = ["GroupSliceHead", "PlainSliceHead", "SSAGroupSliceHead", "make_slice_head"]


class PlainSliceHead(nn.Module):
    """All slices predicted from the fused feature by one 1x1 convolution."""

    def __init__(self, channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, out_channels, 1)

    def forward(self, u: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        return self.conv(u)


class GroupSliceHead(nn.Module):
    """
    One prediction per mini-group g from ``Z_g = block(U, O_g)``: the rows of group g's slices of one 1x1
    convolution with a row per slice and class (``num_slices * out_channels`` rows, as the plain head), so
    slice ``s`` is predicted by its own weights from the feature of its group. Slices covered by two
    overlapping groups get the mean of both logits.
    """

    def __init__(
        self, block: nn.Module, channels: int, starts: list[int], num_slices: int, group_size: int, out_channels: int
    ) -> None:
        super().__init__()
        self.block = block
        self.conv = nn.Conv2d(channels, num_slices * out_channels, 1)
        self.starts: list[int] = list(starts)
        self.total = num_slices * out_channels
        self.width = group_size * out_channels
        self.out_channels = out_channels
        coverage = torch.zeros(num_slices)
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
        """``u (N, C, h, w)``, features ``[(N, C1, h', w')]`` (one O_g per group; ``(h', w')`` may differ from U's,
        e.g. stride 4 against the ``"unet"`` decoder's full resolution: each block handles it) ->
        ``(N, num_slices * out_channels, h, w)`` logits."""
        out = torch.zeros_like(u[:, :1]).expand(-1, self.total, -1, -1)
        bias = self.conv_bias()
        for i, o in enumerate(features):
            first = self.starts[i] * self.out_channels
            rows = slice(first, first + self.width)
            pred = F.conv2d(self.block(u, o), self.conv.weight[rows], bias[rows])
            out = out + F.pad(pred, [0, 0, 0, 0, first, self.total - first - self.width])
        return out * self.inv_coverage


class SSAGroupSliceHead(GroupSliceHead):
    """
    :class:`GroupSliceHead` with slice-sensitive attention whose output norm is affine given its input's
    statistics (switchable norm). Training runs the blocks as they are; in eval mode the same function is
    computed without materialising any group's ``(N, C, h, w)`` attention output: U's keys, mean and
    covariance are computed once and every group's SSA + 1x1 head folds into one ``(K, C)`` map per sample
    (:meth:`~t2d_monai.networks.blocks.SliceSensitiveAttention.project`), so all slices' logits come from
    one ``(N, num_slices * out_channels, C) x (N, C, h*w)`` product.
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


def make_slice_head(
    block: nn.Module | None, channels: int, starts: list[int], num_slices: int, group_size: int, out_channels: int
) -> nn.Module:
    """The head for a slice-fusion ``block`` (None: :class:`PlainSliceHead`): SSA whose output norm is a
    :class:`~t2d_monai.networks.protocols.MomentAffineNorm` gets the folded eval path
    (:class:`SSAGroupSliceHead`), any other block :class:`GroupSliceHead`."""
    if block is None:
        return PlainSliceHead(channels, num_slices * out_channels)
    foldable = isinstance(block, SliceSensitiveAttention) and isinstance(block.norm, MomentAffineNorm)
    head_type = SSAGroupSliceHead if foldable else GroupSliceHead
    return head_type(block, channels, starts, num_slices, group_size, out_channels)
