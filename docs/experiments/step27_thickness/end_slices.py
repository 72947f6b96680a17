"""Where the thick early-fusion rows fail: per held-out case, Dice with the recipe's ``pad_ends`` (cpu_small.json:
True) and without it, the share of voxels predicted vessel against the true share, and the number of coronal slices
(the stored array's second axis) that are more than half predicted vessel.

Usage (from the folder the benchmark ran in; one or more run folders)::

    python docs/experiments/step27_thickness/end_slices.py runs/step27/thickness/early_k15/lr0.002/seed0 \
        runs/step27/thickness/early_k9/lr0.001/seed0 > end_slices.md
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "demo_recipe"))
from recall_by_radius import predict  # noqa: E402


def case_rows(folder: Path) -> list[str]:
    """One Markdown row per held-out case of the run in ``folder``."""
    rows = []
    with_pad, without = predict(folder, pad_ends=True), predict(folder, pad_ends=False)
    for case, (pred, label, _) in with_pad.items():
        pred, label = np.asarray(pred).squeeze() > 0.5, np.asarray(label).squeeze() > 0.5
        other = np.asarray(without[case][0]).squeeze() > 0.5
        dice = [2 * (p & label).sum() / (p.sum() + label.sum()) for p in (pred, other)]
        flooded = np.flatnonzero(pred.mean(axis=(0, 2)) > 0.5)
        rows.append(f"| {folder} | {case} | {dice[0]:.3f} | {dice[1]:.3f} | {100 * pred.mean():.2f} | "
                    f"{100 * label.mean():.2f} | {len(flooded)} of {pred.shape[1]} | {_ranges(flooded)} |")
    return rows


def _ranges(indices: np.ndarray) -> str:
    """``[0, 1, 2, 7]`` -> ``"0-2, 7"`` ("none" when empty)."""
    parts, start = [], None
    for i, value in enumerate(indices):
        start = value if start is None else start
        if i + 1 == len(indices) or indices[i + 1] != value + 1:
            parts.append(f"{start}" if start == value else f"{start}-{value}")
            start = None
    return ", ".join(parts) or "none"


def main(folders: list[str]) -> None:
    print("| run | case | Dice, pad_ends (the recipe) | Dice, no pad_ends | predicted vessel % | true vessel % | "
          "coronal slices > half predicted vessel | which (0 = first) |")
    print("|---|---|---|---|---|---|---|---|")
    for folder in folders:
        print("\n".join(case_rows(Path(folder))))


if __name__ == "__main__":
    main(sys.argv[1:])
