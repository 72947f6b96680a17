"""What a larger window stride costs in Dice: trained T2D runs segment the held-out cases with their own validation
inferer and post-processing (as the benchmark's evaluation does), once per window stride, nothing else changed.

The paper slides its k-slice windows with stride 1 (14 of 15 slices overlap), so every slice is decoded k times,
and decoding the windows is most of T2D's inference time (docs/gpu_reading.md). A stride of s decodes each slice
about k / s times, so it cuts that cost about s-fold; this script measures the accuracy side (timing is left to a
benchmark on an idle machine or a GPU: ``gpu_check``'s stride rows). Windows per volume are counted, not timed:
:meth:`t2d_monai.inferers.ThickSliceInferer.window_starts` (over the padded slices the inferer slides over).

Usage (from the repository root; each folder a benchmark seed folder with its model and its data on disk)::

    python docs/experiments/stride_cpu/stride_dice.py --strides 1,2,3,4,5,6 \\
        runs/step32/budget38400/t2d_k6/lr0.002/seed0 [more seed folders of the same row]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "demo_recipe"))
from recall_by_radius import load_run, predict_lists  # noqa: E402


def dice(pred: np.ndarray, label: np.ndarray) -> float:
    return float(2 * (pred & label).sum() / max(1, pred.sum() + label.sum()))


def at_stride(stride: int) -> dict:
    """Config overrides for windows at ``stride``. ``slab_margin`` 0 lets the bundle build inferers beyond the stride
    its check allows for the run's margin (``check_window_stride``): measuring what lies beyond is the point here."""
    return {"stride": stride, "slab_margin": 0}


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("folders", nargs="+", type=Path)
    cli.add_argument("--strides", default="1,2,3,4,5,6")
    cli.add_argument("--slices", type=int, default=128, help="slices along the view's axis, for the window count")
    args = cli.parse_args()
    strides = [int(s) for s in args.strides.split(",")]
    inferer = load_run(args.folders[0])[3]  # its window size and end padding; the stride is given per row
    print(f"| stride | windows per volume ({args.slices} slices) | held-out Dice per seed | mean | "
          "validation Dice per seed | mean |")
    print("|---|---|---|---|---|---|")
    for stride in strides:
        test, validation = [], []
        for folder in args.folders:
            lists = predict_lists(folder, ("validation", "test"), **at_stride(stride))
            test.append(np.mean([dice(p, t) for p, t, _ in lists["test"].values()]))
            validation.append(np.mean([dice(p, t) for p, t, _ in lists["validation"].values()]))
        windows = len(inferer.window_starts(args.slices, stride))  # padded as its __call__ pads them
        print(f"| {stride} | {windows} | {' '.join(f'{d:.3f}' for d in test)} | {np.mean(test):.3f} | "
              f"{' '.join(f'{d:.3f}' for d in validation)} | {np.mean(validation):.3f} |", flush=True)


if __name__ == "__main__":
    main()
