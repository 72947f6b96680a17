"""Whether longer training slows T2D's inference: the validation inferer of two trained T2D k = 6 runs (by default
step 29's seed 0, 3200 iterations, and step 30's seed 0, 19200 iterations) timed side by side in one process on one
random 128 x 128 x 64 volume, three times each, alternating. Needs the runs' models (not kept in records/).

Usage (from the repository root, after step 29 and step 30 were trained into runs/)::

    python docs/experiments/step30_budget19200/weights_latency.py \\
        runs/step29/affine/t2d_k6/lr0.002/seed0 runs/step30/budget19200/t2d_k6/lr0.002/seed0
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from t2d_monai.benchmarks.evaluation import pipeline
from t2d_monai.benchmarks.methods import resolve_method
from t2d_monai.benchmarks.runner import MethodRun


def run_pipeline(root: str):
    """The run's validation pipeline with its best checkpoint, under the overrides it was trained with."""
    overrides = json.loads((Path(root) / "settings.json").read_text())["overrides"]
    overrides = {k: v for k, v in overrides.items() if k not in ("device", "amp")}
    run = MethodRun(resolve_method("t2d_k6"), Path(root), overrides.pop("dataset_dir"), overrides, "cpu",
                    Path("bundles/hepatic_vessel"), seed=overrides.get("seed", 0))
    pipe = pipeline(run)
    pipe.network.eval()
    return pipe


def seconds(pipe, volume: torch.Tensor) -> float:
    with torch.no_grad():
        start = time.perf_counter()
        pipe.inferer(volume, pipe.network)
        return time.perf_counter() - start


if __name__ == "__main__":
    pipes = {root: run_pipeline(root) for root in sys.argv[1:]}
    volume = torch.rand(1, 1, 128, 128, 64, generator=torch.Generator().manual_seed(0))
    for pipe in pipes.values():
        seconds(pipe, volume)  # untimed warm-up
    times = {root: [] for root in pipes}
    for _ in range(3):
        for root, pipe in pipes.items():
            times[root].append(seconds(pipe, volume))
    for root, ts in times.items():
        print(f"{root}: " + " ".join(f"{t:.2f}" for t in ts) + " s")
