"""The comparison's outputs: one summary row per method, the Markdown table (its prose in
``templates/comparison.md``), the Dice-vs-latency plot."""

from __future__ import annotations

import io
import json
import os
import platform
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t2d_monai.benchmarks.machine import cpu_name
from t2d_monai.utils.files import write_atomic

__all__ = [
    "COLUMNS", "compare", "machine_description", "markdown", "plot", "plot_curves", "rising_window", "still_rising",
    "summary",
]

_TEMPLATE = Path(__file__).resolve().parent / "templates" / "comparison.md"


def machine_description(device: str, threads: int) -> str:
    cpu = cpu_name()
    dev = device if not device.startswith("cuda") else torch.cuda.get_device_name(torch.device(device))
    return (f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} logical CPUs, torch threads {threads}, "
            f"device {dev}, torch {torch.__version__}, Python {platform.python_version()}")


#: a learning curve is "still rising" when its best validation Dice in the last 30 % of the validations exceeds
#: the best before them by more than this
RISING_MARGIN = 0.01


def rising_window(curve: list[list[float]]) -> tuple[list[float], list[float]] | None:
    """The best ``[iteration, validation Dice]`` of a learning curve before its last 30 % of validations and the
    best within them (the comparison :func:`still_rising` makes); None with fewer than 4 validations."""
    if len(curve) < 4:
        return None
    cut = int(round(0.7 * len(curve)))
    return max(curve[:cut], key=lambda point: float(point[1])), max(curve[cut:], key=lambda point: float(point[1]))


def still_rising(curve: list[list[float]]) -> bool:
    """Whether a learning curve ``[[iteration, validation Dice], ...]`` was still rising at the end of training:
    its best in the last 30 % of the validations is above the best before them by more than :data:`RISING_MARGIN`
    (False with fewer than 4 validations: too short to tell)."""
    window = rising_window(curve)
    return window is not None and float(window[1][1]) > float(window[0][1]) + RISING_MARGIN


def summary(name: str, label: str, per_seed: list[tuple[dict, dict, dict]], learning_rate: float | None) -> dict:
    """One table row from each seed's ``(training record, evaluation, evaluation on training cases)``: Dice as the
    mean over seeds of each seed's mean over the held-out cases, with the seeds' standard deviation and range."""
    seed_dice = np.array([np.mean([c["dice"] for c in ev["cases"]]) for _, ev, _ in per_seed])
    cases = [ev["cases"] for _, ev, _ in per_seed]
    case_dice = np.mean([[c["dice"] for c in cs] for cs in cases], axis=0)  # per case, mean over seeds
    flat = [c for cs in cases for c in cs]
    ceiling = [c["stride4_ceiling"] for c in cases[0]]
    return {
        "method": name,
        "what": label,
        "dice_mean": round(float(seed_dice.mean()), 4),
        "dice_seed_std": round(float(seed_dice.std()), 4),
        "dice_seed_range": round(float(seed_dice.max() - seed_dice.min()), 4),
        "dice_per_seed": " ".join(f"{d:.3f}" for d in seed_dice),
        "seeds": len(per_seed),
        "dice_std": round(float(case_dice.std()), 4),
        "dice_per_case": " ".join(f"{d:.3f}" for d in case_dice),
        "dice_train_cases": round(float(np.mean([c["dice"] for _, _, fit in per_seed for c in fit["cases"]])), 4),
        "best_val_dice": round(float(np.mean([rec["best_val_dice"] for rec, _, _ in per_seed])), 4),
        "learning_rate": "config" if learning_rate is None else f"{learning_rate:g}",
        "stride4_ceiling": "n/a" if np.isnan(ceiling).any() else round(float(np.mean(ceiling)), 4),
        "inter_slice_similarity": round(float(np.mean([c["inter_slice_similarity"] for c in flat])), 4),
        "hd95_mm": _case_mean(flat, "hd95_mm", 3),
        "surface_dice": _case_mean(flat, "surface_dice", 4),
        "cldice": _case_mean(flat, "cldice", 4),
        "cldice_per_seed": " ".join(str(_case_mean(ev["cases"], "cldice", 3)) for _, ev, _ in per_seed),
        "latency_s": round(float(np.mean([c["latency_s"] for c in flat])), 3),
        "pred_fg_pct": round(100 * float(np.mean([c["pred_foreground"] for c in flat])), 3),
        "label_fg_pct": round(100 * float(np.mean([c["label_foreground"] for c in flat])), 3),
        "params_m": round(per_seed[0][1]["params"] / 1e6, 3),
        "train_time_s": round(float(np.mean([rec["train_time_s"] for rec, _, _ in per_seed])), 2),
        "iterations": per_seed[0][0]["iterations"],
        "still_rising": sum(any(still_rising(v.get("curve") or []) for v in rec["views"]) for rec, _, _ in per_seed),
    }


