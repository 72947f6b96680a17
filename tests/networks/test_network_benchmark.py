"""Smoke test of ``python -m t2d_monai network_benchmark`` (t2d_monai/benchmarks/networks.py) at toy size."""

from __future__ import annotations

import csv

from t2d_monai.benchmarks.networks import network_benchmark


def test_network_benchmark_writes_table(tmp_path):
    network_benchmark(out_dir=str(tmp_path), slices=[4], backbone="resnet18", size=32, repeats=1, warmup=0)
    rows = list(csv.DictReader(open(tmp_path / "network_benchmark.csv")))
    assert [r["variant"] for r in rows] == ["DeepLabV3+ (early fusion)", "ESM", "ESM+SSA"]
    params = [int(r["parameters"]) for r in rows]
    assert params[0] < params[1] < params[2] and int(rows[0]["extra_vs_deeplab"]) == 0
    text = (tmp_path / "network_benchmark.md").read_text()
    assert "python -m t2d_monai network_benchmark" in text and "| 4 | ESM+SSA |" in text
