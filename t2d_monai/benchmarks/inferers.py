"""Inference time of the thick-slice inferer (with and without the f1 cache) against 3D and 2D baselines.

Command: ``python -m t2d_monai inferer_benchmark`` (``--help`` for the arguments). It writes
``inferer_benchmark.md`` and ``inferer_benchmark.csv`` into ``out_dir`` (default ``docs``).

One synthetic volume (default 256x256x96, untrained weights: timing only) goes through, in one run:

- ``ThickSliceInferer`` (15 slices, stride 1) with a T2DNet (ESM + SSA, ResNet-50), with and
  without the f1 cache; the two outputs are compared (max abs difference);
- MONAI ``SlidingWindowInferer`` with a MONAI 3D ``UNet`` at the paper's 3D setting scaled to the
  volume: the paper's 128x128x64 patch on its 512x512x394 test case is scaled per axis to this
  volume (64x64x16 for 256x256x96, rounded to a multiple of 8) so the number of windows stays the
  paper's, and the stride 32/32/16 (a quarter of the patch) is kept as ``overlap=0.75``;
- MONAI ``SliceInferer`` with a single-slice 2D DeepLabV3+ (``T2DNet(num_slices=1, fusion="early",
  attention=None)``).

Times are reported in seconds and as ratios to the 3D sliding window.
"""

from __future__ import annotations

import csv
import functools
import importlib
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from monai.utils import ensure_tuple_rep

if TYPE_CHECKING:
    from t2d_monai.inferers import ThickSliceInferer

__all__ = [
    "PAPER_3D_OVERLAP",
    "PAPER_3D_PATCH",
    "PAPER_3D_STRIDE",
    "PAPER_TEST_CASE",
    "inferer_benchmark",
    "scaled_patch",
    "scan_interval",
    "t2dnet_factory",
]

#: the paper's 3D setting (section 4.2.3) and its latency test case (Table 1).
PAPER_3D_PATCH = (128, 128, 64)
#: MONAI ``SlidingWindowInferer``'s overlap that gives the paper's stride of a quarter of the patch
PAPER_3D_OVERLAP = 0.75
PAPER_TEST_CASE = (512, 512, 394)


def scan_interval(
    roi_size: Sequence[int], overlap: float | Sequence[float], image_size: Sequence[int] | None = None
) -> tuple[int, ...]:
    """MONAI ``SlidingWindowInferer``'s step between patches per axis: ``int(roi * (1 - overlap))``, at least 1, and
    the whole axis where the patch spans it (``roi == image``, when ``image_size`` is given)."""
    overlaps = ensure_tuple_rep(overlap, len(roi_size))
    return tuple(
        int(r) if image_size is not None and r == image_size[i] else max(1, int(r * (1 - o)))
        for i, (r, o) in enumerate(zip(roi_size, overlaps))
    )


#: the paper's 3D stride, 32/32/16
PAPER_3D_STRIDE = scan_interval(PAPER_3D_PATCH, PAPER_3D_OVERLAP)


def scaled_patch(size: Sequence[int], multiple: int = 8) -> tuple[int, ...]:
    """The paper's 3D patch scaled per axis from its 512x512x394 test case to ``size`` (multiple of ``multiple``)."""
    return tuple(
        min(max(multiple, int(round(p * s / c / multiple)) * multiple), s)
        for p, s, c in zip(PAPER_3D_PATCH, size, PAPER_TEST_CASE)
    )


def t2dnet_factory(num_slices: int, fusion: str, attention: str | None, backbone: str,
                   decoder: str = "deeplabv3plus", decoder_channels: int = 256,
                   norm: str | tuple = "batch", encoder_depth: int = 5) -> torch.nn.Module:
    """Default network factory: ``t2d_monai.networks.T2DNet`` (imported when called), one output class."""
    try:
        from t2d_monai.networks import T2DNet
    except ImportError as e:
        raise ImportError(
            "inferer_benchmark needs t2d_monai.networks.T2DNet; pass --network_factory module:function otherwise."
        ) from e
    return T2DNet(num_slices=num_slices, out_channels=1, backbone=backbone, fusion=fusion, attention=attention,
                  decoder=decoder, decoder_channels=decoder_channels, norm=norm, encoder_depth=encoder_depth)


def _resolve(factory: Callable | str | None) -> Callable:
    if factory is None:
        return t2dnet_factory
    if callable(factory):
        return factory
    module_name, _, name = str(factory).partition(":")
    if not name:
        raise ValueError(f"network_factory must be a callable or 'module:function', got {factory!r}.")
    return getattr(importlib.import_module(module_name), name)


