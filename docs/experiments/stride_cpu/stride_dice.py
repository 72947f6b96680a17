"""What a cheaper placement of windows costs in Dice, and saves in time: trained runs segment the held-out cases with
their own validation inferer and post-processing (as the benchmark's evaluation does), once per setting, nothing else
changed. For T2D (a 2D row) the setting is the window stride; for the 3D U-Net (a 3D row) the sliding window's patch
overlap, the 3D row's counterpart, so that both methods are given their cheaper settings the same way.

The paper slides its k-slice windows with stride 1 (14 of 15 slices overlap), so every slice is decoded k times,
and decoding the windows is most of T2D's inference time (docs/gpu_reading.md). A stride of s decodes each slice
about k / s times. The paper's 3D U-Net slides its patches with a quarter of the patch as stride (overlap 0.75), so
every voxel is covered by about 4 x 4 x 4 = 64 patches; overlap 0.5 covers it about 8 times, 0.25 about 2.4, 0 once.
Windows (or patches) per volume are counted with the inferer's own placement
(:meth:`t2d_monai.inferers.ThickSliceInferer.window_starts`; MONAI's scan interval and
:func:`monai.data.utils.dense_patch_slices`). With ``--time``, each setting is also timed with the benchmark's own
latency measurement (:func:`t2d_monai.benchmarks.evaluation.measure_latency`: validation inferer + post-processing
per held-out case, after a warm-up, the 1-minute load recorded), so run it alone on an idle machine.

Usage (from the repository root; each folder a benchmark seed folder of one row, with its model and data on disk)::

    python docs/experiments/stride_cpu/stride_dice.py --strides 1,2,3,4,5,6 \\
        runs/step32/budget38400/t2d_k6/lr0.002/seed0 [more seed folders of the same row]
    python docs/experiments/stride_cpu/stride_dice.py --overlaps 0.75,0.5,0.25,0 --time \\
        runs/step32/budget38400/unet3d/lr0.001/seed0 [more seed folders of the same row]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from monai.data.utils import dense_patch_slices

from t2d_monai.benchmarks.evaluation import measure_latency
from t2d_monai.benchmarks.inferers import scan_interval
from t2d_monai.benchmarks.runner import MethodRun

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "demo_recipe"))
from recall_by_radius import load_run, method_run, predict_lists  # noqa: E402


def dice(pred: np.ndarray, label: np.ndarray) -> float:
    return float(2 * (pred & label).sum() / max(1, pred.sum() + label.sum()))


def at_stride(stride: int) -> dict:
    """Config overrides for windows at ``stride``. ``slab_margin`` 0 lets the bundle build inferers beyond the stride
    its check allows for the run's margin (``check_window_stride``): measuring what lies beyond is the point here."""
    return {"stride": stride, "slab_margin": 0}


def at_overlap(overlap: float) -> dict:
    """Config overrides for the 3D row's sliding window at ``overlap`` (``baselines/patch3d.json``'s id)."""
    return {"sw_overlap": overlap}


def patches_per_volume(size: tuple[int, ...], patch: tuple[int, ...], overlap: float) -> int:
    """Patches MONAI's ``SlidingWindowInferer`` runs over a volume of ``size`` (a patch larger than an axis spans
    it once, as MONAI pads the volume to the patch)."""
    roi = [min(s, p) for s, p in zip(size, patch)]
    return len(dense_patch_slices(size, roi, scan_interval(roi, overlap, size)))


def recorded_run(folder: Path, setting: dict | None = None) -> MethodRun:
    """The run in ``folder`` as the benchmark built it (its ``train_result.json``), with ``setting`` on top of its
    recorded overrides."""
    run = method_run(folder, json.loads((folder / "train_result.json").read_text()))
    run.overrides.update(setting or {})
    return run


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("folders", nargs="+", type=Path)
    cli.add_argument("--strides", default="1,2,3,4,5,6", help="window strides, for a 2D row")
    cli.add_argument("--overlaps", default="0.75,0.5,0.25,0", help="sliding-window overlaps, for a 3D row")
    cli.add_argument("--slices", type=int, default=128, help="slices along a 2D row's view axis, for the window count")
    cli.add_argument("--size", default="128,128,64", help="volume size for a 3D row's patch count")
    cli.add_argument("--time", action="store_true", help="also time each setting (idle machine)")
    args = cli.parse_args()
    kinds = {recorded_run(f).method.kind for f in args.folders}
    if len(kinds) != 1:
        raise SystemExit(f"the folders mix 2D and 3D rows ({sorted(kinds)}); give the seed folders of one row.")
    three_d = kinds == {"3d"}
    parser, _, _, inferer = load_run(args.folders[0])  # its window size and placement; the setting is given per row
    if three_d:
        settings = [float(o) for o in args.overlaps.split(",")]
        size = tuple(int(s) for s in args.size.split(","))
        patch = tuple(int(p) for p in parser.get_parsed_content("patch_size"))
        name, unit, overrides = "overlap", f"patches per volume ({'x'.join(map(str, size))})", at_overlap
        count = lambda overlap: patches_per_volume(size, patch, overlap)  # noqa: E731
    else:
        settings = [int(s) for s in args.strides.split(",")]
        name, unit, overrides = "stride", f"windows per volume ({args.slices} slices)", at_stride
        count = lambda stride: len(inferer.window_starts(args.slices, stride))  # noqa: E731  padded as __call__ pads
    timing = " | seconds per held-out case per seed | mean | 1-min load" if args.time else ""
    print(f"| {name} | {unit} | held-out Dice per seed | mean | validation Dice per seed | mean{timing} |")
    print("|---|---|---|---|---|---" + ("|---|---|---" if args.time else "") + "|")
    for value in settings:
        test, validation, seconds, load = [], [], [], []
        for folder in args.folders:
            lists = predict_lists(folder, ("validation", "test"), **overrides(value))
            test.append(np.mean([dice(p, t) for p, t, _ in lists["test"].values()]))
            validation.append(np.mean([dice(p, t) for p, t, _ in lists["validation"].values()]))
            if args.time:
                run = recorded_run(folder, overrides(value))
                timed = measure_latency(run, run.parser(run.train_files).get_parsed_content("datasplit")["test"])
                if not timed["trained_weights"]:
                    raise SystemExit(f"{folder} has no trained model (models/model.pt).")
                seconds.append(float(np.mean([c["latency_s"] for c in timed["cases"]])))
                load += [c["load_1min"] for c in timed["cases"]]
        times = (f" | {' '.join(f'{s:.2f}' for s in seconds)} | {np.mean(seconds):.2f} | "
                 f"{min(load):.2f}-{max(load):.2f}") if args.time else ""
        print(f"| {value:g} | {count(value)} | {' '.join(f'{d:.3f}' for d in test)} | {np.mean(test):.3f} | "
              f"{' '.join(f'{d:.3f}' for d in validation)} | {np.mean(validation):.3f}{times} |", flush=True)


if __name__ == "__main__":
    main()
