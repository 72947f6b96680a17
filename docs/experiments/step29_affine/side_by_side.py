"""Step 29 beside step 27: each row's held-out Dice without and with a learnt shift after each instance norm.

Reads two benchmark ``out_dir`` folders (or their kept records: the JSON files are enough) and prints one Markdown
table: per row, each folder's chosen learning rate, held-out Dice (mean over seeds of each seed's mean over the
cases, and the range over seeds, as the benchmark's table), per seed, and the predicted vessel share; then the
difference with :func:`t2d_monai.benchmarks.report.compare`'s call (a win or a loss only beyond the larger of the
two ranges). A row not trained yet in a folder (no ``learning_rate.json`` or no evaluated seed) is shown as such.

Usage (from the folder the benchmarks ran in)::

    python docs/experiments/step29_affine/side_by_side.py runs/step27/thickness runs/step29/affine > side_by_side.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from t2d_monai.benchmarks.report import compare

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "demo_recipe"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "step27_thickness"))
from end_padding import seed_folders  # noqa: E402

ROWS = ["deeplab_k1", "early_k3", "early_k6", "early_k9", "early_k15", "t2d_k3", "t2d_k6", "t2d_k9", "t2d_k15",
        "unet3d"]


def row(folder: Path, name: str) -> dict | None:
    """``name``'s figures in ``folder`` at its chosen learning rate, or None where it is not trained yet."""
    lr, seeds = seed_folders(folder, name)
    kept = [s / "eval_result.json" for s in seeds if (s / "eval_result.json").is_file()]
    evals = [json.loads(path.read_text())["cases"] for path in kept]
    if lr is None or not evals:
        return None
    dice = np.array([np.mean([c["dice"] for c in cases]) for cases in evals])
    return {"lr": lr, "dice_mean": float(dice.mean()), "dice_seed_range": float(dice.max() - dice.min()),
            "seeds": len(dice), "per_seed": " ".join(f"{d:.3f}" for d in dice),
            "pred_pct": 100 * float(np.mean([c["pred_foreground"] for cases in evals for c in cases]))}


def cell(r: dict | None) -> str:
    if r is None:
        return "not trained yet | | |"
    return f"{r['lr']:g} | {r['dice_mean']:.3f} ({r['dice_seed_range']:.3f}) | {r['per_seed']} | {r['pred_pct']:.2f}"


def main(before: str, after: str) -> str:
    lines = [f"Held-out Dice per row: `{before}` (before) and `{after}` (after); mean over seeds (range).", "",
             "| row | lr before | Dice before | per seed | vessel % | lr after | Dice after | per seed | vessel % "
             "| after - before |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name in ROWS:
        a, b = row(Path(before), name), row(Path(after), name)
        call = compare(b, a) if a is not None and b is not None else ""
        lines.append(f"| {name} | {cell(a)} | {cell(b)} | {call} |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(main(*sys.argv[1:]))
