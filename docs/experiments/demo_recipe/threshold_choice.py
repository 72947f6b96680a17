"""Does a row lose Dice to the fixed 0.5 threshold? The probability threshold chosen on the validation cases, per run.

Every row of the benchmark binarises its vessel probability at 0.5. A row that under- or over-segments thin vessels
may score better at another threshold. For trained benchmark runs (``<out_dir>/<method>/seed<s>`` folders of
``python -m t2d_monai benchmark``), predict the validation and the held-out cases of the run's split with the row's
own validation inferer and post-processing (as the benchmark's evaluation does, without the final binarisation),
choose the threshold with the best mean validation Dice from ``--thresholds`` (ties: the one nearest 0.5), and report
the held-out Dice at 0.5 and at the chosen threshold. The held-out cases never take part in the choice, and every row
is treated the same way.

The bundle's configs are today's: ``--set key=value`` (JSON values, repeatable) changes them for every run whose
config has that id (as in recall_by_radius.py).

Usage (a row's runs as ``name=folder,folder,...``: the row's figure is the mean over its runs)::

    python docs/experiments/demo_recipe/threshold_choice.py --out thresholds.md \\
        t2d=/work/runs/step23/demo_scale_t2d_margin1_clean/t2d_k6/seed0,... \\
        unet3d=/work/runs/step22/demo_scale_unet3d_seeds/unet3d/seed0,...
"""

import argparse
import shlex
from pathlib import Path

import numpy as np
import torch
from monai.metrics import compute_dice

from recall_by_radius import parse_sets, predict_lists

DEFAULT_THRESHOLDS = "0.2,0.25,0.3,0.35,0.4,0.45,0.5,0.55,0.6,0.65,0.7"


def mean_dice(probs: dict, threshold: float) -> float:
    """Mean Dice over the cases of ``probs`` (case -> (probability, label, spacing)) at ``threshold`` (MONAI's
    ``compute_dice``; 1.0 for a case where both masks are empty)."""
    return float(np.mean([
        float(compute_dice(torch.as_tensor(p > threshold)[None, None], torch.as_tensor(label)[None, None],
                           ignore_empty=False))
        for p, label, _ in probs.values()
    ]))


def choose(validation: dict, thresholds: list[float]) -> tuple[float, dict[float, float]]:
    """The threshold of the best mean validation Dice (ties: nearest 0.5) and every threshold's score."""
    scores = {t: mean_dice(validation, t) for t in thresholds}
    return max(thresholds, key=lambda t: (round(scores[t], 6), -abs(t - 0.5))), scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="markdown file to write")
    parser.add_argument("--thresholds", default=DEFAULT_THRESHOLDS, help="comma-separated grid (must hold 0.5)")
    parser.add_argument("--set", action="append", default=[], help="key=value config override for every run")
    parser.add_argument("rows", nargs="+", help="name=run folder[,run folder...] (seed folders of a benchmark)")
    args = parser.parse_args()
    thresholds = sorted(float(t) for t in args.thresholds.split(","))
    if 0.5 not in thresholds or not all(0 < t < 1 for t in thresholds):
        raise SystemExit(f"--thresholds must lie in (0, 1) and hold 0.5, got {args.thresholds!r}.")
    overrides = parse_sets(args.set)
    lines = [
        "Command: `python docs/experiments/demo_recipe/threshold_choice.py "
        + " ".join(["--out", args.out, "--thresholds", args.thresholds]
                   + [f"--set {shlex.quote(s)}" for s in args.set] + args.rows) + "`",
        "",
        "| row | run | chosen threshold | validation Dice at 0.5 | at the chosen threshold | held-out Dice at 0.5 "
        "| at the chosen threshold | held-out gain |",
        "|---|---|---|---|---|---|---|---|",
    ]
    summary = []
    for spec in args.rows:
        name, folders = spec.split("=", 1)
        gains, base, tuned, chosen = [], [], [], []
        for folder in folders.split(","):
            predicted = predict_lists(Path(folder), ("validation", "test"), probabilities=True, **overrides)
            validation, test = predicted["validation"], predicted["test"]
            best, scores = choose(validation, thresholds)
            at_half, at_best = mean_dice(test, 0.5), mean_dice(test, best)
            base.append(at_half), tuned.append(at_best), chosen.append(best), gains.append(at_best - at_half)
            lines.append(f"| {name} | {folder} | {best:g} | {scores[0.5]:.3f} | {scores[best]:.3f} "
                         f"| {at_half:.3f} | {at_best:.3f} | {at_best - at_half:+.3f} |")
            print(lines[-1], flush=True)
        summary.append(f"| {name} | {len(base)} | {' '.join(f'{t:g}' for t in chosen)} | {np.mean(base):.3f} "
                       f"({np.ptp(base):.3f}) | {np.mean(tuned):.3f} ({np.ptp(tuned):.3f}) | {np.mean(gains):+.3f} |")
    lines += [
        "",
        "| row | runs | chosen thresholds | held-out Dice at 0.5, mean (range) "
        "| at the chosen thresholds, mean (range) | mean gain |",
        "|---|---|---|---|---|---|",
        *summary,
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
