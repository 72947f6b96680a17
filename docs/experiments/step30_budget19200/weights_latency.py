"""Whether longer training slows T2D's inference: the benchmark's own latency measurement
(:func:`t2d_monai.benchmarks.evaluation.measure_latency`: validation inferer + post-processing per held-out case,
after a warm-up) of trained T2D k = 6 runs, taken in one process in three alternating rounds, so that the runs meet
the same machine. Needs the runs' models and data (not kept in records/).

Usage (from the repository root, after step 29 and step 30 were trained into runs/)::

    python docs/experiments/step30_budget19200/weights_latency.py \\
        runs/step29/affine/t2d_k6/lr0.002/seed0 runs/step30/budget19200/t2d_k6/lr0.002/seed0
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from t2d_monai.benchmarks.evaluation import measure_latency

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "demo_recipe"))
from recall_by_radius import method_run  # noqa: E402


if __name__ == "__main__":
    runs = [method_run(Path(root), json.loads((Path(root) / "train_result.json").read_text())) for root in sys.argv[1:]]
    cases = runs[0].parser(runs[0].train_files).get_parsed_content("datasplit")["test"]
    rounds: dict[str, list[float]] = {str(run.root): [] for run in runs}
    for _ in range(3):
        for run in runs:
            timed = measure_latency(run, cases)
            if not timed["trained_weights"]:
                raise FileNotFoundError(f"{run.root} has no trained model; train it first.")
            rounds[str(run.root)].append(float(np.mean([c["latency_s"] for c in timed["cases"]])))
    print(f"mean seconds per held-out case ({len(cases)} cases), three rounds:")
    for root, means in rounds.items():
        print(f"{root}: " + " ".join(f"{m:.2f}" for m in means))