def _case_mean(cases: list[dict], key: str, digits: int) -> float | str:
    """Mean of ``key`` over the cases that have a finite value ("n/a" when none has: an evaluation made before
    the metric existed, or HD95 of empty predictions only)."""
    values = [float(c[key]) for c in cases if key in c and np.isfinite(float(c[key]))]
    return round(float(np.mean(values)), digits) if values else "n/a"


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
    _save_png(fig, path)


def _save_png(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(str(path), buf.getvalue())


def plot_curves(curves: dict[str, list[dict]], path: Path) -> None:
    """Validation Dice against training iteration for every method: one thin line per seed (and view), the
    mean over seeds bold."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.2, 4.6), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    cycle = [f"C{i}" for i in range(10)]
    for i, (name, records) in enumerate(curves.items()):
        color = cycle[i % len(cycle)]
        lines = [np.array(v["curve"], dtype=float) for rec in records for v in rec["views"] if v.get("curve")]
        for line in lines:
            ax.plot(line[:, 0], line[:, 1], color=color, alpha=0.35, lw=0.8)
        lengths = {len(line) for line in lines}
        if lines and len(lengths) == 1:
            mean = np.mean(lines, axis=0)
            ax.plot(mean[:, 0], mean[:, 1], color=color, lw=2, label=name)
        elif lines:
            ax.plot([], [], color=color, lw=2, label=name)
    ax.set_xlabel("training iteration")
    ax.set_ylabel("validation Dice")
    ax.set_title("Learning curves (thin: each seed / view; bold: mean over seeds)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="upper left")
    fig.tight_layout()
    _save_png(fig, path)


COLUMNS = ["method", "what", "dice_mean", "dice_seed_std", "dice_seed_range", "dice_per_seed", "seeds",
           "learning_rate", "best_val_dice", "dice_std", "dice_per_case", "dice_train_cases", "stride4_ceiling",
           "inter_slice_similarity", "hd95_mm", "surface_dice", "cldice", "cldice_per_seed", "latency_s", "params_m", "train_time_s", "iterations", "still_rising",
           "pred_fg_pct", "label_fg_pct"]
_HEAD = ["method", "what", "Dice mean (over seeds)", "Dice std over seeds", "Dice range over seeds", "Dice per seed",
         "seeds", "learning rate", "best validation Dice", "Dice std over cases", "Dice per case (mean over seeds)",
         "Dice on training cases", "stride-4 ceiling", "InterSliceSim. (lower better)", "HD95 (mm, lower better)",
         "surface Dice (evaluate.json tolerance)", "clDice", "clDice per seed", "latency / volume (s)",
         "params (M)", "train time per seed (s)", "iterations", "seeds still rising at the end", "predicted vessel %",
         "true vessel %"]
_EARLY_FUSION = re.compile(r"(early_k|deeplab_k)(\d+)")
_T2D = re.compile(r"t2d(_k(\d+))?")


def compare(a: dict, b: dict) -> str:
    """``a`` against ``b``: the Dice difference and a call that is a win or a loss only when the difference is
    larger than the seed spread (the larger of the two rows' ranges over seeds)."""
    diff = a["dice_mean"] - b["dice_mean"]
    spread = max(a["dice_seed_range"], b["dice_seed_range"])
    text = f"Dice {diff:+.4f} (seed spread {spread:.4f}, {min(a['seeds'], b['seeds'])} seed(s))"
    if min(a["seeds"], b["seeds"]) < 2:
        return text + ": one seed, no spread measured, no call"
    if abs(diff) <= spread:
        return text + ": within the seed spread, no call"
    return text + (": win" if diff > 0 else ": loss")


def _references(rows: list[dict]) -> dict[str, dict]:
    """The rows the others are compared with: single slice, the best early-fusion row (k > 1), the 3D U-Net."""
    by = {r["method"]: r for r in rows}
    early = [r for r in rows if (m := _EARLY_FUSION.fullmatch(r["method"])) and int(m.group(2)) > 1]
    refs = {"single slice": by.get("deeplab_k1"), "3D U-Net": by.get("unet3d"),
            "best early fusion": max(early, key=lambda r: r["dice_mean"]) if early else None}
    return {k: v for k, v in refs.items() if v is not None}


def _target_check(rows: list[dict], threshold_dice: float | None = None) -> list[str]:
    """The comparison's targets (issue: T2D wins where users can check it), each met or missed with its distance;
    ``threshold_dice``: the best global HU threshold's Dice on the same cases (a floor every network should pass)."""
    t2d = [r for r in rows if (m := _T2D.fullmatch(r["method"])) and (m.group(2) is None or int(m.group(2)) >= 6)]
    refs = _references(rows)
    if not t2d or not refs:
        return []
    best = max(t2d, key=lambda r: r["dice_mean"])
    lines = [f"Targets, checked by the command for the best T2D row with k >= 6 (`{best['method']}`, "
             f"Dice {best['dice_mean']:.4f}):", ""]
    if threshold_dice is not None:
        lines.append(f"- above the best global HU threshold ({threshold_dice:.4f}): "
                     f"{'met' if best['dice_mean'] > threshold_dice else 'missed'} "
                     f"(distance {best['dice_mean'] - threshold_dice:+.4f})")
    for name in ("best early fusion", "single slice"):
        if name in refs:
            ref = refs[name]
            margin = best["dice_mean"] - ref["dice_mean"] - max(best["dice_seed_range"], ref["dice_seed_range"])
            seeded = min(best["seeds"], ref["seeds"]) >= 2
            verdict = ("met" if margin > 0 else "missed") if seeded else "not checkable with one seed"
            lines.append(f"- above {name} (`{ref['method']}`, {ref['dice_mean']:.4f}) by more than the seed spread: "
                         f"{verdict} (margin beyond the spread {margin:+.4f})")
    if "single slice" in refs:
        ref = refs["single slice"]
        rising, total = int(ref["still_rising"]), int(ref["seeds"])
        lines.append(f"- a budget at which the single-slice row's validation Dice has stopped rising: "
                     f"{'met' if rising == 0 else 'missed'} ({rising} of {total} seed(s) still rising at the end)")
    if "3D U-Net" in refs:
        ref = refs["3D U-Net"]
        lines.append(f"- at least the 3D U-Net's Dice ({ref['dice_mean']:.4f}): "
                     f"{'met' if best['dice_mean'] >= ref['dice_mean'] else 'missed'} "
                     f"(distance {best['dice_mean'] - ref['dice_mean']:+.4f})")
        if ref["latency_s"] > 0:
            ratio = best["latency_s"] / ref["latency_s"]
            lines.append(f"- at most a third of the 3D U-Net's latency here: {'met' if ratio <= 1 / 3 else 'missed'} "
                         f"(x{ratio:.2f}; the 256x256x96 figure is in inferer_benchmark.md)")
    return lines + [""]


def markdown(rows: list[dict], info: dict[str, Any], image: str, curves_image: str, notes: str | None) -> str:
    """The comparison page: ``templates/comparison.md`` filled with ``info``, the table of ``rows``, the plots,
    each row against the reference rows (calls only beyond the seed spread), the target check, and ``notes``."""
    lines = [_TEMPLATE.read_text().format(**{**info, "overrides": json.dumps(info["overrides"]),
                                                      "train_machines": "; ".join(info["train_machines"]),
                                                      "rising_margin": RISING_MARGIN}).rstrip(), "",
             "| " + " | ".join(_HEAD) + " |", "|" + "---|" * len(_HEAD)]
    for row in rows:
        lines.append("| " + " | ".join(str(row[c]) for c in COLUMNS) + " |")
    lines += ["", f"![Dice vs latency]({image})", "", f"![Learning curves]({curves_image})", ""]
    for name, ref in _references(rows).items():
        lines += [f"Against the {name} row `{ref['method']}` (computed by the command):", ""]
        for r in rows:
            if r is not ref:
                ratio = r["latency_s"] / ref["latency_s"] if ref["latency_s"] > 0 else float("nan")
                lines.append(f"- `{r['method']}`: {compare(r, ref)}; latency x{ratio:.2f}")
        lines.append("")
    lines += _target_check(rows, info.get("threshold_dice"))
    if notes:
        lines += [notes.rstrip(), ""]
    return "\n".join(lines)
