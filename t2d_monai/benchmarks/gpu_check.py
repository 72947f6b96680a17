"""One GPU session's measurements of the shipped recipes, within a time budget, written to ``docs/gpu.md``/``.csv``.

Command for a GPU session (one GPU; the whole run must finish inside 8 minutes: the default budget of 420 s
covers the measurements, the rest is start-up and writing)::

    python -m t2d_monai gpu_check --out_dir docs

On a CPU, ``python -m t2d_monai gpu_check --tiny --out_dir /tmp/gpu`` runs every code path on a 48x40x20 volume
with small networks in about a minute (the tests do); without ``--tiny`` a machine without CUDA is refused.

Sections, measured in this order (their priority), each row skipped when the time left cannot hold it (estimated
from the rows already measured) and each failure (out of memory included) recorded in its row:

1. inference latency on a random 512x512x394 volume (sliced along its last axis; timing only): the MONAI 3D UNet
   of ``baselines/unet3d.json`` with ``SlidingWindowInferer`` at the paper's 128x128x64 patch and stride 32/32/16;
   T2D (``inference.json``: ResNet-50, k = 15, stride 1) in float32 and under bfloat16/float16 autocast, with and
   without the f1 cache, channels_last on and off; ``inference.json`` as shipped (its ``amp``, ``channels_last``
   and windows per call) and as it was before the first GPU run (``PREVIOUS_INFERENCE``); at the fastest setting,
   4, 16 and 64 windows (2D) or patches (3D) per network call (``infer_batch_size``), and one synchronised call split into its stages (mini-group encoding,
   window decoding, the rest: what to make cheaper); three views (``inference_three_views.json``) at the fastest
   single-view setting; single-slice DeepLabV3+ (``baselines/deeplab_k1.json``) with MONAI's ``SliceInferer``.
   Seconds are the median of repeats after a warm-up, with the ratio to the float32 3D sliding window and the
   peak GPU memory;
2. numerical checks: SSA's eval fast path against the block forward, and cached against uncached inference, per
   precision (float32 with TF32 off), as the max absolute difference against a tolerance;
3. training throughput (iterations per second, peak memory) of ``train.json`` (AMP on a GPU) and of the 3D recipe
   (``patch3d.json`` + ``unet3d.json``) on random batches of the recipes' shapes;
4. ``torch.compile`` of T2D at the fastest single-view setting, when the time left allows.

A partial page is written after each section, so a run stopped by the device's time limit still leaves figures.
"""

from __future__ import annotations

import copy
import gc
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from monai.utils import ensure_tuple_rep

from t2d_monai.benchmarks import gpu_recipes as rec
from t2d_monai.benchmarks.gpu_report import COMPILE, LATENCY, NUMERICS, SECTIONS, TRAINING, machine_line, write_report

__all__ = ["PRECISIONS", "PREVIOUS_INFERENCE", "TOLERANCES", "WINDOW_BATCHES", "gpu_check"]

#: autocast dtype per precision name (None: plain float32)
PRECISIONS: dict[str, torch.dtype | None] = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}
#: max |difference| allowed per precision: probabilities for the cache check, a share of max |logit| for SSA.
#: About 10 units in the last place of the 8-bit (bfloat16) and 11-bit (float16) mantissas; float32 (TF32 off)
#: leaves room for cuDNN choosing other algorithms for other batch shapes (cached and uncached batches differ).
TOLERANCES = {"float32": 1e-4, "bfloat16": 5e-2, "float16": 1e-2}
#: windows (2D) or patches (3D) per network call tried at the fastest setting, besides the configs' own
WINDOW_BATCHES = (4, 16, 64)
#: inference.json's values before this check's first GPU run (the "before" of its before/after rows)
PREVIOUS_INFERENCE = {"infer_batch_size": 4, "channels_last": False}
_NO_CUDA = "no CUDA device: run with --tiny on CPU, or on a GPU machine"


def _row(section: str, name: str, network: str, precision: str = "float32", cache: str = "", layout: str = "",
         **values: Any) -> dict[str, Any]:
    return {"section": section, "row": name, "network": network, "precision": precision, "cache_f1": cache,
            "channels_last": layout, "status": "pending", **values}


