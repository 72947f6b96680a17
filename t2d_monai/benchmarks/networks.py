"""Parameter counts and CPU forward time of DeepLabV3+ (early fusion), ESM and ESM+SSA, side by side.

Run ``python -m t2d_monai network_benchmark``; it writes ``docs/network_benchmark.md`` and ``.csv``.
"""

from __future__ import annotations

import csv
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from t2d_monai.benchmarks.machine import cpu_name

__all__ = ["VARIANTS", "network_benchmark"]

#: label -> T2DNet keyword arguments
VARIANTS: dict[str, dict] = {
    "DeepLabV3+ (early fusion)": {"fusion": "early", "attention": None},
    "ESM": {"fusion": "esm", "attention": None},
    "ESM+SSA": {"fusion": "esm", "attention": "ssa"},
}

_FIELDS = ["slices", "variant", "backbone", "parameters", "extra_vs_deeplab", "median_ms", "min_ms", "size", "batch"]


def network_benchmark(
    out_dir: str = "docs",
    slices: Sequence[int] = (12, 15),
    backbone: str = "resnet50",
    size: int = 256,
    batch: int = 1,
    repeats: int = 7,
    warmup: int = 1,
    threads: int | None = None,
    seed: int = 0,
) -> None:
    """
    Count parameters and time the CPU forward pass of the three networks of the paper's ablation
    (DeepLabV3+ with k-slice early fusion, ESM, ESM+SSA) for each k in ``slices``, all built as
    :class:`t2d_monai.networks.T2DNet` (out_channels 1, group_size 3, no ASPP).

    The timing is interleaved: each of ``repeats`` rounds runs every network once on the same input, so
    all networks see the same machine load; the table reports the median and the minimum per network
    (eval mode, ``torch.no_grad``, float32, after ``warmup`` untimed runs each).

    Args:
        out_dir: folder for ``network_benchmark.md`` and ``network_benchmark.csv``. Defaults to ``"docs"``.
        slices: values of k. Defaults to (12, 15).
        backbone: ResNet of all networks. Defaults to ``"resnet50"``.
        size: input height and width. Defaults to 256.
        batch: batch size. Defaults to 1.
        repeats: timed rounds. Defaults to 7.
        warmup: untimed runs per network before timing. Defaults to 1.
        threads: ``torch.set_num_threads`` value, None to keep torch's default. Defaults to None.
        seed: seed for weights and input. Defaults to 0.

    Writes ``network_benchmark.csv`` (one row per k and network) and ``network_benchmark.md`` in ``out_dir``
    and prints the table.
    """
    from t2d_monai.networks import T2DNet

    if threads is not None:
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    nets: dict[tuple[int, str], torch.nn.Module] = {}
    for k in slices:
        for label, kwargs in VARIANTS.items():
            nets[(int(k), label)] = T2DNet(int(k), 1, backbone=backbone, **kwargs).eval()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    inputs = {int(k): torch.randn(batch, int(k), size, size) for k in slices}
    times: dict[tuple[int, str], list[float]] = {key: [] for key in nets}
    with torch.no_grad():
        for key, net in nets.items():
            for _ in range(warmup):
                net(inputs[key[0]])
        for _ in range(repeats):
            for key, net in nets.items():
                start = time.perf_counter()
                net(inputs[key[0]])
                times[key].append(time.perf_counter() - start)
    rows = []
    for (k, label), net in nets.items():
        params = sum(p.numel() for p in net.parameters())
        base = sum(p.numel() for p in nets[(k, "DeepLabV3+ (early fusion)")].parameters())
        rows.append(
            {
                "slices": k,
                "variant": label,
                "backbone": backbone,
                "parameters": params,
                "extra_vs_deeplab": params - base,
                "median_ms": round(1000 * statistics.median(times[(k, label)]), 1),
                "min_ms": round(1000 * min(times[(k, label)]), 1),
                "size": size,
                "batch": batch,
            }
        )
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "network_benchmark.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    command = (
        f"python -m t2d_monai network_benchmark --out_dir {out_dir} --slices '{list(map(int, slices))}' "
        f"--backbone {backbone} --size {size} --batch {batch} --repeats {repeats} --warmup {warmup}"
        + (f" --threads {threads}" if threads is not None else "")
        + f" --seed {seed}"
    )
    lines = [
        "# Network benchmark: DeepLabV3+ (early fusion), ESM, ESM+SSA",
        "",
        f"Written by `{command}`; do not edit by hand.",
        "",
        f"All networks are `t2d_monai.networks.T2DNet` with backbone {backbone}, out_channels 1, group_size 3, "
        f"output stride 16, no ASPP. Forward pass on CPU, float32, eval mode, input {batch}x k x {size}x{size}; "
        f"{repeats} interleaved rounds after {warmup} warm-up run(s) per network.",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; 1-minute load average {load_before:.2f} before timing (other "
        "processes on a shared machine inflate the medians; the minimum is the less disturbed figure).",
        "",
        "| k | network | parameters | extra vs DeepLabV3+ | median forward (ms) | min forward (ms) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['slices']} | {r['variant']} | {r['parameters']:,} | {r['extra_vs_deeplab']:+,} | "
            f"{r['median_ms']:.1f} | {r['min_ms']:.1f} |"
        )
    for k in slices:
        esm = sum(p.numel() for p in nets[(int(k), "ESM")].parameters())
        ssa = sum(p.numel() for p in nets[(int(k), "ESM+SSA")].parameters())
        lines.append("")
        lines.append(
            f"k={int(k)}: SSA (attention block and per-group head) adds {ssa - esm:+,} parameters to ESM "
            f"({100.0 * (ssa - esm) / esm:.2f}%)."
        )
    Path(out_dir, "network_benchmark.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[8:]))
