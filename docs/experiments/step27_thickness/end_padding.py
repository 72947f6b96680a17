"""The same trained models, two end paddings: held-out Dice with ``pad_ends`` and the recipe's ``pad_mode`` "edge"
(copies of the end slice) against "reflect" (the volume mirrored at its end slices, so that a window over a volume's
end still holds slices that differ). No training: every seed of each row's chosen learning rate is segmented twice.

Per row: held-out Dice per seed and mean with each padding, the number of (case, seed) pairs with flooded end slices
(more than half of a coronal slice among the first or last 10 predicted vessel), and the predicted vessel share.
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
from recall_by_radius import predict  # noqa: E402

PAD_MODES = ("edge", "reflect")
END_SLICES = 10  # a flooded slice is counted among the first and the last END_SLICES coronal slices


def seed_folders(out_dir: Path, row: str) -> tuple[float | None, list[Path]]:
    """The row's chosen learning rate (``learning_rate.json``, None without a grid) and its seed folders."""
    choice = out_dir / row / "learning_rate.json"
    lr = json.loads(choice.read_text())["chosen"] if choice.is_file() else None
    parent = out_dir / row / (f"lr{lr:g}" if lr is not None else "")
    return lr, sorted(parent.glob("seed*"), key=lambda p: int(p.name[4:]))


def seed_scores(folder: Path, mode: str) -> tuple[list[float], int, float]:
    """Per held-out case Dice, the number of cases with a flooded end slice, and the mean predicted vessel %."""
    dice, flooded, share = [], 0, []
    for pred, label, _ in predict(folder, pad_ends=True, pad_mode=mode).values():
        pred, label = np.asarray(pred).squeeze() > 0.5, np.asarray(label).squeeze() > 0.5
        dice.append(float(2 * (pred & label).sum() / (pred.sum() + label.sum())))
        per_slice = pred.mean(axis=(0, 2))
        flooded += bool((np.r_[per_slice[:END_SLICES], per_slice[-END_SLICES:]] > 0.5).any())
        share.append(100 * pred.mean())
    return dice, flooded, float(np.mean(share))


def row_line(out_dir: Path, row: str) -> str:
    """One Markdown row: for each padding, Dice per seed, mean, flooded cases, predicted vessel %."""
    lr, seeds = seed_folders(out_dir, row)
    cells, means = [], {}
    for mode in PAD_MODES:
        per_seed, flooded, share, cases = [], 0, [], 0
        for folder in seeds:
            dice, f, s = seed_scores(folder, mode)
            if mode == "edge":
                kept = [c["dice"] for c in json.loads((folder / "eval_result.json").read_text())["cases"]]
                if not np.allclose(dice, kept, atol=1e-4):
                    raise SystemExit(f"{folder}: edge Dice {dice} differs from its eval_result.json {kept}.")
            per_seed.append(float(np.mean(dice)))
            cases += len(dice)
            flooded, share = flooded + f, share + [s]
        means[mode] = float(np.mean(per_seed))
        cells += [" / ".join(f"{d:.3f}" for d in per_seed), f"{means[mode]:.3f}", f"{flooded} of {cases}",
                  f"{np.mean(share):.2f}"]
    return (f"| {row} | {lr if lr is not None else 'config'} | " + " | ".join(cells)
            + f" | {means['reflect'] - means['edge']:+.3f} |")


def main(out_dir: str, rows: list[str]) -> None:
    print("| row | lr | Dice per seed, edge | mean, edge | flooded cases, edge | predicted vessel %, edge | "
          "Dice per seed, reflect | mean, reflect | flooded cases, reflect | predicted vessel %, reflect | "
          "reflect - edge |")
    print("|---" * 11 + "|")
    for row in rows:
        print(row_line(Path(out_dir), row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
