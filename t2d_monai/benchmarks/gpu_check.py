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
   4, 16 and 64 windows (2D) or patches (3D) per network call (``infer_batch_size``), and one synchronised call
   split into its stages (mini-group encoding, window decoding, the rest: what to make cheaper); three views
   (``inference_three_views.json``) at the fastest single-view setting; single-slice DeepLabV3+
   (``baselines/deeplab_k1.json``) with MONAI's ``SliceInferer``; last, T2D at the fastest setting with window
   strides 3, 5 and k instead of the paper's 1, and the 3D U-Net at its fastest setting with patch overlaps 0.5 and
   0.25 instead of the paper's 0.75 (each a different output, so reported but not counted in the targets).
   Seconds are the median of repeats after a warm-up, with the ratio to the float32 3D sliding window and the
   peak GPU memory;
2. numerical checks: SSA's eval fast path against the block forward, and cached against uncached inference, per
   precision (float32 with TF32 off), as the max absolute difference against a tolerance;
3. training throughput (iterations per second, peak memory) of ``train.json`` (AMP on a GPU) and of the 3D recipe
   (``patch3d.json`` + ``unet3d.json``) on random batches of the recipes' shapes;
4. ``torch.compile`` of T2D at the fastest single-view setting and of the 3D U-Net at its fastest sliding-window
   setting, when the time left allows (both compiled: the compiled ratio compares like with like).

A partial page is written after each section, so a run stopped by the device's time limit still leaves figures.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from t2d_monai.benchmarks import gpu_recipes as rec
from t2d_monai.benchmarks.gpu_latency import latency
from t2d_monai.benchmarks.gpu_report import (
    COMPILE,
    LATENCY,
    NUMERICS,
    SECTIONS,
    TRAINING,
    machine_line,
    write_report,
)
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

__all__ = ["TOLERANCES", "gpu_check"]

#: max |difference| allowed per precision: probabilities for the cache check, a share of max |logit| for SSA.
#: About 10 units in the last place of the 8-bit (bfloat16) and 11-bit (float16) mantissas; float32 (TF32 off)
#: leaves room for cuDNN choosing other algorithms for other batch shapes (cached and uncached batches differ).
TOLERANCES = {"float32": 1e-4, "bfloat16": 5e-2, "float16": 1e-2}
_NO_CUDA = "no CUDA device: run with --tiny on CPU, or on a GPU machine"


def _ssa_check(s: Session, precision: str, row: dict) -> None:
    batch = s.parsed(rec.T2D_INFERENCE, "infer_batch_size")
    net = t2d_network(s, "off")
    x = torch.rand(batch, net.num_slices, *s.profile.volume[:2], device=s.dev)
    diff, scale = rec.ssa_fast_path_gap(net, x, s.dev, PRECISIONS[precision], s.seed)
    tolerance = TOLERANCES[precision] * scale
    row.update(max_abs_diff=diff, tolerance=tolerance, within_tolerance=diff <= tolerance,
               note=f"tolerance {TOLERANCES[precision]:g} x max(1, largest abs logit), largest abs logit {scale:.3g}")


def _cache_check(s: Session, volume: torch.Tensor, precision: str, row: dict) -> None:
    net = t2d_network(s, "off")
    out = {}
    for cache in (True, False):
        inferer = s.parsed(rec.T2D_INFERENCE, "slab_inferer", **{"slab_inferer#cache_f1": cache})
        out[cache] = infer_call(s, inferer, net, volume, precision)()
    diff = float((out[True] - out[False]).abs().max())
    row.update(max_abs_diff=diff, tolerance=TOLERANCES[precision], within_tolerance=bool(diff <= TOLERANCES[precision]),
               note=f"probabilities on the first {volume.shape[-1]} slices")


def _numerics(s: Session, volume: torch.Tensor, unsupported: dict[str, str]) -> None:
    sub = volume[..., : s.profile.check_depth]
    share = sub.shape[-1] / volume.shape[-1]
    for name, check in (("SSA fast path", _ssa_check), ("f1 cache", None)):
        for precision in PRECISIONS:
            row = make_row(NUMERICS, name, "T2DNet head (SSA)" if check else "ThickSliceInferer, cache on vs off",
                           precision, "" if check else "on vs off")
            if precision in unsupported:
                row["status"] = f"skipped: {unsupported[precision]}"
                s.rows.append(row)
                continue
            timed = latency_seconds(s, "T2D single view", precision=precision)
            estimate = 0.0 if check or not timed else 3 * share * max(timed)

            def work(r: dict, check=check, precision=precision) -> None:
                with rec.tf32_off():
                    if check is None:
                        _cache_check(s, sub, precision, r)
                    else:
                        check(s, precision, r)
            s.attempt(row, estimate, work)


