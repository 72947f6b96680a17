"""Thick-slice inference: run a thickened 2D network over every window of ``k`` slices of a volume.

Testing protocol of Yu et al., "Thickened 2D Networks for Efficient 3D Medical Image Segmentation"
(https://arxiv.org/abs/1904.01150), section 4.2.2: the volume is cut into 15-slice windows that
overlap by 14 slices (stride 1), and each slice's probabilities are averaged over all the windows
that cover it. Optionally (``weighting="gaussian"``, not in the paper) the average is weighted by the
slice's position in each window, as MONAI's ``SlidingWindowInferer(mode="gaussian")`` weights patches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.data import MetaTensor
from monai.data.utils import compute_importance_map
from monai.inferers import Inferer
from monai.utils import convert_to_dst_type, ensure_tuple_rep, look_up_option

from t2d_monai.transforms.slab import SLICE_PAD_MODES, pad_slices, slice_padding
from t2d_monai.networks.protocols import GroupCacheNetwork, missing_members
from t2d_monai.utils import unwrap_parallel, window_starts

__all__ = ["ACTIVATIONS", "WEIGHTINGS", "ThickSliceInferer", "slab_weights"]

#: how the network's per-slice logits become the averaged values.
ACTIVATIONS = ("auto", "sigmoid", "softmax", "none")
#: how a window's slices are weighted in the average over windows.
WEIGHTINGS = ("uniform", "gaussian")


def slab_weights(
    num_slices: int, weighting: str | Sequence[float] = "uniform", sigma_scale: float = 0.125
) -> torch.Tensor:
    """Weight of each position of a ``num_slices``-slice window in the average over windows: ``(num_slices,)``.

    - ``"uniform"``: all ones (the paper's plain average);
    - ``"gaussian"``: MONAI's 1D importance map (:func:`monai.data.utils.compute_importance_map`, as
      ``SlidingWindowInferer(mode="gaussian")`` uses per axis): ``exp(-x**2 / (2 * sigma**2))`` at
      ``x = j - (num_slices - 1) / 2``, ``sigma = sigma_scale * num_slices``, clamped to at least ``1e-3``, so
      the weights are symmetric, strictly positive and largest at the centre (1 for odd ``num_slices``);
    - a sequence of ``num_slices`` positive numbers: those weights, position ``j`` first to last (e.g. to
      measure what each position of the window predicts).

    Raises:
        ValueError: an unknown name, or a sequence that is not ``num_slices`` positive finite numbers.

    Example::

        >>> slab_weights(5, "gaussian", 0.25)
        tensor([0.2780, 0.7261, 1.0000, 0.7261, 0.2780])
    """
    if not isinstance(weighting, str):
        return torch.as_tensor(_position_weights(weighting, num_slices), dtype=torch.float32)
    weighting = look_up_option(weighting, WEIGHTINGS)
    if weighting == "uniform":
        return torch.ones(num_slices)
    return compute_importance_map((int(num_slices),), mode="gaussian", sigma_scale=float(sigma_scale), device="cpu")


def _position_weights(weights: Any, num_slices: int) -> tuple[float, ...]:
    """``weights`` as ``num_slices`` positive finite floats, or a ValueError that says what is expected."""
    values = tuple(weights) if isinstance(weights, Sequence) else ()
    ok = len(values) == num_slices and all(
        isinstance(w, (int, float)) and not isinstance(w, bool) and 0 < w < float("inf") for w in values
    )
    if not ok:
        raise ValueError(
            f"weighting must be 'uniform', 'gaussian' or {num_slices} positive numbers (one per window position), "
            f"got {weights!r}."
        )
    return tuple(float(w) for w in values)


class ThickSliceInferer(Inferer):
    """Average a thickened 2D network's slice predictions over all windows of ``num_slices`` slices.

    ``inferer(inputs, network)`` takes ``inputs`` ``(N, 1, H, W, D)`` with the slicing axis last
    (see :class:`~t2d_monai.transforms.ViewPermute`) and returns ``(N, out_channels, H, W, D)``:

    - windows of ``num_slices`` slices start at ``0, stride, 2 * stride, ...`` plus one ending at
      the last slice when the stride does not reach it (:func:`window_starts`); a volume with
      ``D < num_slices`` is padded along the slices (``pad_mode``, as
      :class:`~t2d_monai.transforms.ThickSlab` does at training time) and cropped back;
    - each window ``(B, num_slices, H, W)`` (``batch_size`` windows per forward) goes through the
      network, which returns ``(B, num_slices * out_channels, H, W)`` logits with channel
      ``s * out_channels + c`` = class ``c`` of slice ``s`` (any ``nn.Module`` with that mapping
      works); ``out_channels`` is the output channel count divided by ``num_slices``;
    - logits become probabilities per slice (``activation="auto"``: sigmoid for one class,
      softmax over the classes otherwise) and every slice gets the mean over the windows that
      cover it (all its pixels are covered by the same windows);
    - ``weighting="gaussian"`` makes that mean a weighted one: a slice at position ``j`` of a window
      counts with weight ``w[j]`` (:func:`slab_weights`: a 1D Gaussian over the window's ``num_slices``
      positions centred on the middle, ``sigma = sigma_scale * num_slices``, as MONAI's
      ``SlidingWindowInferer(mode="gaussian")``), and the sum is divided by the slice's summed weights,
      so a slice covered by one window keeps that window's value. Predictions near a window's ends,
      which see context on one side only, count less. ``"uniform"`` (default, the paper's) weights all
      positions equally;
    - ``pad_ends=True`` pads ``num_slices - 1`` more slices (``pad_mode``) at each end of the volume, so that its
      first and last slices are also seen at every window position, not only at a window's end position (with
      ``weighting="gaussian"`` a weight of about 0.004 at k = 6, and, for a network trained without loss on its
      end slices, :class:`~t2d_monai.losses.SlabLoss` ``margin``, the only prediction they would get);

    With ``inplane_min_size`` and/or ``inplane_divisor`` the slices are padded (symmetrically, zeros) so H and
    W become at least ``inplane_min_size`` and then multiples of ``inplane_divisor``, and the output is
    cropped back to ``(H, W)``: a volume one voxel wide in a slice direction (a single slice seen from
    another view, ``(X, Y, 1)`` in the coronal view is slices of ``X x 1``) still reaches the network's
    deepest, normalised layers with more than one pixel (the bundles pass ``2 * output_stride``).

    f1 cache: when the network (or the ``.module`` of a ``DataParallel``/``DistributedDataParallel``
    wrapper) implements :class:`~t2d_monai.networks.GroupCacheNetwork` with ``supports_group_cache = True``
    (T2DNet with ``fusion="esm"``), the inferer calls
    ``encode_group`` once per absolute group start and ``decode`` per window batch, reusing each
    group's encoding (every tensor of the list ``encode_group`` returns: ``[f1]``, or ``[slices, stem, f1]``
    for T2DNet's ``decoder="unet"``) across overlapping windows: with 15 slices, groups of 3 and
    stride 1 that is 5 times fewer f1 passes, with the same output as the plain forward (float32,
    < 1e-5). The cache is skipped when ``cache_f1=False`` or extra ``*args``/``**kwargs`` are passed
    to the call.

    Memory bound: besides the input, one padded slice-major copy of it ``(N, D, H, W)`` and the
    output accumulator ``(N, out_channels, H, W, D)`` (on ``device``), at most two window batches
    are alive at a time (one being built while the previous one's results are released), and the
    f1 cache holds only groups that a window of the current batch or a later one still needs: the
    encodings alive (all their scales) come from encode calls covering at most
    ``2 * ((batch_size - 1) * stride + num_slices)`` group starts. Neither bound depends on D.

    Args:
        num_slices: slices per window ``k``; paper default 15.
        stride: slices between consecutive windows; paper default 1 (14 slices overlap). A larger stride decodes
            each slice about ``num_slices / stride`` times instead of ``num_slices``; for a network trained without
            loss on ``m`` end slices of its slabs (``SlabLoss(margin=m)``) keep it at most ``num_slices - 2 * m``.
        batch_size: windows per network call.
        sw_device: device of the windows and the network computation; default: the input's device.
        device: device of the output accumulator and result; default: the input's device.
        progress: show a tqdm progress bar over the window batches.
        cache_f1: reuse each group's f1 feature across windows when the network supports it.
        inplane_divisor: pad H and W to multiples of this (int or pair); None or 1: no padding.
        inplane_min_size: pad H and W to at least this (int or pair), before ``inplane_divisor``; None or 1:
            no padding.
        activation: ``"auto"`` (default), ``"sigmoid"``, ``"softmax"`` or ``"none"`` (average the logits).
        pad_mode: padding along the slices for ``D < num_slices`` and for ``pad_ends``: ``"edge"`` (default: the end
            slices repeated), ``"constant"`` (zeros) or ``"reflect"`` (the volume mirrored at its end slices).
        weighting: ``"uniform"`` (default), ``"gaussian"``, or ``num_slices`` positive weights (first position
            first): weight of a window's slices by position (:func:`slab_weights`).
        sigma_scale: the Gaussian's sigma as a fraction of ``num_slices`` (``weighting="gaussian"`` only);
            default 0.125, MONAI's.
        pad_ends: pad ``num_slices - 1`` slices at each end of the volume so its end slices are seen at every
            window position. Defaults to False (the paper's: a volume is padded only when ``D < num_slices``).

    Raises:
        ValueError: for a bad argument; at call time when ``inputs`` is not ``(N, 1, H, W, D)``, the
            network's ``num_slices`` differs from the inferer's, or its output is not
            ``(B, num_slices * C, H, W)``.
        TypeError: at call time, for a network that sets ``supports_group_cache = True`` but does not
            implement :class:`~t2d_monai.networks.GroupCacheNetwork` (or whose ``encode_group`` returns
            no list), unless ``cache_f1=False``.

    Example::

        >>> net = torch.nn.Conv2d(15, 30, 3, padding=1)  # any (N, 15, H, W) -> (N, 15 * 2, H, W) module
        >>> ThickSliceInferer(num_slices=15, batch_size=4)(torch.rand(1, 1, 32, 32, 20), net).shape
        torch.Size([1, 2, 32, 32, 20])
    """

    def __init__(
        self,
        num_slices: int = 15,
        stride: int = 1,
        batch_size: int = 1,
        sw_device: torch.device | str | None = None,
        device: torch.device | str | None = None,
        progress: bool = False,
        cache_f1: bool = True,
        inplane_divisor: int | Sequence[int] | None = None,
        activation: str = "auto",
        pad_mode: str = "edge",
        weighting: str | Sequence[float] = "uniform",
        sigma_scale: float = 0.125,
        inplane_min_size: int | Sequence[int] | None = None,
        pad_ends: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (("num_slices", num_slices), ("stride", stride), ("batch_size", batch_size)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if stride > num_slices:
            raise ValueError(
                f"stride={stride} > num_slices={num_slices} would skip slices; use a stride of at most num_slices."
            )
        divisor = ensure_tuple_rep(1 if inplane_divisor is None else inplane_divisor, 2)
        if any(int(d) != d or d < 1 for d in divisor):
            raise ValueError(f"inplane_divisor must be None or positive integer(s), got {inplane_divisor!r}.")
        min_size = ensure_tuple_rep(1 if inplane_min_size is None else inplane_min_size, 2)
        if any(int(m) != m or m < 1 for m in min_size):
            raise ValueError(f"inplane_min_size must be None or positive integer(s), got {inplane_min_size!r}.")
        self.num_slices = int(num_slices)
        self.stride = int(stride)
        self.batch_size = int(batch_size)
        self.sw_device = sw_device
        self.device = device
        self.progress = bool(progress)
        self.cache_f1 = bool(cache_f1)
        self.inplane_divisor: tuple[int, int] = (int(divisor[0]), int(divisor[1]))
        self.inplane_min_size: tuple[int, int] = (int(min_size[0]), int(min_size[1]))
        self.activation = look_up_option(activation, ACTIVATIONS)
        self.pad_mode = look_up_option(pad_mode, SLICE_PAD_MODES)
        self.weighting: str | tuple[float, ...] = (
            look_up_option(weighting, WEIGHTINGS) if isinstance(weighting, str)
            else _position_weights(weighting, self.num_slices)
        )
        is_number = isinstance(sigma_scale, (int, float)) and not isinstance(sigma_scale, bool)
        if not is_number or not 0 < sigma_scale < float("inf"):
            raise ValueError(f"sigma_scale must be a positive number, got {sigma_scale!r}.")
        self.sigma_scale = float(sigma_scale)
        if not isinstance(pad_ends, bool):
            raise ValueError(f"pad_ends must be True or False, got {pad_ends!r}.")
        self.pad_ends = pad_ends

    def __call__(self, inputs: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Infer ``(N, out_channels, H, W, D)`` from ``inputs`` ``(N, 1, H, W, D)``.

        Args:
            inputs: batch of one-channel volumes, slicing axis last.
            network: ``(B, num_slices, H, W) -> (B, num_slices * C, H, W)`` module (or callable).
            args: extra positional arguments for ``network`` (disable the f1 cache).
            kwargs: extra keyword arguments for ``network`` (disable the f1 cache).
        """
        if inputs.ndim != 5 or inputs.shape[1] != 1:
            raise ValueError(
                f"ThickSliceInferer expects inputs of shape (N, 1, H, W, D) with the slicing axis last, "
                f"got {tuple(inputs.shape)}."
            )
        net = unwrap_parallel(network) if isinstance(network, torch.nn.Module) else network
        use_cache = self._use_group_cache(net) and not args and not kwargs
        temp_meta = MetaTensor([]).copy_meta_from(inputs, copy_attr=False) if isinstance(inputs, MetaTensor) else None
        x = inputs.as_tensor() if isinstance(inputs, MetaTensor) else inputs
        device = torch.device(self.device) if self.device is not None else x.device
        sw_device = torch.device(self.sw_device) if self.sw_device is not None else x.device

        n, _, height, width, depth = x.shape
        before, after = self.slice_padding(depth)
        inplane = [(p // 2, p - p // 2) for p in self._inplane_padding(height, width)]
        with torch.no_grad():
            x = pad_slices(x, before, after, self.pad_mode)
            if any(sum(p) for p in inplane):
                x = torch.nn.functional.pad(x, (0, 0, *inplane[1], *inplane[0]))
            x = x[:, 0].permute(0, 3, 1, 2).contiguous()  # (N, D', H', W'): every window is a contiguous block
            starts = self.window_starts(depth)
            batches = [starts[i : i + self.batch_size] for i in range(0, len(starts), self.batch_size)]
            weights = slab_weights(self.num_slices, self.weighting, self.sigma_scale).to(device)  # (k,)
            weighted = self.weighting != "uniform"
            count = torch.zeros(x.shape[1], device=device)  # summed weights per slice
            for s in starts:
                count[s : s + self.num_slices] += weights
            output: torch.Tensor | None = None
            cache: dict[int, list[torch.Tensor]] = {}  # encoding of the group starting at each absolute slice
            steps = [(b, chunk) for b in range(n) for chunk in batches]
            for b, chunk in _progress(steps, self.progress):
                volume = x[b]  # (D', H', W')
                if chunk is batches[0]:
                    cache = {}  # a new volume
                if use_cache:
                    logits = self._cached_logits(net, volume, chunk, cache, sw_device)
                else:
                    windows = torch.stack([volume[s : s + self.num_slices] for s in chunk])
                    logits = network(windows.to(sw_device), *args, **kwargs)
                    del windows
                probs = self._probabilities(logits, len(chunk), volume.shape[1:])
                del logits
                probs = probs[..., inplane[0][0] : inplane[0][0] + height, inplane[1][0] : inplane[1][0] + width]
                if output is None:
                    dtype = torch.promote_types(probs.dtype, torch.float32)
                    output = torch.zeros((n, probs.shape[2], height, width, x.shape[1]), dtype=dtype, device=device)
                for i, s in enumerate(chunk):  # probs[i]: (k, C, H, W) -> (C, H, W, k)
                    window = probs[i].permute(1, 2, 3, 0).to(device)
                    output[b, ..., s : s + self.num_slices] += window * weights if weighted else window
                del probs
            if output is None:  # unreachable: every volume has at least one window
                raise RuntimeError("no window was run.")
            output = output[..., before : before + depth] / count[before : before + depth].to(output.dtype)
        if temp_meta is not None:
            return convert_to_dst_type(output, temp_meta, device=device)[0]
        return output

    def slice_padding(self, depth: int) -> tuple[int, int]:
        """Slices ``(before, after)`` added to a volume of ``depth`` slices before its windows are placed.

        Up to one window of ``num_slices`` (:func:`~t2d_monai.transforms.slab.slice_padding`), plus
        ``num_slices - 1`` at each end with ``pad_ends``.
        """
        before, after = slice_padding(depth, self.num_slices)
        end = self.num_slices - 1 if self.pad_ends else 0
        return before + end, after + end

    def window_starts(self, depth: int, stride: int | None = None) -> list[int]:
        """Starts, in the padded volume (:meth:`slice_padding`), of the windows run over ``depth`` slices at
        ``stride`` (default: the inferer's): :func:`~t2d_monai.utils.window_starts` over the padded depth."""
        padded = depth + sum(self.slice_padding(depth))
        return window_starts(padded, self.num_slices, self.stride if stride is None else stride)

    def _inplane_padding(self, height: int, width: int) -> list[int]:
        """Pixels to add to H and W: up to ``inplane_min_size``, then to a multiple of ``inplane_divisor``."""
        pads = []
        for size, least, divisor in zip((height, width), self.inplane_min_size, self.inplane_divisor):
            target = max(size, least)
            pads.append(target + (-target % divisor) - size)
        return pads

    def _use_group_cache(self, net: Any) -> bool:
        """Whether to cache mini-group features for ``net``; checks its ``num_slices`` against the inferer's.

        Raises:
            ValueError: a :class:`~t2d_monai.networks.GroupCacheNetwork` whose ``num_slices`` differs.
            TypeError: a network that says ``supports_group_cache = True`` but lacks part of the contract.
        """
        if not isinstance(net, GroupCacheNetwork):
            if self.cache_f1 and getattr(net, "supports_group_cache", False):
                raise TypeError(
                    f"{type(net).__name__} sets supports_group_cache=True but does not implement "
                    f"t2d_monai.networks.GroupCacheNetwork (missing: {missing_members(net, GroupCacheNetwork)}); "
                    "implement the missing members, set supports_group_cache=False, or pass cache_f1=False."
                )
            return False
        if int(net.num_slices) != self.num_slices:
            raise ValueError(
                f"the network takes num_slices={int(net.num_slices)} but the inferer has num_slices={self.num_slices}; "
                "make them equal."
            )
        return self.cache_f1 and bool(net.supports_group_cache)

    def _cached_logits(
        self,
        net: GroupCacheNetwork,
        volume: torch.Tensor,
        chunk: list[int],
        cache: dict[int, list[torch.Tensor]],
        sw_device: torch.device,
    ) -> torch.Tensor:
        """Logits of the windows starting at ``chunk`` from cached group encodings of ``volume`` ``(D, H, W)``
        (one list of per-scale tensors per absolute group start, each with batch 1)."""
        group_size, group_starts = int(net.group_size), [int(g) for g in net.group_starts]
        for key in [key for key in cache if key < chunk[0]]:  # no later window needs these groups
            del cache[key]
        missing = sorted({s + g for s in chunk for g in group_starts}.difference(cache))
        if missing:
            groups = torch.stack([volume[a : a + group_size] for a in missing])
            encoded = net.encode_group(groups.to(sw_device))  # one (len(missing), C_j, h_j, w_j) per scale
            del groups
            if isinstance(encoded, torch.Tensor) or not isinstance(encoded, (list, tuple)):
                raise TypeError(
                    f"{type(net).__name__}.encode_group must return a list of tensors (one per scale, see "
                    f"t2d_monai.networks.GroupCacheNetwork), got {type(encoded).__name__}; return [feature] for one "
                    "scale, or pass cache_f1=False."
                )
            for i, a in enumerate(missing):
                cache[a] = [scale[i : i + 1] for scale in encoded]
            del encoded
        scales = len(cache[chunk[0] + group_starts[0]])
        features = [
            [torch.cat([cache[s + g][j] for s in chunk]) for j in range(scales)] for g in group_starts
        ]
        return net.decode(features, [int(volume.shape[1]), int(volume.shape[2])])

    def _probabilities(self, logits: torch.Tensor, batch: int, size: Sequence[int]) -> torch.Tensor:
        """``(B, k * C, H, W)`` logits -> ``(B, k, C, H, W)`` probabilities, checking the layout."""
        channels = int(logits.shape[1]) if logits.ndim == 4 else 0
        if (
            logits.ndim != 4
            or logits.shape[0] != batch
            or channels % self.num_slices
            or channels == 0
            or tuple(logits.shape[2:]) != tuple(size)
        ):
            raise ValueError(
                f"the network must map (B, {self.num_slices}, H, W) = ({batch}, {self.num_slices}, {size[0]}, "
                f"{size[1]}) to (B, {self.num_slices} * out_channels, H, W), got {tuple(logits.shape)}; "
                "check num_slices, and inplane_divisor if the network changes H or W."
            )
        out = logits.reshape(batch, self.num_slices, channels // self.num_slices, *logits.shape[2:])
        activation = self.activation
        if activation == "auto":
            activation = "sigmoid" if out.shape[2] == 1 else "softmax"
        if activation == "sigmoid":
            return torch.sigmoid(out)
        if activation == "softmax":
            return torch.softmax(out, dim=2)
        return out


def _progress(steps: list, show: bool) -> Any:
    if not show:
        return steps
    from tqdm import tqdm

    return tqdm(steps, desc="thick-slice windows", unit="batch")
