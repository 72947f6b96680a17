"""``gpu_check``'s first section: whole-volume inference latency of T2D (precisions, f1 cache, memory layout,
windows per call, stages, three views, the shipped and the previous ``inference.json``, window strides), the
single-slice ``SliceInferer`` and the 3D U-Net sliding window (and its patch overlaps), each row against the float32
3D sliding window."""

from __future__ import annotations

from typing import Any

import torch

from t2d_monai.benchmarks import gpu_recipes as rec
from t2d_monai.benchmarks.gpu_report import LATENCY
from t2d_monai.benchmarks.gpu_session import (
    PRECISIONS,
    Session,
    fastest_row,
    fastest_single_view,
    infer_call,
    latency_seconds,
    make_row,
    set_time_vs_3d,
    t2d_inferer,
    t2d_network,
    unet3d_inferer,
    unet3d_network,
)
from t2d_monai.benchmarks.inferers import scan_interval

__all__ = ["OVERLAP_ROW", "PATCH_OVERLAPS", "PREVIOUS_INFERENCE", "STRIDE_ROW", "WINDOW_BATCHES", "latency",
           "window_strides"]

#: windows (2D) or patches (3D) per network call tried at the fastest setting, besides the configs' own
WINDOW_BATCHES = (4, 16, 64)
#: inference.json's values before this check's first GPU run (the "before" of its before/after rows)
PREVIOUS_INFERENCE = {"infer_batch_size": 4, "channels_last": False}
#: the row of window strides other than the paper's 1: they change the output, so they are not counted in the targets
STRIDE_ROW = "T2D window stride"
#: the 3D row's counterpart: its sliding window at overlaps below the paper's 0.75 (also a different output)
OVERLAP_ROW = "3D patch overlap"
#: overlaps timed besides the recipe's 0.75 (``sw_overlap``): each voxel covered by about 8 and 2.4 patches, not 64
PATCH_OVERLAPS = (0.5, 0.25)


def window_strides(num_slices: int) -> tuple[int, ...]:
    """Window strides timed besides the shipped (the paper's) stride 1, for windows of ``num_slices`` slices: 3, 5
    and ``num_slices`` (windows side by side) where they fit. At stride s each slice is decoded about k / s times
    instead of k, which cuts window decoding, the main cost of a call, about s-fold."""
    return tuple(sorted({s for s in (3, 5, num_slices) if 1 < s <= num_slices}))