def _timed(fn: Callable[[], torch.Tensor], repeats: int, device: torch.device) -> tuple[float, torch.Tensor]:
    best, out = float("inf"), None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best, out


def inferer_benchmark(
    out_dir: str = "docs",
    size: Sequence[int] = (256, 256, 96),
    num_slices: int = 15,
    stride: int = 1,
    backbone: str = "resnet50",
    batch_size: int = 4,
    repeats: int = 1,
    threads: int | None = None,
    device: str = "cpu",
    network_factory: Callable | str | None = None,
    unet_channels: Sequence[int] = (32, 64, 128, 256),
    seed: int = 0,
    decoder: str = "deeplabv3plus",
    decoder_channels: int = 256,
    norm: str | tuple = "batch",
    encoder_depth: int = 5,
    weighting: str = "uniform",
    pad_ends: bool = False,
    sw_mode: str = "constant",
    sw_overlap: float = PAPER_3D_OVERLAP,
) -> list[dict[str, Any]]:
    """Time the four inference schemes on one volume and write ``inferer_benchmark.md``/``.csv`` to ``out_dir``.

    Args:
        out_dir: folder of the markdown and CSV results (default ``docs``).
        size: volume size ``H, W, D`` (default 256x256x96; on the command line ``--size 256,256,96``).
        num_slices: slices per thick-slice window (paper: 15).
        stride: thick-slice window stride (paper: 1).
        backbone: T2DNet backbone (default ``resnet50``).
        batch_size: windows per forward for every inferer (thick-slice windows, 3D patches, 2D slices).
        repeats: runs per scheme; the fastest is reported.
        threads: ``torch.set_num_threads`` (default: torch's choice).
        device: ``cpu`` (default) or e.g. ``cuda``.
        network_factory: callable ``(num_slices, fusion, attention, backbone) -> nn.Module`` or
            ``"module:function"``; default :func:`t2dnet_factory` (T2DNet). Tests pass a tiny stand-in.
        unet_channels: channels of the MONAI 3D UNet levels (strides of 2 between them, 2 residual units).
        seed: seed of the weights and of the random volume.
        decoder: decoder of the default factory's 2D networks: ``deeplabv3plus`` (stride 4, the paper's) or
            ``unet`` (full resolution, the CPU overlay's); ignored with a ``network_factory``.
        decoder_channels: decoder width of the default factory's 2D networks (the bundle's ``decoder_channels``:
            256 in ``train.json``, 64 in ``cpu_small.json``); ignored with a ``network_factory``.
        norm: normalisation of the default factory's 2D networks, a MONAI norm name or ``(name, args)``
            (``batch``, the paper's; ``["instance", {"affine": True}]``, the CPU overlay's); ignored with a
            ``network_factory``. The 3D UNet keeps MONAI's default (instance norm without the learnt shift, one
            multiply-add per channel less).
        encoder_depth: ResNet stages of the default factory's 2D networks (5, the paper's; 4 without layer4);
            ignored with a ``network_factory``.
        weighting: the thick-slice inferer's slab position weights, ``uniform`` (the paper's mean) or ``gaussian``
            (the CPU overlay's), as the bundle id ``weighting``.
        pad_ends: the thick-slice inferer pads ``num_slices - 1`` slices at each end (the CPU overlay's
            ``pad_ends``): ``2 (num_slices - 1)`` more windows.
        sw_mode: blending of the 3D sliding window, MONAI's ``constant`` (default) or ``gaussian`` (the 3D
            row's in ``baselines/patch3d.json``).
        sw_overlap: overlap of the 3D sliding window's patches, in [0, 1): 0.75 (default) keeps the paper's stride
            of a quarter of the patch; lower values run fewer patches (the 3D row's counterpart of ``stride``).

    Example (the CPU overlay's networks and aggregation at the paper's volume scale)::

        python -m t2d_monai inferer_benchmark --out_dir docs/experiments/inferer_cpu_recipe_affine \
            --backbone resnet18 --num_slices 6 --decoder unet --decoder_channels 64 \
            --norm '["instance",{"affine":True}]' --unet_channels 16,32,64,128,256 --encoder_depth 4 \
            --weighting gaussian --pad_ends True --sw_mode gaussian

    Returns:
        the result rows (also written as CSV).
    """
    from monai.inferers import SliceInferer, SlidingWindowInferer
    from monai.networks.nets import UNet

    from t2d_monai.inferers import ThickSliceInferer

    size = tuple(int(s) for s in size)
    if len(size) != 3 or min(size) < 1:
        raise ValueError(f"size must be three positive integers H, W, D, got {size!r}.")
    if threads:
        torch.set_num_threads(int(threads))
    dev = torch.device(device)
    if decoder not in ("deeplabv3plus", "unet"):
        raise ValueError(f"decoder must be 'deeplabv3plus' or 'unet', got {decoder!r}.")
    if weighting not in ("uniform", "gaussian"):
        raise ValueError(f"weighting must be 'uniform' or 'gaussian', got {weighting!r}.")
    if sw_mode not in ("constant", "gaussian"):
        raise ValueError(f"sw_mode must be 'constant' or 'gaussian' (MONAI's blend modes), got {sw_mode!r}.")
    is_number = isinstance(sw_overlap, (int, float)) and not isinstance(sw_overlap, bool)
    if not is_number or not 0 <= sw_overlap < 1:
        raise ValueError(f"sw_overlap must be a number in [0, 1) ({PAPER_3D_OVERLAP}: the paper's stride), "
                         f"got {sw_overlap!r}.")
    sw_overlap = float(sw_overlap)
    patch = scaled_patch(size)
    sliding = SlidingWindowInferer(patch, sw_batch_size=batch_size, overlap=sw_overlap, mode=sw_mode)
    aggregation = {"weighting": weighting, "pad_ends": pad_ends}  # ThickSliceInferer checks pad_ends
    thick_plain = ThickSliceInferer(num_slices, stride, batch_size, cache_f1=False, **aggregation)
    thick_cached = ThickSliceInferer(num_slices, stride, batch_size, cache_f1=True, **aggregation)
    factory = _resolve(network_factory)
    label = ""
    if network_factory is None:
        width, depth = int(decoder_channels), int(encoder_depth)
        factory = functools.partial(t2dnet_factory, decoder=decoder, decoder_channels=width, norm=norm,
                                    encoder_depth=depth)
        # the label names only what differs from the paper's networks (width 256, batch norm, the full encoder)
        label = (f", {decoder} decoder" + ("" if width == 256 else f" width {width}")
                 + ("" if norm == "batch" else f", {norm} norm") + ("" if depth == 5 else f", encoder depth {depth}"))
    torch.manual_seed(seed)
    volume = torch.randn(1, 1, *size, device=dev)
    thick = factory(num_slices, "esm", "ssa", backbone).to(dev).eval()
    single = factory(1, "early", None, backbone).to(dev).eval()
    levels = len(unet_channels)
    unet = UNet(3, 1, 1, channels=tuple(unet_channels), strides=(2,) * (levels - 1), num_res_units=2).to(dev).eval()
    thick_label = "" if weighting == "uniform" else f", {weighting} weights"
    thick_label += ", pad_ends" if pad_ends else ""

    schemes: list[tuple[str, str, torch.nn.Module, Callable[[], torch.Tensor]]] = [
        (
            "3D sliding window",
            f"MONAI UNet {tuple(unet_channels)}, patch {'x'.join(map(str, patch))}, overlap {sw_overlap:g}"
            + ("" if sw_mode == "constant" else f", {sw_mode} blending"),
            unet,
            lambda: sliding(volume, unet),
        ),
        (
            "2D slice-by-slice",
            f"single-slice DeepLabV3+ ({backbone}{label}), SliceInferer",
            single,
            lambda: SliceInferer(spatial_dim=2, roi_size=size[:2], sw_batch_size=batch_size)(volume, single),
        ),
        (
            "thick-slice, no f1 cache",
            f"T2DNet k={num_slices} ESM+SSA ({backbone}{label}), stride {stride}{thick_label}",
            thick,
            lambda: thick_plain(volume, thick),
        ),
        (
            "thick-slice, f1 cache",
            f"T2DNet k={num_slices} ESM+SSA ({backbone}{label}), stride {stride}{thick_label}",
            thick,
            lambda: thick_cached(volume, thick),
        ),
    ]
    rows: list[dict[str, Any]] = []
    outputs: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name, network_desc, net, run in schemes:
            seconds, out = _timed(run, repeats, dev)
            outputs[name] = out
            rows.append(
                {
                    "method": name,
                    "network": network_desc,
                    "parameters_M": round(sum(p.numel() for p in net.parameters()) / 1e6, 2),
                    "seconds": round(seconds, 3),
                }
            )
            print(f"{name}: {seconds:.2f} s", file=sys.stderr)
    reference = rows[0]["seconds"]
    for row in rows:
        row["time_vs_3d"] = round(row["seconds"] / reference, 3)
    max_diff = float((outputs["thick-slice, f1 cache"] - outputs["thick-slice, no f1 cache"]).abs().max())
    cache_speedup = rows[2]["seconds"] / rows[3]["seconds"]
    split = _forward_split(thick, thick_cached, size, batch_size, dev)
    _write(out_dir, rows, size, patch, num_slices, stride, batch_size, repeats, dev, max_diff, cache_speedup, split,
           sw_overlap)
    return rows


