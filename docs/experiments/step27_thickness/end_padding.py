"""The same trained models, two end paddings: held-out Dice with ``pad_ends`` and the recipe's ``pad_mode`` "edge"
(copies of the end slice) against "reflect" (the volume mirrored at its end slices, so that a window over a volume's
end still holds slices that differ). No training: every seed of each row's chosen learning rate is segmented twice.

Per row and padding: held-out Dice per seed and mean, the number of (case, seed) pairs with flooded end slices (more
than half of a coronal slice among the first or last 10 predicted vessel), the predicted vessel share, and the mean
Dice on the two validation cases (where a choice between the paddings would be made).
The "edge" figures must equal the benchmark's kept evaluation (``eval_result.json``); the script stops if they do not.

Usage (from the repository root; ``<out_dir>`` of the step-27 benchmark command, see README.md)::

    python docs/experiments/step27_thickness/end_padding.py runs/step27/thickness \
        early_k3 early_k6 early_k9 early_k15 t2d_k3 t2d_k6 t2d_k9 t2d_k15 > end_padding.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "demo_recipe"))
from recall_by_radius import predict_lists  # noqa: E402

PAD_MODES = ("edge", "reflect")
END_SLICES = 10  # a flooded slice is counted among the first and the last END_SLICES coronal slices


def seed_folders(out_dir: Path, row: str) -> tuple[float | None, list[Path]]:
    """The row's chosen learning rate (``learning_rate.json``, None without a grid) and its seed folders."""
    choice = out_dir / row / "learning_rate.json"
    lr = json.loads(choice.read_text())["chosen"] if choice.is_file() else None
    parent = out_dir / row / (f"lr{lr:g}" if lr is not None else "")
    return lr, sorted(parent.glob("seed*"), key=lambda p: int(p.name[4:]))


def seed_scores(folder: Path, mode: str) -> tuple[list[float], int, float, float]:
    """Per held-out case Dice, the number of held-out cases with a flooded end slice, their mean predicted vessel %,
    and the mean Dice on the validation cases."""
    lists = predict_lists(folder, ("validation", "test"), pad_ends=True, pad_mode=mode)
    dice, flooded, share = [], 0, []
    for pred, label, _ in lists["test"].values():  # boolean (H, W, D) masks
        dice.append(_dice(pred, label))
        per_slice = pred.mean(axis=(0, 2))
        flooded += bool((np.r_[per_slice[:END_SLICES], per_slice[-END_SLICES:]] > 0.5).any())
        share.append(100 * pred.mean())
    validation = [_dice(pred, label) for pred, label, _ in lists["validation"].values()]
    return dice, flooded, float(np.mean(share)), float(np.mean(validation))


def _dice(pred: np.ndarray, label: np.ndarray) -> float:
    return float(2 * (pred & label).sum() / (pred.sum() + label.sum()))


def row_line(out_dir: Path, row: str) -> str:
    """One Markdown row: for each padding, held-out Dice per seed and mean, flooded cases, predicted vessel %,
    validation Dice; then the difference of the held-out means."""
    lr, seeds = seed_folders(out_dir, row)
    cells, means = [], {}
    for mode in PAD_MODES:
        per_seed, flooded, share, cases, validation = [], 0, [], 0, []
        for folder in seeds:
            dice, seed_flooded, seed_share, seed_validation = seed_scores(folder, mode)
            if mode == "edge":
                kept = [c["dice"] for c in json.loads((folder / "eval_result.json").read_text())["cases"]]
                if not np.allclose(dice, kept, atol=1e-4):
                    raise SystemExit(f"{folder}: edge Dice {dice} differs from its eval_result.json {kept}.")
            per_seed.append(float(np.mean(dice)))
            cases, flooded = cases + len(dice), flooded + seed_flooded
            share.append(seed_share)
            validation.append(seed_validation)
        means[mode] = float(np.mean(per_seed))
        cells += [" / ".join(f"{d:.3f}" for d in per_seed), f"{means[mode]:.3f}", f"{flooded} of {cases}",
                  f"{np.mean(share):.2f}", f"{np.mean(validation):.3f}"]
    return (f"| {row} | {lr if lr is not None else 'config'} | " + " | ".join(cells)
            + f" | {means['reflect'] - means['edge']:+.3f} |")


def main(out_dir: str, rows: list[str]) -> None:
    print("| row | lr | " + " | ".join(f"{name}, {mode}" for mode in PAD_MODES for name in (
        "held-out Dice per seed", "mean", "flooded held-out cases", "predicted vessel %", "validation Dice"))
        + " | held-out mean, reflect - edge |")
    print("|---" * (3 + 5 * len(PAD_MODES)) + "|")
    for row in rows:
        print(row_line(Path(out_dir), row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