def latency(s: Session, volume: torch.Tensor, unsupported: dict[str, str]) -> None:
    """Append section 1's rows to ``s.rows``: whole-volume inference of ``volume`` ``(1, 1, H, W, D)``, each row
    timed by ``s.timed`` or skipped when the budget cannot hold it; ``unsupported``: precision -> why autocast to it
    cannot run here (its rows are skipped and say so)."""
    p, reserve = s.profile, s.profile.reserve_s
    k = p.overrides_2d.get("num_slices", 15)
    t2d_desc = f"T2DNet k={k} ESM+SSA ({p.overrides_2d.get('backbone', 'resnet50')}), inference.json"

    def unet_row(precision: str, batch: int | None = None, overlap: float | None = None) -> None:
        name = "3D sliding window" if overlap is None else OVERLAP_ROW
        row = make_row(LATENCY, name, "MONAI UNet (unet3d.json), SlidingWindowInferer (patch3d.json)",
                       precision, windows_per_call=batch or shipped_3d)
        if overlap is not None:
            row["note"] = (f"overlap {overlap:g} instead of the recipe's {shipped_overlap:g}: a different output, not "
                           "counted in the targets (its Dice: docs/experiments/stride_cpu)")

        def work(r: dict) -> None:
            net = unet3d_network(s)
            inferer = unet3d_inferer(s, batch, **({} if overlap is None else {"sw_overlap": overlap}))
            stride = scan_interval(inferer.roi_size, inferer.overlap)
            r["network"] += f", patch {'x'.join(map(str, inferer.roi_size))}, stride {'/'.join(map(str, stride))}"
            s.timed(r, infer_call(s, inferer, net, volume, precision), reserve)
        if overlap is None:
            fp32 = latency_seconds(s, "3D sliding window", precision="float32")
            estimate = 2 * fp32[0] if fp32 else 0.0
        else:  # fewer patches than the recipe's fastest row, which bounds it
            estimate = min(latency_seconds(s, "3D sliding window", precision=precision), default=0.0)
        s.attempt(row, estimate, work, reserve)

    def t2d_row(precision: str, cache: str, layout: str, batch: int | None = None) -> None:
        row = make_row(LATENCY, "T2D single view", t2d_desc, precision, cache, layout,
                       windows_per_call=batch or shipped_batch)
        if precision in unsupported:
            row["status"] = f"skipped: {unsupported[precision]}"
            s.rows.append(row)
            return
        known = latency_seconds(s, "T2D single view")

        def work(r: dict) -> None:
            inferer = t2d_inferer(s, rec.T2D_INFERENCE, "slab_inferer", cache, batch)
            s.timed(r, infer_call(s, inferer, t2d_network(s, layout), volume, precision), reserve)
        s.attempt(row, 2 * max(known) if known else 0.0, work, reserve)

    def recipe_row(name: str, overrides: dict[str, Any]) -> None:
        """inference.json's own network and inferer (its amp, channels_last and windows per call) + ``overrides``."""
        parser = rec.bundle_parser(rec.T2D_INFERENCE, {**p.overrides_2d, **overrides}, s.dev)
        get = parser.get_parsed_content
        precision = "float16" if get("amp") and s.dev.type == "cuda" else "float32"  # the evaluator's amp
        inferer = get("slab_inferer")
        row = make_row(LATENCY, name, f"{t2d_desc}, network and slab_inferer as configured", precision,
                       "on" if inferer.cache_f1 else "off", "on" if get("channels_last") else "off",
                       windows_per_call=inferer.batch_size)

        def work(r: dict) -> None:
            torch.manual_seed(s.seed)
            net = get("network").eval()
            s.timed(r, infer_call(s, inferer, net, volume, precision), reserve)
        known = latency_seconds(s, "T2D single view")
        s.attempt(row, 2 * max(known) if known else 0.0, work, reserve)

    def stages_row(best: dict[str, Any]) -> None:
        row = make_row(LATENCY, "T2D stages", f"{t2d_desc}: encode_group / decode / rest", best["precision"], "on",
                       best["layout"], windows_per_call=best["batch"] or shipped_batch)

        def work(r: dict) -> None:
            inferer = t2d_inferer(s, rec.T2D_INFERENCE, "slab_inferer", "on", best["batch"])
            net = t2d_network(s, best["layout"])
            run = infer_call(s, inferer, net, volume, best["precision"])
            run()  # warm-up (cuDNN's algorithm search for these shapes)
            if s.dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(s.dev)
            t = rec.stage_times(net, ("encode_group", "decode"), run, s.dev)
            rest = t["total"] - t["encode_group"] - t["decode"]
            peak = rec.peak_memory_mb(s.dev)
            r.update(seconds=t["total"], repeats=1, peak_memory_mb="n/a" if peak is None else peak, note=(
                f"mini-group encoding {t['encode_group']:.3g} s ({t['encode_group'] / t['total']:.0%}), window "
                f"decoding {t['decode']:.3g} s ({t['decode'] / t['total']:.0%}), rest {rest:.3g} s "
                f"({rest / t['total']:.0%}: padding, stacking, activation, accumulation); one call with the device "
                "synchronised around each stage"))
        known = latency_seconds(s, "T2D single view", precision=best["precision"])
        s.attempt(row, 3 * min(known) if known else 0.0, work, reserve)

    def stride_row(best: dict[str, Any], stride: int) -> None:
        row = make_row(LATENCY, STRIDE_ROW, f"{t2d_desc}, window stride {stride}", best["precision"], best["cache"],
                       best["layout"], windows_per_call=best["batch"] or shipped_batch, note=(
                           f"each slice decoded about {k / stride:.3g} times instead of {k}: a different output from "
                           "the shipped stride 1, not counted in the targets (its Dice: docs/experiments/stride_cpu)"))

        def work(r: dict) -> None:
            inferer = t2d_inferer(s, rec.T2D_INFERENCE, "slab_inferer", best["cache"], best["batch"], stride=stride)
            s.timed(r, infer_call(s, inferer, t2d_network(s, best["layout"]), volume, best["precision"]), reserve)
        known = latency_seconds(s, "T2D single view", precision=best["precision"])
        s.attempt(row, min(known) if known else 0.0, work, reserve)

    shipped_batch = int(s.parsed(rec.T2D_INFERENCE, "infer_batch_size"))
    shipped_3d = int(s.parsed(rec.UNET3D, "infer_batch_size", three_d=True))
    shipped_overlap = float(s.parsed(rec.UNET3D, "sw_overlap", three_d=True))
    unet_row("float32")
    recipe_row("T2D inference.json as shipped", {})
    recipe_row("T2D inference.json before (4 windows, channels_last off)", PREVIOUS_INFERENCE)
    for layout, cache in (("off", "on"), ("on", "on")):
        for precision in PRECISIONS:
            t2d_row(precision, cache, layout)
    best = fastest_single_view(s)
    for batch in WINDOW_BATCHES:  # batching of windows: more work per network call
        if batch != shipped_batch:
            t2d_row(best["precision"], best["cache"], best["layout"], batch)
    best = fastest_single_view(s)
    stages_row(best)
    row = make_row(LATENCY, "T2D three views", f"3 x {t2d_desc} + inference_three_views.json (vote)", best["precision"],
                   best["cache"], best["layout"], windows_per_call=best["batch"] or shipped_batch)

    def views(r: dict) -> None:
        nets = s.parsed(rec.THREE_VIEWS, "network", channels_last=best["layout"] == "on").eval()
        inferer = t2d_inferer(s, rec.THREE_VIEWS, "inferer", best["cache"], best["batch"])
        s.timed(r, infer_call(s, inferer, nets, volume, best["precision"]), reserve)
    single = latency_seconds(s, "T2D single view", **{"precision": best["precision"], "cache_f1": best["cache"]})
    s.attempt(row, 7 * min(single) if single else 0.0, views, reserve)

    def slices(r: dict) -> None:
        from monai.inferers import SliceInferer

        net = s.built("deeplab_k1",
                      lambda: s.parsed(rec.SINGLE_SLICE, "network_def", overlay_wins=True).to(s.dev).eval())
        batch = s.parsed(rec.SINGLE_SLICE, "infer_batch_size")
        inferer = SliceInferer(spatial_dim=2, roi_size=tuple(volume.shape[2:4]), sw_batch_size=batch)
        s.timed(r, infer_call(s, inferer, net, volume, "float32"), reserve)
    known = latency_seconds(s, "T2D single view", precision="float32")
    s.attempt(make_row(LATENCY, "2D SliceInferer", "single-slice DeepLabV3+ (deeplab_k1.json), MONAI SliceInferer"),
              2 * min(known) if known else 0.0, slices, reserve)
    for precision in PRECISIONS:
        t2d_row(precision, "off", "off")
    fastest_autocast = fastest_row(s, "T2D single view", lambda r: r["precision"] != "float32")
    if fastest_autocast is not None:
        unet_row(fastest_autocast["precision"])
    fastest_3d = fastest_row(s, "3D sliding window")
    if fastest_3d is not None:  # the 3D row batched as far as the 2D rows: each row at its own best setting
        unet_row(fastest_3d["precision"], max(WINDOW_BATCHES))
    best = fastest_single_view(s)
    for stride in window_strides(k):
        stride_row(best, stride)
    fastest_3d = fastest_row(s, "3D sliding window")
    if fastest_3d is not None:  # the 3D row's cheaper settings, given the same way as T2D's strides
        for overlap in PATCH_OVERLAPS:
            unet_row(fastest_3d["precision"], fastest_3d["windows_per_call"], overlap)
    set_time_vs_3d(s)
