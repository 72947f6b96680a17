"""Ways to bring one mini-group's pre-fusion feature O_g back into the fused decoder feature U
(Yu et al. 2019, Table 3): slice-sensitive attention (SSA), concatenation, element-wise product."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from monai.networks.layers.utils import get_norm_layer
from monai.utils import look_up_option
from torch import nn

from t2d_monai.networks.layers import switch_norm as _switch_norm  # noqa: F401  registers "switchable"

__all__ = [
    "SliceSensitiveAttention",
    "ConcatSliceFusion",
    "DotSliceFusion",
    "SLICE_FUSION_BLOCKS",
    "fused_feature_moments",
    "make_slice_fusion",
    "resize_to",
]


def _conv1x1(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, bias=False)


def resize_to(o: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``o (N, C_g, h', w')`` bilinearly resized (``align_corners=False``) to ``u``'s ``(h, w)``; ``o`` itself
    when the sizes already agree (T2DNet's stride-4 ``"deeplabv3plus"`` decoder, where U has f1's size)."""
    if o.shape[2] == u.shape[2] and o.shape[3] == u.shape[3]:
        return o
    return F.interpolate(o, size=[u.shape[2], u.shape[3]], mode="bilinear", align_corners=False)


class SliceSensitiveAttention(nn.Module):
    """
    Slice-Sensitive Attention of Yu et al. 2019 (https://arxiv.org/abs/1904.01150, Sec. 3.3.2, 4.2.1):
    a channel-wise non-local block (C x C affinity instead of HW x HW) between one mini-group's
    pre-fusion feature ``O_g`` and the fused decoder feature ``U``.

    The paper gives no code; this is our reading (see docs/networks.md):

    - pre-processing: both inputs adaptively average-pooled to ``pool_size`` (32x32) and passed through
      a 1x1 convolution to ``channels``: ``q = θ(pool(O_g))``, ``k = φ(pool(U))``, each ``(N, C, P)`` with
      ``P = pool_size**2``;
    - affinity: ``A = softmax(q kᵀ / sqrt(P))`` of shape ``(N, C, C)``, the softmax over U's channels
      (the normalisation ``Z(x)`` of the paper's ``y_p = 1/Z(x) Σ_q f(x_p, x_q) g(x_q)``);
    - value: ``g(U)``, a 1x1 convolution of ``U`` at full resolution, so ``y = A g(U)`` is ``(N, C, h, w)``;
      ``O_g`` enters only through its pooled query, so it may have another resolution than ``U`` (with
      T2DNet's ``"unet"`` decoder U is at the input size, O_g at stride 4);
    - output: ``U + norm(y)`` with switchable normalization (the paper's "switchable normalization at the
      output"), a residual onto ``U`` as in non-local blocks; the norm's scale is initialised to zero (as
      non-local blocks initialise their output batch norm), so the block starts as the identity.

    Args:
        group_channels: channels of ``O_g`` (the f1 output).
        channels: channels of ``U`` (the decoder width).
        pool_size: side of the adaptive average pooling. Defaults to 32.
        norm: MONAI norm for the output. Defaults to ``"switchable"``.

    Example::

        >>> ssa = SliceSensitiveAttention(64, 256)
        >>> ssa(torch.randn(2, 256, 9, 12), torch.randn(2, 64, 9, 12)).shape
        torch.Size([2, 256, 9, 12])
    """

    def __init__(
        self, group_channels: int, channels: int, pool_size: int = 32, norm: str | tuple = "switchable"
    ) -> None:
        super().__init__()
        if int(pool_size) < 1:
            raise ValueError(f"pool_size must be >= 1, got {pool_size!r}.")
        self.pool_size = int(pool_size)
        self.query = _conv1x1(group_channels, channels)
        self.key = _conv1x1(channels, channels)
        self.value = _conv1x1(channels, channels)
        self.norm = get_norm_layer(norm, 2, channels)
        # as in non-local blocks (Wang et al. 2018), the output scale starts at zero: the block starts as the
        # identity on U and T2DNet starts as plain ESM, and the attention grows in as it learns
        if isinstance(getattr(self.norm, "weight", None), nn.Parameter):
            nn.init.zeros_(self.norm.weight)
        self.scale = 1.0 / math.sqrt(float(self.pool_size * self.pool_size))

    def forward(self, u: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
        """``u (N, C, h, w)`` fused feature, ``o (N, C_g, h', w')`` group feature -> ``(N, C, h, w)``."""
        n, c, h, w = u.shape[0], u.shape[1], u.shape[2], u.shape[3]
        mixing = self.mixing(o, self.keys(u))
        y = torch.bmm(mixing, u.reshape(n, c, h * w)).reshape(n, c, h, w)
        return u + self.norm(y)

    def keys(self, u: torch.Tensor) -> torch.Tensor:
        """``k = φ(pool(U))``: ``u (N, C, h, w) -> (N, C, P)``; it does not depend on the group."""
        size = [self.pool_size, self.pool_size]
        return self.key(F.adaptive_avg_pool2d(u, size)).reshape(u.shape[0], u.shape[1], -1)

    def mixing(self, o: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """
        ``A W_g``: the ``(N, C, C)`` matrix with ``y = (A W_g) U``, from the group feature ``o (N, C_g, h', w')``
        and the keys ``k (N, C, P)`` of :meth:`keys`.
        """
        n, c = k.shape[0], k.shape[1]
        size = [self.pool_size, self.pool_size]
        q = self.query(F.adaptive_avg_pool2d(o, size)).reshape(n, c, -1)
        affinity = torch.softmax(torch.bmm(q, k.transpose(1, 2)) * self.scale, dim=-1)  # (N, C, C)
        # A g(U) with g a bias-free 1x1 conv W: computed as (A W) U, one C x C x HW product per group
        return torch.matmul(affinity, self.value.weight.reshape(c, c))

    def project(
        self,
        o: torch.Tensor,
        k: torch.Tensor,
        mean: torch.Tensor,
        cov: torch.Tensor,
        spatial_size: int,
        weight: torch.Tensor,
        bias: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        A 1x1 convolution of the SSA output, ``conv(ssa(U, O_g))``, as one per-sample linear map of ``U``:
        ``(W', b')`` with ``conv(ssa(U, O_g)) == W' U + b'`` (``U`` flattened to ``(N, C, h*w)``), for a block
        whose output norm is :class:`~t2d_monai.networks.layers.SwitchNorm` (any
        :class:`~t2d_monai.networks.protocols.MomentAffineNorm`).

        Why: ``y = M U`` is linear in ``U``, so its per-channel mean and variance (all the switchable norm
        needs) follow from U's mean and covariance (:func:`fused_feature_moments`, computed once per window and
        shared by the groups), and the norm becomes a per-channel affine map. With ``K`` output maps the
        per-group cost drops from a ``C x C x hw`` product plus the norm's passes over ``(N, C, h, w)`` to a
        ``K x C x hw`` product, with the same result up to float rounding.

        Args:
            o: ``(N, C_g, h', w')`` group feature.
            k: ``(N, C, P)`` keys of U (:meth:`SliceSensitiveAttention.keys`).
            mean, cov: ``(N, C)`` and ``(N, C, C)`` moments of U (:func:`fused_feature_moments`).
            spatial_size: ``h * w``.
            weight, bias: ``(K, C)`` and ``(K,)`` of the 1x1 convolution.

        Returns:
            ``W'`` ``(N, K, C)`` and ``b'`` ``(N, K)``.
        """
        m = self.mixing(o, k)  # y = m U
        mean_y = torch.bmm(m, mean.unsqueeze(-1)).squeeze(-1)
        var_y = (torch.bmm(m, cov) * m).sum(-1)  # diag(m cov m^T)
        scale, shift = self.norm.affine_from_moments(mean_y, var_y, spatial_size)  # norm(y) = scale * y + shift
        w_scaled = weight.unsqueeze(0) * scale.unsqueeze(1)  # (N, K, C)
        return weight.unsqueeze(0) + torch.bmm(w_scaled, m), bias.unsqueeze(0) + torch.matmul(shift, weight.t())


def fused_feature_moments(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(N, C)`` and biased covariance ``(N, C, C)`` of ``u (N, C, h, w)`` over its ``h * w`` positions."""
    flat = u.reshape(u.shape[0], u.shape[1], -1)
    mean = flat.mean(-1)
    centred = flat - mean.unsqueeze(-1)
    return mean, torch.bmm(centred, centred.transpose(1, 2)) / flat.shape[2]


class ConcatSliceFusion(nn.Module):
    """
    Table 3's "Concat" variant: ``ReLU(norm(conv1x1([U, O_g])))`` -> ``(N, channels, h, w)``. ``O_g`` at another
    resolution than ``U`` (T2DNet's full-resolution ``"unet"`` decoder: U at the input size, O_g at stride 4) is
    first bilinearly resized to U's size (:func:`resize_to`).

    Args:
        group_channels: channels of ``O_g``.
        channels: channels of ``U`` and of the output.
        norm: MONAI norm. Defaults to ``"batch"``.
    """

    def __init__(self, group_channels: int, channels: int, norm: str | tuple = "batch") -> None:
        super().__init__()
        self.conv = _conv1x1(channels + group_channels, channels)
        self.norm = get_norm_layer(norm, 2, channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, u: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
        """``u (N, C, h, w)``, ``o (N, C_g, h', w')`` -> ``(N, C, h, w)``."""
        return self.act(self.norm(self.conv(torch.cat([u, resize_to(o, u)], dim=1))))


class DotSliceFusion(nn.Module):
    """
    Table 3's "Dot" variant: element-wise product ``U ⊙ norm(conv1x1(O_g))`` -> ``(N, channels, h, w)``. ``O_g`` at
    another resolution than ``U`` is first bilinearly resized to U's size (:func:`resize_to`), as for
    :class:`ConcatSliceFusion`.

    Args:
        group_channels: channels of ``O_g``.
        channels: channels of ``U`` and of the output.
        norm: MONAI norm. Defaults to ``"batch"``.
    """

    def __init__(self, group_channels: int, channels: int, norm: str | tuple = "batch") -> None:
        super().__init__()
        self.conv = _conv1x1(group_channels, channels)
        self.norm = get_norm_layer(norm, 2, channels)

    def forward(self, u: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
        """``u (N, C, h, w)``, ``o (N, C_g, h', w')`` -> ``(N, C, h, w)``."""
        return u * self.norm(self.conv(resize_to(o, u)))


#: attention name -> block class (plain data; never mutated)
SLICE_FUSION_BLOCKS: dict[str, type[nn.Module]] = {
    "concat": ConcatSliceFusion,
    "dot": DotSliceFusion,
    "ssa": SliceSensitiveAttention,
}


def make_slice_fusion(
    name: str, group_channels: int, channels: int, norm: str | tuple = "batch", ssa_norm: str | tuple = "switchable",
    pool_size: int = 32,
) -> nn.Module:
    """Build the block ``name`` (``"concat"``, ``"dot"`` or ``"ssa"``); ``ssa_norm``/``pool_size`` apply to SSA only."""
    cls = look_up_option(name, SLICE_FUSION_BLOCKS)
    if cls is SliceSensitiveAttention:
        return SliceSensitiveAttention(group_channels, channels, pool_size, ssa_norm)
    return cls(group_channels, channels, norm)
