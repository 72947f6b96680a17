"""Switchable normalization (Luo et al., 2018), registered in MONAI's ``Norm`` factory as ``"switchable"``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.layers.factories import Norm
from torch import nn

__all__ = ["SwitchNorm", "SwitchNorm1d", "SwitchNorm2d", "SwitchNorm3d"]


class SwitchNorm(nn.Module):
    """
    Switchable Normalization: the mean and the variance used to normalise are a learned mixture of
    instance, layer and batch statistics, weighted by two softmax-normalised vectors of three entries
    (order ``[instance, layer, batch]``), one for the means and one for the variances.

    Luo et al., "Differentiable Learning-to-Normalize via Switchable Normalization", ICLR 2019,
    https://arxiv.org/abs/1806.10779. Statistics follow the paper's formulation
    (layer and batch statistics derived from the instance ones); all variances used for normalising
    are biased (as in ``torch.nn.BatchNorm2d``/``InstanceNorm2d``/``LayerNorm``), so a layer whose
    weights select one kind of statistics reproduces that torch layer. In training mode the batch
    statistics update ``running_mean``/``running_var`` like ``torch.nn.BatchNorm2d`` (unbiased running
    variance, ``momentum`` as in torch); in eval mode the batch part uses the running statistics while
    the instance and layer parts are always computed from the input.

    Works for any number of spatial dimensions; :class:`SwitchNorm2d` checks for ``(N, C, H, W)``.

    Args:
        num_features: number of channels ``C``.
        eps: added to the variance. Defaults to 1e-5.
        momentum: running-statistics update factor (torch convention). Defaults to 0.1.
        affine: learn a per-channel scale and shift. Defaults to True.

    Raises:
        ValueError: when ``num_features < 1``, ``eps <= 0`` or ``momentum`` is outside ``[0, 1]``.

    Example::

        >>> norm = SwitchNorm2d(16)
        >>> norm(torch.randn(2, 16, 8, 8)).shape
        torch.Size([2, 16, 8, 8])
    """

    _spatial_dims: int = -1  # any number of spatial dimensions

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True) -> None:
        super().__init__()
        if int(num_features) < 1:
            raise ValueError(f"num_features must be a positive channel count, got {num_features!r}.")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}.")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1] (torch convention), got {momentum!r}.")
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.affine = bool(affine)
        self._name = type(self).__name__
        self.spatial_dims: int = self._spatial_dims
        self.weight = nn.Parameter(torch.ones(self.num_features))
        self.bias = nn.Parameter(torch.zeros(self.num_features))
        if not self.affine:
            self.weight.requires_grad_(False)
            self.bias.requires_grad_(False)
        #: importance logits of [instance, layer, batch] statistics, for the mean and the variance
        self.mean_weight = nn.Parameter(torch.ones(3))
        self.var_weight = nn.Parameter(torch.ones(3))
        self.register_buffer("running_mean", torch.zeros(self.num_features))
        self.register_buffer("running_var", torch.ones(self.num_features))

    def reset_running_stats(self) -> None:
        self.running_mean.zero_()
        self.running_var.fill_(1.0)

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise ValueError(
                f"{self._name}({self.num_features}) expects input (N, {self.num_features}, ...), "
                f"got shape {list(x.shape)}."
            )
        if self.spatial_dims >= 0 and x.dim() != self.spatial_dims + 2:
            raise ValueError(
                f"{self._name} expects a {self.spatial_dims + 2}D input, got shape {list(x.shape)}."
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` of shape ``(N, C, *spatial)`` -> same shape."""
        self._check_input_dim(x)
        n, c = x.shape[0], x.shape[1]
        flat = x.reshape(n, c, -1)
        var_in, mean_in = torch.var_mean(flat, dim=-1, unbiased=False)  # (N, C) each
        scale, shift = self.affine_from_moments(mean_in, var_in, flat.shape[2])
        return torch.addcmul(shift.unsqueeze(-1), flat, scale.unsqueeze(-1)).reshape(x.shape)

    def affine_from_moments(
        self, mean_in: torch.Tensor, var_in: torch.Tensor, spatial_size: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        The normalisation of an input as a per-sample, per-channel affine map, from its statistics alone:
        ``forward(x) == x * scale[..., None] + shift[..., None]`` (flattened spatially).

        Args:
            mean_in: ``(N, C)`` mean of each sample's channel over its ``spatial_size`` positions.
            var_in: ``(N, C)`` biased variance of the same.
            spatial_size: number of spatial positions per sample (for the running-variance update).

        Returns:
            ``scale`` and ``shift``, ``(N, C)`` each. In training mode the running statistics are updated
            exactly as :meth:`forward` does.
        """
        second_in = var_in + mean_in * mean_in  # E[x^2] per (n, c)
        mean_ln = mean_in.mean(1, keepdim=True)  # (N, 1)
        var_ln = second_in.mean(1, keepdim=True) - mean_ln * mean_ln
        if self.training:
            mean_bn = mean_in.mean(0, keepdim=True)  # (1, C)
            var_bn = second_in.mean(0, keepdim=True) - mean_bn * mean_bn
            with torch.no_grad():
                count = mean_in.shape[0] * spatial_size
                unbiased = var_bn.reshape(-1) * (count / max(count - 1, 1))
                self.running_mean.mul_(1.0 - self.momentum).add_(self.momentum * mean_bn.reshape(-1))
                self.running_var.mul_(1.0 - self.momentum).add_(self.momentum * unbiased)
        else:
            mean_bn = self.running_mean.unsqueeze(0)
            var_bn = self.running_var.unsqueeze(0)
        mw = F.softmax(self.mean_weight, 0)
        vw = F.softmax(self.var_weight, 0)
        mean = mw[0] * mean_in + mw[1] * mean_ln + mw[2] * mean_bn
        var = vw[0] * var_in + vw[1] * var_ln + vw[2] * var_bn
        scale = torch.rsqrt(var.clamp_min(0.0) + self.eps) * self.weight
        return scale, self.bias - mean * scale

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class SwitchNorm1d(SwitchNorm):
    """:class:`SwitchNorm` for ``(N, C, L)`` inputs."""

    _spatial_dims = 1


class SwitchNorm2d(SwitchNorm):
    """:class:`SwitchNorm` for ``(N, C, H, W)`` inputs (the layer of the paper's SSA module)."""

    _spatial_dims = 2


class SwitchNorm3d(SwitchNorm):
    """:class:`SwitchNorm` for ``(N, C, D, H, W)`` inputs."""

    _spatial_dims = 3


def _switchable_factory(dim: int) -> type[SwitchNorm]:
    """Switchable normalization (Luo et al. 2018): ``SwitchNorm1d``/``2d``/``3d`` for ``dim`` 1/2/3."""
    types = (SwitchNorm1d, SwitchNorm2d, SwitchNorm3d)
    if dim not in (1, 2, 3):
        raise ValueError(f"switchable normalization supports spatial dims 1, 2 or 3, got {dim!r}.")
    return types[dim - 1]


if "SWITCHABLE" not in Norm.components:  # importing twice (e.g. importlib test mode) must not re-register
    Norm.add_factory_callable("switchable", _switchable_factory)
