"""A row's evaluation and latency (t2d_monai.benchmarks.evaluation) without a trained model: the latency is the
network's at its initial weights, the evaluation asks for the model. The trained path runs end to end in
test_comparison.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from t2d_monai.benchmarks.evaluation import evaluate, measure_latency, pipeline
from t2d_monai.benchmarks.methods import resolve_method
from t2d_monai.benchmarks.runner import MethodRun
from t2d_monai.bundle.paths import bundle_dir


def _untrained_run(dataset: Path, root: Path) -> tuple[MethodRun, list[dict]]:
    run = MethodRun(resolve_method("deeplab_k1"), root, str(dataset), {"spatial_size": [-1, -1]}, "cpu", bundle_dir())
    image = sorted((dataset / "imagesTr").glob("*.nii.gz"))[0]
    return run, [{"image": str(image), "label": str(dataset / "labelsTr" / image.name)}]


def test_latency_without_a_model_times_the_initial_network(small_dataset, tmp_path):
    run, cases = _untrained_run(small_dataset, tmp_path / "run")
    assert pipeline(run, require_weights=False).trained is False
    timed = measure_latency(run, cases, warmup=False)
    assert timed["trained_weights"] is False
    (row,) = timed["cases"]
    assert row["case"] == Path(cases[0]["image"]).name
    assert row["latency_s"] > 0.0 and set(row) == {"case", "latency_s", "load_1min"}


def test_evaluation_without_a_model_is_a_clear_error(small_dataset, tmp_path):
    run, cases = _untrained_run(small_dataset, tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="deeplab_k1 seed 0: no trained model .*delete the folder"):
        evaluate(run, cases)