def _forward_split(
    net: torch.nn.Module, inferer: ThickSliceInferer, size: Sequence[int], batch_size: int, dev: torch.device
) -> dict[str, float] | None:
    """
    Where a thick-slice forward spends its time, and the most the f1 cache can save (Amdahl's law).

    Times one batch of ``batch_size`` windows split into f1 of one mini-group (``encode_group``) and the rest
    (``decode``: compression, f2, decoder, head), best of 3 after a warm-up. Uncached, a window costs
    ``G * f1 + rest``; cached, ``n * f1 + rest`` with ``n`` = distinct groups per window over a volume of ``size``
    ``(H, W, D)``, windows placed as ``inferer`` places them. Returns None for a network without the split forward.
    """
    if not getattr(net, "supports_group_cache", False):
        return None
    h, w, depth = size
    starts = list(getattr(net, "group_starts"))
    group = int(getattr(net, "group_size"))
    x = torch.randn(batch_size, group, h, w, device=dev)
    with torch.no_grad():
        f1_s, feature = _timed(lambda: net.encode_group(x), 4, dev)
        features = [feature] * len(starts)
        rest_s, _ = _timed(lambda: net.decode(features, [h, w]), 4, dev)
    windows = inferer.window_starts(depth)
    distinct = len({w0 + g for w0 in windows for g in starts})
    new_per_window = distinct / len(windows)
    return {
        "groups": float(len(starts)),
        "f1_group_s": f1_s,
        "rest_s": rest_s,
        "f1_share": len(starts) * f1_s / (len(starts) * f1_s + rest_s),
        "new_groups_per_window": new_per_window,
        "ceiling": (len(starts) * f1_s + rest_s) / (new_per_window * f1_s + rest_s),
    }


