"""Step 30's finished trainings, one line per row and seed: learning rate, best validation Dice and its iteration,
held-out Dice (mean over the test cases of the training's ``eval_result.json``), the validation curve's best before
its last 30 % of validations and within them (:func:`t2d_monai.benchmarks.report.rising_window`), whether it still
rose at the end (:func:`t2d_monai.benchmarks.report.still_rising`, the benchmark's criterion) and the training time.

Reads one or more benchmark ``out_dir`` folders or their kept records (the JSON files are enough) and prints one
Markdown table, row by row across the folders. Rows that a folder does not hold are left out, so it also reads step
31's (the single slice only) and step 32's beside it (the other rows at the same budget).

Usage (from the repository root)::

    python docs/experiments/step30_budget19200/status.py docs/experiments/step30_budget19200/records
    python docs/experiments/step30_budget19200/status.py docs/experiments/step32_budget38400/records \
        docs/experiments/step31_single38400/records
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from t2d_monai.benchmarks.report import rising_window, still_rising

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "step27_thickness"))
from end_padding import seed_folders  # noqa: E402

ROWS = ["t2d_k6", "unet3d", "early_k6", "deeplab_k1", "early_k9"]


def main(*out_dirs: str) -> None:
    print("| row | seed | learning rate | best validation Dice (iteration) | held-out Dice "
          "| best before the last 30 % -> in it (iteration), rise | still rising at the end | train time (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for row in ROWS:
        for out_dir in out_dirs:
            _print_seeds(Path(out_dir), row)


def _print_seeds(out_dir: Path, row: str) -> None:
    """One table line per finished seed of ``row`` in ``out_dir``."""
    lr, folders = seed_folders(out_dir, row)
    for folder in folders:
        if not (folder / "eval_result.json").is_file():
            continue  # training or evaluation not finished
        curve = json.loads((folder / "curve.json").read_text())  # [[iteration, validation Dice], ...]
        at, best = max(curve, key=lambda point: point[1])
        cases = json.loads((folder / "eval_result.json").read_text())["cases"]
        seconds = json.loads((folder / "train_time.json").read_text())["train_time_s"]
        window = rising_window(curve)
        rise = "n/a" if window is None else (" -> ".join(f"{dice:.3f} ({it})" for it, dice in window)
                                             + f", {window[1][1] - window[0][1]:+.4f}")
        print(f"| {row} | {folder.name[4:]} | {lr:g} | {best:.3f} ({at}) | "
              f"{np.mean([c['dice'] for c in cases]):.3f} | {rise} | {'yes' if still_rising(curve) else 'no'} | "
              f"{seconds:.0f} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
