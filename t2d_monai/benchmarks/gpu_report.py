"""``gpu_check``'s page: the targets (met / missed, with the distance), the machine line and one table per
section, written as ``gpu.md`` and ``gpu.csv`` (atomically; a partial page after each section)."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from typing import Any

import torch

from t2d_monai.benchmarks.machine import cpu_name
from t2d_monai.utils.files import write_atomic, write_csv_atomic

__all__ = ["COLUMNS", "LATENCY", "NUMERICS", "TRAINING", "COMPILE", "machine_line", "markdown", "targets",
           "write_report"]

#: the sections, in the order they are measured (their priority)
LATENCY, NUMERICS, TRAINING, COMPILE = "1 latency", "2 numerical checks", "3 training", "4 torch.compile"
SECTIONS = (LATENCY, NUMERICS, TRAINING, COMPILE)

COLUMNS = ["section", "row", "network", "precision", "cache_f1", "channels_last", "windows_per_call", "status",
           "seconds", "repeats",
           "time_vs_3d", "peak_memory_mb", "iterations_per_s", "max_abs_diff", "tolerance", "within_tolerance", "note"]

#: the issue's targets (upper bounds); the paper's T2D / 3D time ratio was 0.248
SINGLE_VIEW_S, THREE_VIEWS_S, RATIO_3D, PAPER_RATIO = 1.0, 3.0, 0.10, 0.248


def _ok(rows: Sequence[dict], section: str, name: str, **match: Any) -> list[dict]:
    return [r for r in rows if r["section"] == section and r["row"] == name and r["status"] == "ok"
            and all(r.get(k) == v for k, v in match.items())]


def _bound(measured: float | None, bound: float, unit: str) -> tuple[str, str]:
    if measured is None:
        return "n/a", "not measured"
    gap = measured - bound
    verdict = f"met ({-gap:.3g}{unit} under)" if gap <= 0 else f"missed (by {gap:.3g}{unit})"
    return f"{measured:.3g}{unit}", verdict


def _checks(rows: Sequence[dict], name: str) -> tuple[str, str]:
    done = [r for r in rows if r["section"] == NUMERICS and r["row"] == name and r["status"] == "ok"]
    if not done:
        return "n/a", "not measured"
    worst = max(done, key=lambda r: r["max_abs_diff"] / r["tolerance"])
    share = worst["max_abs_diff"] / worst["tolerance"]
    failed = [r["precision"] for r in done if not r["within_tolerance"]]
    measured = f"worst {worst['precision']}: {worst['max_abs_diff']:.2e} (tolerance {worst['tolerance']:.1e})"
    verdict = f"met ({len(done)} precisions, worst at {share:.2f} of its tolerance)" if not failed \
        else f"missed ({', '.join(failed)}: worst at {share:.2f}x its tolerance)"
    return measured, verdict


def targets(rows: Sequence[dict]) -> list[dict[str, str]]:
    """Each target of the issue with its measured value and ``met (...)``, ``missed (by ...)`` or
    ``not measured``. The ratio target compares T2D's and the 3D sliding window's fastest rows (any precision, cache,
    layout or windows per call: each method at its own best measured setting; the torch.compile rows only when both
    methods have one)."""
    single = [r["seconds"] for r in rows if r["section"] == LATENCY and r["status"] == "ok"
              and (r["row"] == "T2D single view" or r["row"].startswith("T2D inference.json"))]
    views = [r["seconds"] for r in _ok(rows, LATENCY, "T2D three views")]
    unet = [r["seconds"] for r in _ok(rows, LATENCY, "3D sliding window")]
    compiled = [_ok(rows, COMPILE, f"{name}, torch.compile") for name in ("T2D single view", "3D sliding window")]
    if all(compiled):  # compiled rows count only when both methods were compiled (like with like)
        single, unet = single + [compiled[0][0]["seconds"]], unet + [compiled[1][0]["seconds"]]
    ratio = min(single) / min(unet) if single and unet else None
    found = [
        ("T2D single view, whole volume, fastest setting, at most 1 s",) + _bound(min(single, default=None),
                                                                                  SINGLE_VIEW_S, " s"),
        ("T2D three views (fused), at most 3 s",) + _bound(min(views, default=None), THREE_VIEWS_S, " s"),
        (f"T2D single view / 3D U-Net sliding window, each at its fastest measured setting (compiled only if both "
         f"were), at most {RATIO_3D} "
         f"(paper: {PAPER_RATIO})",) + _bound(ratio, RATIO_3D, ""),
        ("SSA fast path equals the block forward within the precision's tolerance",) + _checks(rows, "SSA fast path"),
        ("cached inference equals uncached within the precision's tolerance",) + _checks(rows, "f1 cache"),
    ]
    return [{"target": t, "measured": m, "verdict": v} for t, m, v in found]


def _driver() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout.strip()
        return out.splitlines()[0] if out else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown (no nvidia-smi)"


def machine_line(device: torch.device) -> str:
    """The device (GPU name, memory, driver, CUDA, cuDNN) or CPU, and the versions of torch, MONAI, Python."""
    import monai

    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        where = (f"GPU {props.name} ({props.total_memory / 2**30:.0f} GiB, compute capability {props.major}."
                 f"{props.minor}), driver {_driver()}, CUDA {torch.version.cuda}, cuDNN "
                 f"{torch.backends.cudnn.version()}, host CPU {cpu_name()}")
    else:
        where = (f"device {device} ({cpu_name()}, {os.cpu_count()} logical CPUs, "
                 f"{torch.get_num_threads()} torch threads)")
    return (f"{where}; torch {torch.__version__}, MONAI {monai.__version__}, Python {platform.python_version()}, "
            f"{platform.system()} {platform.machine()}")


def _cell(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value).replace("|", "/")


_TABLES = {
    LATENCY: ["row", "network", "precision", "cache_f1", "channels_last", "windows_per_call", "status", "seconds",
              "repeats", "time_vs_3d", "peak_memory_mb", "note"],
    NUMERICS: ["row", "network", "precision", "status", "max_abs_diff", "tolerance", "within_tolerance", "note"],
    TRAINING: ["row", "network", "precision", "status", "iterations_per_s", "repeats", "peak_memory_mb", "note"],
    COMPILE: ["row", "network", "precision", "cache_f1", "channels_last", "windows_per_call", "status", "seconds",
              "repeats",
              "time_vs_3d", "peak_memory_mb", "note"],
}


def markdown(rows: Sequence[dict], command: str, machine: str, setup: str, pending: Sequence[str]) -> str:
    """The page: how it was made, the targets, one table per section, then what was skipped or failed."""
    lines = ["# GPU check: inference latency, numerical checks, training throughput", "",
             f"Written by `{command}` (t2d_monai/benchmarks/gpu_check.py); do not edit by hand.", ""]
    if pending:
        lines += [f"**Partial page**: sections not run yet ({', '.join(pending)}); the run was still going or was "
                  "stopped.", ""]
    lines += [f"Machine: {machine}.", "", setup, "", "## Targets", "", "| target | measured | verdict |",
              "| --- | --- | --- |"]
    lines += [f"| {t['target']} | {t['measured']} | {t['verdict']} |" for t in targets(rows)]
    for section in SECTIONS:
        part = [r for r in rows if r["section"] == section]
        lines += ["", f"## {section[0]}. {section[2:]}", ""]
        if not part:
            lines.append("Not run yet." if section in pending else "No rows.")
            continue
        columns = _TABLES[section]
        lines += ["| " + " | ".join(c.replace("_", " ") for c in columns) + " |",
                  "| " + " | ".join("---" for _ in columns) + " |"]
        lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in part]
    missing = [r for r in rows if r["status"] != "ok"]
    lines += ["", "## Skipped or failed rows", ""]
    lines += [f"- {r['section']} / {r['row']} ({r['precision']}): {r['status']}" for r in missing] or ["None."]
    return "\n".join(lines) + "\n"


def write_report(out_dir: str, rows: Sequence[dict], command: str, machine: str, setup: str,
                 pending: Sequence[str] = ()) -> str:
    """Write ``gpu.csv`` and ``gpu.md`` into ``out_dir`` atomically; returns the markdown."""
    os.makedirs(out_dir, exist_ok=True)
    write_csv_atomic(os.path.join(out_dir, "gpu.csv"), rows, COLUMNS)
    text = markdown(rows, command, machine, setup, pending)
    write_atomic(os.path.join(out_dir, "gpu.md"), text)
    return text
