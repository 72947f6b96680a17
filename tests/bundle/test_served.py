"""The models a bundle folder serves: its own, each view, the three-view fusion; what each needs and lacks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from t2d_monai.bundle.served import served_models, training_overrides

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "hepatic_vessel"


@pytest.fixture
def bundle(tmp_path) -> Path:
    root = tmp_path / "hepatic_vessel"
    shutil.copytree(BUNDLE, root, ignore=shutil.ignore_patterns("models", "eval"))
    (root / "models").mkdir()
    return root


def test_source_bundle_serves_its_own_model_each_view_and_the_fusion(bundle):
    models = {m.name: m for m in served_models(str(bundle))}
    assert list(models) == ["hepatic_vessel", "hepatic_vessel_axial", "hepatic_vessel_coronal",
                            "hepatic_vessel_sagittal", "hepatic_vessel_three_views"]
    assert models["hepatic_vessel_axial"].checkpoints == ("models/model_axial.pt",)
    assert models["hepatic_vessel_coronal"].checkpoints == ("models/model.pt",)
    fusion = models["hepatic_vessel_three_views"]
    assert fusion.three_views and not fusion.trainable
    assert fusion.configs == ("inference.json", "inference_three_views.json")
    assert fusion.checkpoints == ("models/model_axial.pt", "models/model.pt", "models/model_sagittal.pt")
    assert all(m.trainable for n, m in models.items() if n != fusion.name)


def test_missing_weights_name_the_files_and_the_fix(bundle):
    models = {m.name: m for m in served_models(str(bundle), "hv")}
    assert "models/model.pt missing" in models["hv"].missing_weights()
    (bundle / "models" / "model.pt").write_bytes(b"x")
    (bundle / "models" / "model_axial.pt").write_bytes(b"x")
    assert models["hv"].missing_weights() is None and models["hv_axial"].missing_weights() is None
    reason = models["hv_three_views"].missing_weights()
    assert "models/model_sagittal.pt missing" in reason and "model_axial" not in reason
    assert "--view VIEW" in reason and "POST /train/hv_<view>" in reason
    assert "POST /train/hv_sagittal" in models["hv_sagittal"].missing_weights()
    (bundle / "models" / "model.pt").unlink()
    (bundle / "models" / "model.ts").write_bytes(b"x")  # TorchScript stands in for the bundle's own model only
    assert models["hv"].missing_weights() is None and models["hv_coronal"].missing_weights() is not None


def test_three_view_package_serves_its_fusion_and_one_view_package_itself(bundle):
    configs = bundle / "configs"
    inference = json.loads((configs / "inference.json").read_text())
    (configs / "inference_three_views.json").unlink()  # a --view axial package leaves the overlay out
    assert [m.name for m in served_models(str(bundle), "hv_axial_pkg")] == ["hv_axial_pkg"]
    inference["view_ckpt_files"] = "$..."  # a --view three_views package fuses in its own inference.json
    (configs / "inference.json").write_text(json.dumps(inference))
    (model,) = served_models(str(bundle), "hv3")
    assert model.three_views and model.configs == ("inference.json",) and len(model.checkpoints) == 3


def test_stats_file_sits_beside_the_checkpoint_it_describes(bundle):
    models = {m.name: m for m in served_models(str(bundle))}
    assert models["hepatic_vessel"].stats_file == str(bundle / "models" / "train_stats.json")
    assert models["hepatic_vessel_coronal"].stats_file == str(bundle / "models" / "train_stats.json")
    assert models["hepatic_vessel_axial"].stats_file == str(bundle / "models" / "train_stats_axial.json")


def test_training_overrides_add_the_view_the_stats_and_the_evaluation_metrics(bundle):
    models = {m.name: m for m in served_models(str(bundle))}
    evaluate = json.loads((bundle / "configs" / "evaluate.json").read_text())
    metric_ids = {k for k in evaluate if k.startswith("validate#additional_metrics#")}
    assert metric_ids == {f"validate#additional_metrics#val_{m}" for m in ("hd95", "surface_dice", "cldice")}
    overrides = training_overrides(models["hepatic_vessel_axial"])
    assert overrides["view"] == "axial"
    assert {k: overrides[k] for k in metric_ids} == {k: evaluate[k] for k in metric_ids}, "read from evaluate.json"
    assert overrides["surface_tolerance_mm"] == evaluate["surface_tolerance_mm"]
    train = json.loads((bundle / "configs" / "train.json").read_text())
    handlers = overrides["validate#handlers"]
    assert handlers[:-1] == train["validate"]["handlers"], "the bundle's own handlers are kept"
    assert handlers[-1]["_target_"] == "t2d_monai.handlers.TrainStatsWriter"
    assert handlers[-1]["path"] == str(bundle / "models" / "train_stats_axial.json")

    plain = training_overrides(models["hepatic_vessel"], vessel_metrics=False)
    assert "view" not in plain and not metric_ids & set(plain) and "surface_tolerance_mm" not in plain
    assert json.loads((bundle / "configs" / "train.json").read_text()) == train, "the bundle is not modified"
    with pytest.raises(ValueError, match="three-view fusion; train each of its views"):
        training_overrides(models["hepatic_vessel_three_views"])
