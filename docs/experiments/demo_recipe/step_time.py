"""Time one training step of the CPU recipe's T2DNet at the encoder settings of issue 12's steps 21 and 22.

Forward, the recipe's loss, backward and the recipe's optimizer step (``cpu_small.json``: slab Dice + BCE, fused
AdamW) on 2 random slabs of 6 x 128 x 64 (the demo's batch), median of 20 steps after 5 warm-up steps, with torch's
default threads, for: output stride 16 (layer4 dilated), output stride 32, and encoder depth 4 (no layer4, stride
16). The network settings are given explicitly, so the rows mean the same whatever ``cpu_small.json`` sets. Run it
on an idle machine: ``python docs/experiments/demo_recipe/step_time.py``.
"""

import time
from pathlib import Path

import torch
from monai.bundle import ConfigParser

from t2d_monai.benchmarks.machine import cpu_yardstick_s

CONFIGS = Path(__file__).resolve().parents[3] / "bundles" / "hepatic_vessel" / "configs"

VARIANTS = {
    "output stride 16, encoder depth 5": {"output_stride": 16, "encoder_depth": 5},
    "output stride 32, encoder depth 5": {"output_stride": 32, "encoder_depth": 5},
    "output stride 16, encoder depth 4": {"output_stride": 16, "encoder_depth": 4},
}


def step_seconds(settings: dict, repeats: int = 20, warmup: int = 5) -> tuple[float, float]:
    """Median seconds of one training step and the network's parameters (millions)."""
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.json"), str(CONFIGS / "cpu_small.json")])
    parser.update({"bundle_root": "/nonexistent", **settings})
    torch.manual_seed(0)
    network = parser.get_parsed_content("network")
    optimizer, loss = parser.get_parsed_content("optimizer"), parser.get_parsed_content("loss")
    image = torch.rand(2, 6, 128, 64)
    label = (torch.rand(2, 6, 128, 64) > 0.99).float()
    times = []
    for _ in range(warmup + repeats):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss(network(image), label).backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return sorted(times[warmup:])[repeats // 2], sum(p.numel() for p in network.parameters()) / 1e6


if __name__ == "__main__":
    print(f"CPU yardstick {cpu_yardstick_s():.3f} s, torch threads {torch.get_num_threads()}")
    for name, settings in VARIANTS.items():
        seconds, params = step_seconds(settings)
        print(f"{name}: median training step {seconds:.3f} s, {params:.2f} M parameters")
    print(f"CPU yardstick {cpu_yardstick_s():.3f} s")
