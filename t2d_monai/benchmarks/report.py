"""The comparison's outputs: one summary row per method, the Markdown table (its prose in
``templates/comparison.md``), the Dice-vs-latency plot."""

from __future__ import annotations

import io
import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t2d_monai.benchmarks.machine import cpu_name
from t2d_monai.utils.files import write_atomic

__all__ = ["COLUMNS", "machine_description", "markdown", "plot", "summary"]

_TEMPLATE = Path(__file__).resolve().parent / "templates" / "comparison.md"


def machine_description(device: str, threads: int) -> str:
    cpu = cpu_name()
    dev = device if not device.startswith("cuda") else torch.cuda.get_device_name(torch.device(device))
    return (f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} logical CPUs, torch threads {threads}, "
            f"device {dev}, torch {torch.__version__}, Python {platform.python_version()}")


def summary(name: str, label: str, train: dict, evaluation: dict, fit: dict) -> dict:
    dice = np.array([c["dice"] for c in evaluation["cases"]])
    ceiling = [c["stride4_ceiling"] for c in evaluation["cases"]]
    iss = np.array([c["inter_slice_similarity"] for c in evaluation["cases"]])
    lat = np.array([c["latency_s"] for c in evaluation["cases"]])
    return {
        "method": name,
        "what": label,
        "dice_mean": round(float(dice.mean()), 4),
        "dice_std": round(float(dice.std()), 4),
        "dice_per_case": " ".join(f"{d:.3f}" for d in dice),
        "dice_train_cases": round(float(np.mean([c["dice"] for c in fit["cases"]])), 4),
        "stride4_ceiling": "n/a" if np.isnan(ceiling).any() else round(float(np.mean(ceiling)), 4),
        "inter_slice_similarity": round(float(iss.mean()), 4),
        "latency_s": round(float(lat.mean()), 3),
        "pred_fg_pct": round(100 * float(np.mean([c["pred_foreground"] for c in evaluation["cases"]])), 3),
        "label_fg_pct": round(100 * float(np.mean([c["label_foreground"] for c in evaluation["cases"]])), 3),
        "params_m": round(evaluation["params"] / 1e6, 3),
        "train_time_s": train["train_time_s"],
        "iterations": train["iterations"],
    }


def plot(rows: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    for row in rows:
        marker = "s" if row["kind"] == "3d" else ("^" if row["method"].endswith("_3views") else "o")
        ax.scatter(row["latency_s"], row["dice_mean"], marker=marker, s=45)
        ax.annotate(row["method"], (row["latency_s"], row["dice_mean"]), textcoords="offset points", xytext=(5, 4),
                    fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("inference latency per volume (s, log scale)")
    ax.set_ylabel("mean Dice on held-out cases")
    ax.set_title("Dice vs latency (o 2D / thickened 2D, ^ three views, s 3D)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(str(path), buf.getvalue())


COLUMNS = ["method", "what", "dice_mean", "dice_std", "dice_per_case", "dice_train_cases", "stride4_ceiling",
            "inter_slice_similarity", "latency_s", "params_m", "train_time_s", "iterations", "pred_fg_pct",
            "label_fg_pct"]


def markdown(rows: list[dict], info: dict[str, Any], image: str, notes: str | None) -> str:
    """The comparison page: ``templates/comparison.md`` filled with ``info``, the table of ``rows``, the plot
    ``image``, the differences to the single-slice row, and ``notes`` (the hand-written reading)."""
    head = ["method", "what", "Dice mean", "Dice std", "Dice per case", "Dice on training cases",
            "stride-4 ceiling", "InterSliceSim. (lower better)",
            "latency / volume (s)", "params (M)", "train time (s)", "iterations", "predicted vessel %",
            "true vessel %"]
    lines = [_TEMPLATE.read_text().format(**{**info, "overrides": json.dumps(info["overrides"])}).rstrip(), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        lines.append("| " + " | ".join(str(row[c]) for c in COLUMNS) + " |")
    lines += ["", f"![Dice vs latency]({image})", ""]
    by = {r["method"]: r for r in rows}
    ref = by.get("deeplab_k1")
    if ref:
        lines += ["Differences to the single-slice baseline `deeplab_k1` (computed by the command):", ""]
        for r in rows:
            if r["method"] != "deeplab_k1":
                ratio = r["latency_s"] / ref["latency_s"] if ref["latency_s"] > 0 else float("nan")
                lines.append(f"- `{r['method']}`: Dice {r['dice_mean'] - ref['dice_mean']:+.4f}, "
                             f"InterSliceSimilarity {r['inter_slice_similarity'] - ref['inter_slice_similarity']:+.4f}, "
                             f"latency x{ratio:.2f}")
        lines.append("")
    if notes:
        lines += [notes.rstrip(), ""]
    return "\n".join(lines)