def _training(s: Session) -> None:
    p = s.profile
    for name, files, three_d in (("train T2D", rec.T2D_TRAIN, False), ("train 3D U-Net", rec.UNET3D, True)):
        parser = rec.bundle_parser(files, p.overrides_3d if three_d else p.overrides_2d, s.dev)
        get = parser.get_parsed_content
        batch = int(get("volumes_per_batch")) * int(get("slabs_per_volume"))
        shape = (batch, 1, *get("patch_size")) if three_d else (batch, int(get("num_slices")), *get("spatial_size"))
        amp = bool(get("amp")) and s.dev.type == "cuda"
        desc = f"{'+'.join(files)}, batch {'x'.join(map(str, shape))}"
        row = make_row(TRAINING, name, desc, "AMP float16" if amp else "float32")

        def work(r: dict, parser=parser, shape=shape) -> None:
            out = rec.train_iterations(parser, shape, s.dev, p.train_iterations, p.train_warmup, s.left, s.seed)
            peak = "n/a" if out["peak_mb"] is None else out["peak_mb"]
            r.update(iterations_per_s=out["iterations_per_s"], repeats=out["iterations"], peak_memory_mb=peak,
                     note=f"{p.train_warmup} warm-up iteration(s); random batch on the device (no data loading); "
                          f"loss {out['loss']:.3g}")
        s.attempt(row, 0.0, work)


def _compile(s: Session, volume: torch.Tensor, backend: str) -> None:
    """T2D and the 3D U-Net each compiled at its fastest eager setting, so that the compiled ratio compares like with
    like (``gpu_report.targets`` counts these rows only when both ran)."""
    best = fastest_single_view(s)
    row = make_row(COMPILE, "T2D single view, torch.compile", f"T2DNet from inference.json, backend {backend}",
                   best["precision"], best["cache"], best["layout"], windows_per_call=best["batch"])

    def work(r: dict) -> None:
        net = copy.deepcopy(t2d_network(s, best["layout"]))
        for method in ("forward", "encode_group", "decode"):  # the cached path calls encode_group and decode
            setattr(net, method, torch.compile(getattr(net, method), backend=backend))
        inferer = t2d_inferer(s, rec.T2D_INFERENCE, "slab_inferer", best["cache"], best["batch"])
        s.timed(r, infer_call(s, inferer, net, volume, best["precision"]), warmups=2)
    known = latency_seconds(s, "T2D single view")
    s.attempt(row, s.profile.compile_reserve_s + (3 * max(known) if known else 0.0), work)
    fastest_3d = fastest_row(s, "3D sliding window")
    if fastest_3d is not None:
        row_3d = make_row(COMPILE, "3D sliding window, torch.compile", f"MONAI UNet (unet3d.json), backend {backend}",
                          fastest_3d["precision"], windows_per_call=fastest_3d["windows_per_call"])

        def work_3d(r: dict) -> None:
            net = torch.compile(copy.deepcopy(unet3d_network(s)), backend=backend)
            inferer = unet3d_inferer(s, fastest_3d["windows_per_call"])
            s.timed(r, infer_call(s, inferer, net, volume, fastest_3d["precision"]), warmups=2)
        # T2D's compilation time, when measured, sizes the 3D one (a smaller network) better than the fixed reserve
        compile_s = 2 * row["first_call_s"] if "first_call_s" in row else s.profile.compile_reserve_s
        s.attempt(row_3d, compile_s + 3 * fastest_3d["seconds"], work_3d)
    set_time_vs_3d(s)


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
    s = Session(dev, profile, repeats, time_budget_s, seed)
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
        steps = [(LATENCY, lambda: latency(s, volume, unsupported)),
                 (NUMERICS, lambda: _numerics(s, volume, unsupported)),
                 (TRAINING, lambda: _training(s)), (COMPILE, lambda: _compile(s, volume, compile_backend))]
        for i, (section, run) in enumerate(steps):
            if section == COMPILE and not compile:
                s.rows.append(make_row(COMPILE, "T2D single view, torch.compile", "", status="skipped: --nocompile"))
            else:
                run()
            # a partial page after each section; after the last one (nothing pending) it is the final page
            text = write_report(out_dir, s.rows, command, machine, setup, pending=SECTIONS[i + 1:])
    finally:
        torch.backends.cudnn.benchmark = saved_benchmark
    print(text)
    return s.rows