class _Session:
    """State of one run: device, sizes, budget, the rows so far, networks built once and shared by rows."""

    def __init__(self, dev: torch.device, profile: rec.Profile, repeats: int, budget_s: float, seed: int) -> None:
        self.dev, self.profile, self.repeats, self.seed = dev, profile, int(repeats), int(seed)
        self.end = time.perf_counter() + float(budget_s)
        self.rows: list[dict[str, Any]] = []
        self._built: dict[Any, Any] = {}

    def left(self, reserve: float = 0.0) -> float:
        return self.end - time.perf_counter() - reserve

    def built(self, key: Any, make: Callable[[], Any]) -> Any:
        if key not in self._built:
            torch.manual_seed(self.seed)
            self._built[key] = make()
        return self._built[key]

    def parsed(self, files: tuple[str, ...], key: str, three_d: bool = False, overlay_wins: bool = False,
               **overrides: Any) -> Any:
        """``key`` instantiated from the bundle configs ``files`` with the profile's and these ``overrides``."""
        base = self.profile.overrides_3d if three_d else self.profile.overrides_2d
        parser = rec.bundle_parser(files, {**base, **overrides}, self.dev, overlay_wins)
        return parser.get_parsed_content(key)

    def attempt(self, row: dict[str, Any], estimate_s: float, work: Callable[[dict], None],
                reserve: float = 0.0) -> dict:
        """Run ``work(row)`` unless the time left (less ``reserve``) is below ``estimate_s``; a failure is recorded
        in the row's status and the run goes on."""
        left = self.left(reserve)
        start = time.perf_counter()
        if left <= 0 or left < estimate_s:
            row["status"] = f"skipped: time budget ({max(left, 0):.1f} s left, needs about {estimate_s:.1f} s)"
        else:
            try:
                work(row)
                row["status"] = "ok"
            except Exception as e:  # noqa: BLE001 (one row's failure, out of memory included, must not end the run)
                row["status"] = f"error: {type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}"
            gc.collect()
            if self.dev.type == "cuda":
                torch.cuda.empty_cache()
        self.rows.append(row)
        what = row.get("seconds") or row.get("iterations_per_s") or row.get("max_abs_diff")
        print(f"[gpu_check] {row['section']} | {row['row']} | {row['precision']} cache={row['cache_f1'] or '-'} "
              f"channels_last={row['channels_last'] or '-'}: {row['status']} value={what} "
              f"({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)
        return row

    def timed(self, row: dict, fn: Callable[[], Any], reserve: float = 0.0, warmups: int = 1) -> None:
        t = rec.measure(fn, self.dev, self.repeats, lambda: self.left(reserve), warmups)
        row.update(seconds=t.seconds, repeats=t.runs, peak_memory_mb="n/a" if t.peak_mb is None else t.peak_mb)
        if t.runs == 0:
            row["note"] = "warm-up time only: no repeat fitted in the time budget"
        if warmups > 1:
            row["note"] = f"first call (compilation) {t.warmup_s[0]:.1f} s"


def _infer(s: _Session, inferer: Any, net: Any, volume: torch.Tensor, precision: str) -> Callable[[], Any]:
    def run() -> Any:
        with torch.no_grad(), rec.autocast(s.dev, PRECISIONS[precision]):
            return inferer(volume, net)
    return run


def _t2d_net(s: _Session, layout: str) -> torch.nn.Module:
    net = s.built("t2d", lambda: s.parsed(rec.T2D_INFERENCE, "network_def").to(s.dev).eval())
    if layout == "on":
        net = s.built("t2d channels_last", lambda: copy.deepcopy(net).to(memory_format=torch.channels_last))
    return net


def _seconds(s: _Session, name: str, **match: Any) -> list[float]:
    return [r["seconds"] for r in s.rows if r["row"] == name and r["status"] == "ok" and r["section"] == LATENCY
            and all(r[k] == v for k, v in match.items())]


def _fastest(s: _Session) -> dict[str, Any]:
    """The fastest single-view setting so far (precision, cache, layout and windows per call)."""
    single = [r for r in s.rows if r["row"] == "T2D single view" and r["status"] == "ok" and r["section"] == LATENCY]
    best = min(single, key=lambda r: r["seconds"], default=None)
    return {"precision": "float32", "cache": "on", "layout": "off", "batch": None} if best is None else \
        {"precision": best["precision"], "cache": best["cache_f1"], "layout": best["channels_last"],
         "batch": best["windows_per_call"]}


def _t2d_inferer(s: _Session, files: tuple[str, ...], key: str, cache: str, batch: int | None) -> Any:
    """``key`` of ``files`` with the f1 cache on or off and ``batch`` windows per network call (None: shipped)."""
    extra = {} if batch is None else {"infer_batch_size": int(batch)}
    return s.parsed(files, key, **{"slab_inferer#cache_f1": cache == "on"}, **extra)


def _latency(s: _Session, volume: torch.Tensor, unsupported: dict[str, str]) -> None:
    p, reserve = s.profile, s.profile.reserve_s
    k = p.overrides_2d.get("num_slices", 15)
    t2d_desc = f"T2DNet k={k} ESM+SSA ({p.overrides_2d.get('backbone', 'resnet50')}), inference.json"

    def unet_row(precision: str, batch: int | None = None) -> None:
        row = _row(LATENCY, "3D sliding window", "MONAI UNet (unet3d.json), SlidingWindowInferer (patch3d.json)",
                   precision, windows_per_call=batch or shipped_3d)

        def work(r: dict) -> None:
            net = s.built("unet3d", lambda: s.parsed(rec.UNET3D, "network_def", three_d=True).to(s.dev).eval())
            extra = {} if batch is None else {"infer_batch_size": int(batch)}
            inferer = s.parsed(rec.UNET3D, "validate#inferer", three_d=True, **extra)
            overlap = ensure_tuple_rep(inferer.overlap, len(inferer.roi_size))
            stride = [max(1, int(size * (1 - o))) for size, o in zip(inferer.roi_size, overlap)]  # MONAI's interval
            r["network"] += f", patch {'x'.join(map(str, inferer.roi_size))}, stride {'/'.join(map(str, stride))}"
            s.timed(r, _infer(s, inferer, net, volume, precision), reserve)
        fp32 = _seconds(s, "3D sliding window", precision="float32")
        s.attempt(row, 2 * fp32[0] if fp32 else 0.0, work, reserve)

    def t2d_row(precision: str, cache: str, layout: str, batch: int | None = None) -> None:
        row = _row(LATENCY, "T2D single view", t2d_desc, precision, cache, layout,
                   windows_per_call=batch or shipped_batch)
        if precision in unsupported:
            row["status"] = f"skipped: {unsupported[precision]}"
            s.rows.append(row)
            return
        known = _seconds(s, "T2D single view")

        def work(r: dict) -> None:
            inferer = _t2d_inferer(s, rec.T2D_INFERENCE, "slab_inferer", cache, batch)
            s.timed(r, _infer(s, inferer, _t2d_net(s, layout), volume, precision), reserve)
        s.attempt(row, 2 * max(known) if known else 0.0, work, reserve)

    def recipe_row(name: str, overrides: dict[str, Any]) -> None:
        """inference.json's own network and inferer (its amp, channels_last and windows per call) + ``overrides``."""
        parser = rec.bundle_parser(rec.T2D_INFERENCE, {**p.overrides_2d, **overrides}, s.dev)
        get = parser.get_parsed_content
        precision = "float16" if get("amp") and s.dev.type == "cuda" else "float32"  # the evaluator's amp
        inferer = get("slab_inferer")
        row = _row(LATENCY, name, f"{t2d_desc}, network and slab_inferer as configured", precision,
                   "on" if inferer.cache_f1 else "off", "on" if get("channels_last") else "off",
                   windows_per_call=inferer.batch_size)

        def work(r: dict) -> None:
            torch.manual_seed(s.seed)
            net = get("network").eval()
            s.timed(r, _infer(s, inferer, net, volume, precision), reserve)
        known = _seconds(s, "T2D single view")
        s.attempt(row, 2 * max(known) if known else 0.0, work, reserve)

    def stages_row(best: dict[str, Any]) -> None:
        row = _row(LATENCY, "T2D stages", f"{t2d_desc}: encode_group / decode / rest", best["precision"], "on",
                   best["layout"], windows_per_call=best["batch"] or shipped_batch)

        def work(r: dict) -> None:
            inferer = _t2d_inferer(s, rec.T2D_INFERENCE, "slab_inferer", "on", best["batch"])
            net = _t2d_net(s, best["layout"])
            run = _infer(s, inferer, net, volume, best["precision"])
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
        known = _seconds(s, "T2D single view", precision=best["precision"])
        s.attempt(row, 3 * min(known) if known else 0.0, work, reserve)

    shipped_batch = int(s.parsed(rec.T2D_INFERENCE, "infer_batch_size"))
    shipped_3d = int(s.parsed(rec.UNET3D, "infer_batch_size", three_d=True))
    unet_row("float32")
    recipe_row("T2D inference.json as shipped", {})
    recipe_row("T2D inference.json before (4 windows, channels_last off)", PREVIOUS_INFERENCE)
    for layout, cache in (("off", "on"), ("on", "on")):
        for precision in PRECISIONS:
            t2d_row(precision, cache, layout)
    best = _fastest(s)
    for batch in WINDOW_BATCHES:  # batching of windows: more work per network call
        if batch != shipped_batch:
            t2d_row(best["precision"], best["cache"], best["layout"], batch)
    best = _fastest(s)
    stages_row(best)
    row = _row(LATENCY, "T2D three views", f"3 x {t2d_desc} + inference_three_views.json (vote)", best["precision"],
               best["cache"], best["layout"], windows_per_call=best["batch"] or shipped_batch)

    def views(r: dict) -> None:
        nets = s.parsed(rec.THREE_VIEWS, "network").eval()
        nets = nets.to(memory_format=torch.channels_last) if best["layout"] == "on" else nets
        inferer = _t2d_inferer(s, rec.THREE_VIEWS, "inferer", best["cache"], best["batch"])
        s.timed(r, _infer(s, inferer, nets, volume, best["precision"]), reserve)
    single = _seconds(s, "T2D single view", **{"precision": best["precision"], "cache_f1": best["cache"]})
    s.attempt(row, 7 * min(single) if single else 0.0, views, reserve)

    def slices(r: dict) -> None:
        from monai.inferers import SliceInferer

        net = s.built("deeplab_k1",
                      lambda: s.parsed(rec.SINGLE_SLICE, "network_def", overlay_wins=True).to(s.dev).eval())
        batch = s.parsed(rec.SINGLE_SLICE, "infer_batch_size")
        inferer = SliceInferer(spatial_dim=2, roi_size=tuple(volume.shape[2:4]), sw_batch_size=batch)
        s.timed(r, _infer(s, inferer, net, volume, "float32"), reserve)
    known = _seconds(s, "T2D single view", precision="float32")
    s.attempt(_row(LATENCY, "2D SliceInferer", "single-slice DeepLabV3+ (deeplab_k1.json), MONAI SliceInferer"),
              2 * min(known) if known else 0.0, slices, reserve)
    for precision in PRECISIONS:
        t2d_row(precision, "off", "off")
    fastest_autocast = min((r for r in s.rows if r["row"] == "T2D single view" and r["status"] == "ok"
                            and r["precision"] != "float32"), key=lambda r: r["seconds"], default=None)
    if fastest_autocast is not None:
        unet_row(fastest_autocast["precision"])
    fastest_3d = min((r for r in s.rows if r["row"] == "3D sliding window" and r["status"] == "ok"),
                     key=lambda r: r["seconds"], default=None)
    if fastest_3d is not None:  # the 3D row batched as far as the 2D rows: each row at its own best setting
        unet_row(fastest_3d["precision"], max(WINDOW_BATCHES))
    fp32 = _seconds(s, "3D sliding window", precision="float32")
    for r in s.rows:
        if r.get("seconds") and fp32:
            r["time_vs_3d"] = r["seconds"] / fp32[0]


def _ssa_check(s: _Session, precision: str, row: dict) -> None:
    batch = s.parsed(rec.T2D_INFERENCE, "infer_batch_size")
    net = _t2d_net(s, "off")
    x = torch.rand(batch, net.num_slices, *s.profile.volume[:2], device=s.dev)
    diff, scale = rec.ssa_fast_path_gap(net, x, s.dev, PRECISIONS[precision], s.seed)
    tolerance = TOLERANCES[precision] * scale
    row.update(max_abs_diff=diff, tolerance=tolerance, within_tolerance=diff <= tolerance,
               note=f"tolerance {TOLERANCES[precision]:g} x max(1, largest abs logit), largest abs logit {scale:.3g}")


def _cache_check(s: _Session, volume: torch.Tensor, precision: str, row: dict) -> None:
    net = _t2d_net(s, "off")
    out = {}
    for cache in (True, False):
        inferer = s.parsed(rec.T2D_INFERENCE, "slab_inferer", **{"slab_inferer#cache_f1": cache})
        out[cache] = _infer(s, inferer, net, volume, precision)()
    diff = float((out[True] - out[False]).abs().max())
    row.update(max_abs_diff=diff, tolerance=TOLERANCES[precision], within_tolerance=bool(diff <= TOLERANCES[precision]),
               note=f"probabilities on the first {volume.shape[-1]} slices")


def _numerics(s: _Session, volume: torch.Tensor, unsupported: dict[str, str]) -> None:
    sub = volume[..., : s.profile.check_depth]
    share = sub.shape[-1] / volume.shape[-1]
    for name, check in (("SSA fast path", _ssa_check), ("f1 cache", None)):
        for precision in PRECISIONS:
            row = _row(NUMERICS, name, "T2DNet head (SSA)" if check else "ThickSliceInferer, cache on vs off",
                       precision, "" if check else "on vs off")
            if precision in unsupported:
                row["status"] = f"skipped: {unsupported[precision]}"
                s.rows.append(row)
                continue
            timed = _seconds(s, "T2D single view", precision=precision)
            estimate = 0.0 if check or not timed else 3 * share * max(timed)

            def work(r: dict, check=check, precision=precision) -> None:
                with rec.tf32_off():
                    if check is None:
                        _cache_check(s, sub, precision, r)
                    else:
                        check(s, precision, r)
            s.attempt(row, estimate, work)


def _training(s: _Session) -> None:
    p = s.profile
    for name, files, three_d in (("train T2D", rec.T2D_TRAIN, False), ("train 3D U-Net", rec.UNET3D, True)):
        parser = rec.bundle_parser(files, p.overrides_3d if three_d else p.overrides_2d, s.dev)
        get = parser.get_parsed_content
        batch = int(get("volumes_per_batch")) * int(get("slabs_per_volume"))
        shape = (batch, 1, *get("patch_size")) if three_d else (batch, int(get("num_slices")), *get("spatial_size"))
        amp = bool(get("amp")) and s.dev.type == "cuda"
        desc = f"{'+'.join(files)}, batch {'x'.join(map(str, shape))}"
        row = _row(TRAINING, name, desc, "AMP float16" if amp else "float32")

        def work(r: dict, parser=parser, shape=shape) -> None:
            out = rec.train_iterations(parser, shape, s.dev, p.train_iterations, p.train_warmup, s.left, s.seed)
            peak = "n/a" if out["peak_mb"] is None else out["peak_mb"]
            r.update(iterations_per_s=out["iterations_per_s"], repeats=out["iterations"], peak_memory_mb=peak,
                     note=f"{p.train_warmup} warm-up iteration(s); random batch on the device (no data loading); "
                          f"loss {out['loss']:.3g}")
        s.attempt(row, 0.0, work)


def _compile(s: _Session, volume: torch.Tensor, backend: str) -> None:
    best = _fastest(s)
    row = _row(COMPILE, "T2D single view, torch.compile", f"T2DNet from inference.json, backend {backend}",
               best["precision"], best["cache"], best["layout"], windows_per_call=best["batch"])

    def work(r: dict) -> None:
        net = copy.deepcopy(_t2d_net(s, best["layout"]))
        for method in ("forward", "encode_group", "decode"):  # the cached path calls encode_group and decode
            setattr(net, method, torch.compile(getattr(net, method), backend=backend))
        inferer = _t2d_inferer(s, rec.T2D_INFERENCE, "slab_inferer", best["cache"], best["batch"])
        s.timed(r, _infer(s, inferer, net, volume, best["precision"]), warmups=2)
    known = _seconds(s, "T2D single view")
    s.attempt(row, s.profile.compile_reserve_s + (3 * max(known) if known else 0.0), work)
    fp32 = _seconds(s, "3D sliding window", precision="float32")
    if row.get("seconds") and fp32:
        row["time_vs_3d"] = row["seconds"] / fp32[0]


def gpu_check(out_dir: str = "docs", device: str | None = None, tiny: bool = False, repeats: int = 3,
              time_budget_s: float = 420.0, compile: bool = True, compile_backend: str = "inductor",
              seed: int = 0) -> list[dict[str, Any]]:
    """Measure latency, numerical agreement and training throughput of the shipped recipes on one GPU and write
    ``gpu.md`` and ``gpu.csv`` into ``out_dir`` (see the module docstring for what each section measures).

    Args:
        out_dir: folder of the page and the CSV (default ``docs``).
        device: ``cuda`` (default when available), ``cuda:1``, or ``cpu`` (with ``tiny`` only).
        tiny: small sizes and networks (48x40x20 volume, ResNet-18, k = 6, 3-level 3D UNet), for CPU tests.
        repeats: timed calls per latency row after one warm-up; the median is reported (fewer when the budget
            is short).
        time_budget_s: seconds for all measurements; rows that would not fit are skipped and say so.
        compile: try ``torch.compile`` (section 4) when time is left.
        compile_backend: ``torch.compile`` backend (``inductor``; the tests use ``eager``).
        seed: seed of the weights and of the random inputs.

    Returns:
        the rows written to ``gpu.csv``.

    Raises:
        RuntimeError: without ``tiny`` on a machine without CUDA, or for a CUDA device that is not there.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if (dev.type == "cuda" and not torch.cuda.is_available()) or (dev.type != "cuda" and not tiny):
        raise RuntimeError(f"{_NO_CUDA} (device {device!r}, torch.cuda.is_available() = {torch.cuda.is_available()}).")
    if int(repeats) < 1 or float(time_budget_s) <= 0:
        raise ValueError(f"repeats must be >= 1 and time_budget_s > 0, got {repeats!r} and {time_budget_s!r}.")
    profile = rec.TINY if tiny else rec.FULL
    command = f"python -m t2d_monai gpu_check --out_dir {out_dir}" + (" --tiny" if tiny else "") \
        + f" --device {device} --repeats {repeats} --time_budget_s {time_budget_s:g}" \
        + ("" if compile else " --nocompile")
    s = _Session(dev, profile, repeats, time_budget_s, seed)
    saved_benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = dev.type == "cuda"
    setup = (f"Volume {'x'.join(map(str, profile.volume))} ({profile.name} mode), random values in [0, 1] sliced along "
             f"its last axis, untrained weights (timing only); seed {seed}. Latency: one warm-up call, then the median "
             f"of up to {repeats} calls (column `repeats`), CUDA synchronised; peak memory is "
             f"torch.cuda.max_memory_allocated over the row's timed calls (the volume and the networks built so far "
             f"included); cudnn.benchmark "
             f"{torch.backends.cudnn.benchmark}, TF32 convolutions {torch.backends.cudnn.allow_tf32} (matmul "
             f"{torch.backends.cuda.matmul.allow_tf32}); bfloat16/float16 rows under torch.autocast. Numerical checks "
             f"with TF32 off. Time budget {time_budget_s:g} s; rows that would not fit are skipped."
             + (" Tiny mode: the targets are set for 512x512x394 on a GPU; their verdicts here only exercise the page."
                if tiny else ""))
    machine = machine_line(dev)
    try:
        gen = torch.Generator().manual_seed(seed)
        volume = torch.rand(1, 1, *profile.volume, generator=gen).to(s.dev)
        unsupported = {n: e for n, d in PRECISIONS.items() if (e := rec.autocast_error(dev, d))}
        steps = [(LATENCY, lambda: _latency(s, volume, unsupported)),
                 (NUMERICS, lambda: _numerics(s, volume, unsupported)),
                 (TRAINING, lambda: _training(s)), (COMPILE, lambda: _compile(s, volume, compile_backend))]
        for i, (section, run) in enumerate(steps):
            if section == COMPILE and not compile:
                s.rows.append(_row(COMPILE, "T2D single view, torch.compile", "", status="skipped: --nocompile"))
            else:
                run()
            # a partial page after each section; after the last one (nothing pending) it is the final page
            text = write_report(out_dir, s.rows, command, machine, setup, pending=SECTIONS[i + 1:])
    finally:
        torch.backends.cudnn.benchmark = saved_benchmark
    print(text)
    return s.rows