def _write(
    out_dir, rows, size, patch, num_slices, stride, batch_size, repeats, dev, max_diff, cache_speedup, split, overlap
) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "inferer_benchmark.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    import monai

    stride_3d = scan_interval(patch, overlap)
    lines = [
        "# Inference time: thick-slice inferer against 3D sliding window and 2D slice-by-slice",
        "",
        "Written by `python -m t2d_monai inferer_benchmark` (t2d_monai/benchmarks/inferers.py); do not edit by hand.",
        "",
        f"Volume {'x'.join(map(str, size))} (random values, untrained weights: timing only), one output class, "
        f"batch {batch_size} windows per forward, best of {repeats} run(s), device `{dev}` "
        f"({torch.get_num_threads()} threads, {platform.processor() or platform.machine()}), "
        f"torch {torch.__version__}, MONAI {monai.__version__}. "
        f"3D patch {'x'.join(map(str, patch))} with stride {'/'.join(map(str, stride_3d))} ("
        + ("" if overlap == PAPER_3D_OVERLAP else f"overlap {overlap:g}; at overlap {PAPER_3D_OVERLAP:g}, ")
        + f"the paper's {'x'.join(map(str, PAPER_3D_PATCH))} / {'x'.join(map(str, PAPER_3D_STRIDE))} on "
        f"{'x'.join(map(str, PAPER_TEST_CASE))}, scaled per axis); "
        f"thick-slice windows of {num_slices} slices at stride {stride}.",
        "",
        "| method | network | parameters (M) | seconds | time / 3D sliding window |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['method']} | {r['network']} | {r['parameters_M']} | {r['seconds']:.2f} | {r['time_vs_3d']:.3f} |"
        for r in rows
    ]
    verdict = "meets" if cache_speedup >= 1.5 and max_diff < 1e-5 else "misses"
    lines += [
        "",
        f"f1 cache: {cache_speedup:.2f}x faster than without it; max |cached - uncached| = {max_diff:.2e} "
        f"({verdict} the target: at least 1.5x faster, difference under 1e-5).",
        "",
    ]
    if split is not None:
        lines += [
            f"Where a window's time goes (one forward of {batch_size} windows, best of 4 after a warm-up): f1 of one "
            f"mini-group {1000 * split['f1_group_s']:.0f} ms, everything after f1 (compression, layer2-4, decoder, "
            f"head) {1000 * split['rest_s']:.0f} ms. Without the cache a window runs f1 {split['groups']:.0f} times: "
            f"f1 is {100 * split['f1_share']:.0f}% of its time. With the cache a window needs "
            f"{split['new_groups_per_window']:.2f} new f1 passes on average over this volume, so the cache can make "
            f"inference at most {split['ceiling']:.2f}x faster (Amdahl's law on the two times above), against "
            f"{cache_speedup:.2f}x measured.",
            "",
        ]
    with open(os.path.join(out_dir, "inferer_benchmark.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
