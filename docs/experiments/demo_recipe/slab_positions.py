"""What does each position of a T2D window predict? Held-out Dice of one trained T2D run when every slice is taken
from the window in which it sits at one position only, against the average over all windows (uniform or gaussian).

For a trained benchmark run (a ``<out_dir>/t2d_k<k>/seed<s>`` folder of ``python -m t2d_monai benchmark``), the
held-out cases of its split are segmented with the run's own validation inferer and post-processing, with the
inferer's ``weighting`` set to ``"uniform"``, ``"gaussian"``, and for each position ``p`` a weight of 1 at ``p``
and 1e-6 elsewhere (positive weights keep every slice covered; the other positions change a probability by less
than 1e-5; the k - 1 slices at each end of a volume, which no window holds at every position, come from the
windows that hold them). Dice is the mean over the cases; the false-positive share is that of all predicted voxels.

Usage: ``python docs/experiments/demo_recipe/slab_positions.py --out positions.md <run folder>``; ``--set key=value``
(JSON values, repeatable) changes today's bundle configs for the run, e.g. ``--set pad_ends=false``.
"""

import argparse
import json
import shlex
from pathlib import Path

import numpy as np

from recall_by_radius import parse_sets, predict


def summary(by_case: dict) -> tuple[float, float]:
    """Mean Dice over the cases and the share of predicted voxels that are not vessel."""
    dice = [2 * (p & y).sum() / max(p.sum() + y.sum(), 1) for p, y, _ in by_case.values()]
    false_pos = sum(int((p & ~y).sum()) for p, y, _ in by_case.values())
    predicted = sum(int(p.sum()) for p, _, _ in by_case.values())
    return float(np.mean(dice)), false_pos / max(predicted, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="markdown file to write")
    parser.add_argument("--set", action="append", default=[], help="key=value config override")
    parser.add_argument("run", help="a seed folder of a T2D row of a benchmark")
    args = parser.parse_args()
    overrides = parse_sets(args.set)
    k = int(json.loads((Path(args.run) / "train_result.json").read_text())["overrides"]["num_slices"])
    variants: dict[str, object] = {"uniform (every window alike)": "uniform", "gaussian": "gaussian"}
    for p in range(k):
        variants[f"position {p} only"] = [1.0 if j == p else 1e-6 for j in range(k)]
    lines = [
        "Command: `python docs/experiments/demo_recipe/slab_positions.py "
        + " ".join(["--out", args.out] + [f"--set {shlex.quote(s)}" for s in args.set] + [args.run]) + "`",
        "",
        "| slice taken from | held-out Dice | predicted voxels that are not vessel |",
        "|---|---|---|",
    ]
    for name, weighting in variants.items():
        dice, false_share = summary(predict(Path(args.run), **{**overrides, "weighting": weighting}))
        lines.append(f"| {name} | {dice:.4f} | {false_share:.3f} |")
        print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
