"""Time one training step of the CPU recipe's T2DNet at encoder output stride 16 and 32 (issue 12, step 21).

Forward, backward and an AdamW step on 2 random slabs of 6 x 128 x 64 (the demo's batch), median of 20 steps after
5 warm-up steps, with torch's default threads. Run it on an idle machine: ``python docs/experiments/demo_recipe/step_time.py``.
"""

import time
from pathlib import Path

import torch
from monai.bundle import ConfigParser

from t2d_monai.benchmarks.machine import cpu_yardstick_s

CONFIGS = Path(__file__).resolve().parents[3] / "bundles" / "hepatic_vessel" / "configs"


def step_seconds(output_stride: int, repeats: int = 20, warmup: int = 5) -> float:
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.json"), str(CONFIGS / "cpu_small.json")])
    parser.update({"bundle_root": "/nonexistent", "output_stride": output_stride})
    network = parser.get_parsed_content("network_def")
    optimizer = torch.optim.AdamW(network.parameters(), 1e-3)
    image = torch.randn(2, 6, 128, 64)
    label = (torch.rand(2, 6, 128, 64) > 0.99).float()
    loss = torch.nn.BCEWithLogitsLoss()
    times = []
    for _ in range(warmup + repeats):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss(network(image), label).backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return sorted(times[warmup:])[repeats // 2]


if __name__ == "__main__":
    print(f"CPU yardstick {cpu_yardstick_s():.3f} s, torch threads {torch.get_num_threads()}")
    for stride in (16, 32):
        print(f"output stride {stride}: median training step {step_seconds(stride):.3f} s")
