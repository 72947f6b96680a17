"""Held-out Dice against inference time per held-out case, one line per row, from the tables ``stride_dice.py --time``
printed (``tables/<row>.md``): each point a window stride (2D rows) or patch overlap (the 3D row), the seeds' mean
with their range as an error bar. 2D strides above ``--max_stride`` (beyond what the bundles allow for the recipe's
``slab_margin``) are left out of the picture; the tables keep them.

Usage (from the repository root)::

    python docs/experiments/stride_cpu/frontier_plot.py --out docs/experiments/stride_cpu/frontier.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TABLES = Path(__file__).resolve().parent / "tables"
ROWS = {"t2d_k6": "T2D (ESM + SSA, 6 slices): stride", "early_k6": "early fusion (6 slices): stride",
        "unet3d": "3D U-Net: patch overlap", "deeplab_k1": "single slice"}


def read_table(path: Path) -> list[dict]:
    """The rows of one ``stride_dice.py --time`` table: setting, held-out Dice per seed, seconds per case (mean)."""
    lines = [line.strip().strip("|").split("|") for line in path.read_text().splitlines() if line.startswith("|")]
    header = [h.strip() for h in lines[0]]
    seeds = header.index("held-out Dice per seed")
    seconds = header.index("mean", header.index("seconds per held-out case per seed"))  # the mean after the seeds
    return [{"setting": float(cells[0]), "dice": [float(d) for d in cells[seeds].split()],
             "seconds": float(cells[seconds])} for cells in lines[2:]]


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "frontier.png")
    cli.add_argument("--max_stride", type=int, default=4)
    args = cli.parse_args()
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    for name, label in ROWS.items():
        points = read_table(TABLES / f"{name}.md")
        if name != "unet3d":
            points = [p for p in points if p["setting"] <= args.max_stride]
        mean = [sum(p["dice"]) / len(p["dice"]) for p in points]
        low = [m - min(p["dice"]) for m, p in zip(mean, points)]
        high = [max(p["dice"]) - m for m, p in zip(mean, points)]
        x = [p["seconds"] for p in points]
        ax.errorbar(x, mean, yerr=[low, high], marker="o", capsize=3, label=label)
        if name != "deeplab_k1":
            for p, m in zip(points, mean):
                ax.annotate(f"{p['setting']:g}", (p["seconds"], m), textcoords="offset points", xytext=(4, 4),
                            fontsize=8)
    ax.set_xscale("log")
    ticks = [0.1, 0.2, 0.3, 0.5, 1, 2, 3, 5, 10]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlim(min(ax.get_xlim()[0], 0.15), max(ax.get_xlim()[1], 5))
    ax.set_xlabel("seconds per held-out case (128 x 128 x 64, 2-core CPU, log scale)")
    ax.set_ylabel("held-out Dice (mean of 3 seeds, range)")
    ax.set_title("Dice against inference time: window stride (2D) and patch overlap (3D)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
