"""The comparison benchmark: method names, bad arguments, and the tiny path end to end (with resuming)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from t2d_monai.benchmarks.comparison import METHODS, PRESETS, benchmark, resolve_method

BUNDLE_CONFIGS = Path(__file__).resolve().parents[2] / "bundles" / "hepatic_vessel" / "configs"


@pytest.mark.parametrize(
    "name, kind, three, overrides",
    [
        ("deeplab_k1", "2d", False, {}),
        ("unet3d", "3d", False, {}),
        ("t2d_k9", "2d", False, {"num_slices": 9}),
        ("esm_dot_3views", "2d", True, {}),
        ("t2d_k21_3views", "2d", True, {"num_slices": 21}),
    ],
)
def test_resolve_method(name, kind, three, overrides):
    method = resolve_method(name)
    assert (method.name, method.kind, method.three_views, method.overrides) == (name, kind, three, overrides)


def test_every_method_overlay_exists():
    for method in METHODS.values():
        for overlay in method.overlays:
            assert (BUNDLE_CONFIGS / overlay).is_file(), overlay
    for preset in PRESETS.values():
        for name in preset["methods"]:
            resolve_method(name)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"methods": "deeplab_k7"}, ValueError, "unknown method 'deeplab_k7'; valid: deeplab_k1"),
        ({"methods": "unet3d_3views"}, ValueError, "three-view fusion is for 2D methods only"),
        ({"methods": "t2d_k0"}, ValueError, "slab thickness must be >= 1"),
        ({"preset": "huge"}, ValueError, "preset must be one of"),
        ({"num_iterations": 0}, ValueError, "num_iterations must be >= 1"),
        ({"thickness": "3,x"}, ValueError, "thickness must be a comma-separated list"),
        ({"dataset_dir": "/no/such/folder"}, FileNotFoundError, "does not exist"),
    ],
)
def test_ill_arg(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        benchmark(out_dir=str(tmp_path / "out"), tiny=True, **kwargs)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("comparison")
    docs = out / "docs"
    notes = out / "notes.md"
    notes.write_text("## Reading\n\nhand-written text\n")
    md = benchmark(out_dir=str(out / "run"), tiny=True, docs_dir=str(docs), notes=str(notes), threads=2)
    return out, Path(md)


@pytest.mark.slow
def test_tiny_benchmark_writes_a_well_formed_table(tiny_run):
    out, md = tiny_run
    run = out / "run"
    rows = list(csv.DictReader((run / "comparison.csv").open()))
    assert [r["method"] for r in rows] == PRESETS["tiny"]["methods"]
    for row in rows:
        assert 0.0 <= float(row["dice_mean"]) <= 1.0
        assert float(row["inter_slice_similarity"]) >= 0.0
        assert float(row["latency_s"]) > 0.0 and float(row["train_time_s"]) > 0.0
        assert float(row["params_m"]) > 0.0 and int(row["iterations"]) == 2
        assert 0.0 <= float(row["pred_fg_pct"]) <= 100.0 and 0.0 < float(row["label_fg_pct"]) < 100.0
        assert len(row["dice_per_case"].split()) == 1  # one held-out case
        assert 0.0 <= float(row["dice_train_cases"]) <= 1.0
    ceilings = {r["method"]: r["stride4_ceiling"] for r in rows}
    assert ceilings["unet3d"] == "n/a" and 0.0 < float(ceilings["deeplab_k1"]) == float(ceilings["t2d"]) <= 1.0
    assert (run / "t2d" / "eval_training_cases.json").is_file()
    per_case = list(csv.DictReader((run / "comparison_per_case.csv").open()))
    assert len(per_case) == len(rows) and {"case", "dice", "latency_s", "load_1min"} <= set(per_case[0])
    text = md.read_text()
    assert text.count("\n| ") == len(rows) + 1  # header + one line per method
    assert "Load average" in text and "hand-written text" in text and "deeplab_k1" in text
    assert (run / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "docs" / "images" / "comparison.png").is_file()
    assert "images/comparison.png" in (out / "docs" / "results.md").read_text()
    # the 3D row has fewer parameters than the 2D ones here (UNet 16..256 vs ResNet-18 DeepLabV3+)
    # the overlay's slab thickness wins over the preset's (deeplab_k1 is k=1, t2d takes the preset's k=6)
    import torch

    for method, k in (("deeplab_k1", 1), ("t2d", 6)):
        assert torch.load(run / method / "models" / "model.pt", weights_only=True)["signature"]["num_slices"] == k
    params = {r["method"]: float(r["params_m"]) for r in rows}
    assert params["unet3d"] < params["deeplab_k1"] < params["t2d"]


@pytest.mark.slow
def test_tiny_benchmark_resumes_without_retraining(tiny_run):
    out, _ = tiny_run
    run = out / "run"
    record = run / "deeplab_k1" / "train_result.json"
    before = record.read_text()
    mtime = (run / "deeplab_k1" / "models" / "model.pt").stat().st_mtime_ns
    benchmark(out_dir=str(run), tiny=True, methods="deeplab_k1", threads=2)
    assert record.read_text() == before
    assert (run / "deeplab_k1" / "models" / "model.pt").stat().st_mtime_ns == mtime
    rows = list(csv.DictReader((run / "comparison.csv").open()))
    assert [r["method"] for r in rows] == ["deeplab_k1"]
    assert json.loads(before)["iterations"] == 2


@pytest.mark.slow
def test_three_views_reuse_only_a_coronal_t2d_row(tmp_path):
    """With --view axial the t2d row's model is the axial one: t2d_3views must train its coronal view itself."""
    run = tmp_path / "run"
    benchmark(out_dir=str(run), tiny=True, methods="t2d,t2d_3views", view="axial", threads=2)
    assert (run / "t2d" / "models" / "model_axial.pt").is_file()
    record = json.loads((run / "t2d_3views" / "train_result.json").read_text())
    assert sorted(v["view"] for v in record["views"]) == ["axial", "coronal", "sagittal"]
    assert not any("reused_from" in v for v in record["views"])
