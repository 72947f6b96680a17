"""Declared contracts between the networks and the code that drives them.

- :class:`GroupCacheNetwork`: a thick-slice network whose window is split into mini-groups encoded on
  their own (T2DNet with Early-Stage Multiplexing). :class:`~t2d_monai.inferers.ThickSliceInferer`
  caches each group's encoding (all its scales) across overlapping windows when a network satisfies it.
- :class:`MomentAffineNorm`: a normalisation layer that can be written as a per-channel affine map given
  its input's mean and variance (:class:`~t2d_monai.networks.layers.SwitchNorm`); the slice-sensitive
  attention head folds such a norm into its 1x1 prediction in eval mode.

Both are ``typing.Protocol`` classes with ``runtime_checkable``, so ``isinstance`` checks that the members
exist (not their signatures); the docstrings state the semantics the callers rely on.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

__all__ = ["GroupCacheNetwork", "MomentAffineNorm", "missing_members"]


@runtime_checkable
class GroupCacheNetwork(Protocol):
    """A network over windows of ``num_slices`` slices whose mini-groups are encoded independently.

    For every input ``x`` ``(N, num_slices, H, W)``::

        net.decode([net.encode_group(x[:, s : s + net.group_size]) for s in net.group_starts], [H, W]) == net(x)

    A group's encoding is a list of tensors, one per scale (the same number for every group and call): T2DNet
    with ``decoder="deeplabv3plus"`` returns ``[f1]``, with ``decoder="unet"`` ``[stem (stride 2), f1 (stride
    4)]``. Every tensor is batch-first and row ``i`` depends only on input row ``i``, so a caller may encode many
    groups in one batch, keep row ``i`` of each tensor as group ``i``'s encoding, and later concatenate cached
    rows (scale by scale) into the batch of a ``decode`` call. One declared shape for every decoder, so the
    inferer's cache stays generic.

    Members:
        num_slices: slices per window (k).
        group_size: slices per mini-group.
        group_starts: first slice of each mini-group within the window, in the order ``decode`` expects.
        supports_group_cache: True when the identity above holds (False for a network that satisfies the
            protocol structurally but fuses the whole window at once, e.g. T2DNet with ``fusion="early"``).
        encode_group: ``(B, group_size, H, W) -> [(B, C_j, h_j, w_j) for each scale j]``, the encoding of one
            mini-group.
        decode: the encodings (``features[g][j]``: scale ``j`` of the group at ``group_starts[g]``, batch ``B``)
            and ``[H, W]`` -> ``(B, num_slices * out_channels, H, W)`` logits.
    """

    num_slices: int
    group_size: int
    group_starts: list[int]
    supports_group_cache: bool

    def encode_group(self, x_group: torch.Tensor) -> list[torch.Tensor]: ...

    def decode(self, features: list[list[torch.Tensor]], out_size: list[int]) -> torch.Tensor: ...


@runtime_checkable
class MomentAffineNorm(Protocol):
    """A norm that is affine per sample and channel given its input's statistics.

    ``affine_from_moments(mean (N, C), var (N, C), spatial_size) -> (scale (N, C), shift (N, C))`` with
    ``norm(x) == x * scale[..., None, None] + shift[..., None, None]`` for an input ``x`` ``(N, C, h, w)``
    whose per-sample, per-channel mean and biased variance over its ``h * w = spatial_size`` positions are
    ``mean`` and ``var``.
    """

    def affine_from_moments(
        self, mean_in: torch.Tensor, var_in: torch.Tensor, spatial_size: int
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


def missing_members(obj: object, protocol: type) -> list[str]:
    """Names of ``protocol``'s members that ``obj`` lacks (for error messages; empty when it satisfies it)."""
    names = sorted(set(getattr(protocol, "__annotations__", {})) | {
        name for name in vars(protocol) if not name.startswith("_") and callable(getattr(protocol, name))
    })
    return [name for name in names if not hasattr(obj, name)]
