"""The one-command demo, end to end with tiny settings (the real run uses the CPU overlay as it is)."""

from __future__ import annotations

import pytest

from t2d_monai.demo import run_demo

TINY = {
    "num_slices": 6, "backbone": "resnet18", "decoder_channels": 16, "spatial_size": [48, 48],
    "iterations_per_epoch": 2, "lr_milestones": [3], "val_interval": 1, "volumes_per_batch": 1, "slabs_per_volume": 2,
}


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    summary = run_demo(
        out=str(out), num_cases=6, num_test=1, shape=(48, 40, 20), num_iterations=4,
        overrides={**TINY, "num_test": 2},  # not the split's default count (1 of 6): every step must use it
        report=str(tmp_path / "docs" / "demo.md"), overlays="flip.json",
    )
    assert 0.0 <= summary["mean_dice"] <= 1.0 and 0.0 <= summary["threshold_mean_dice"] <= 1.0
    assert len(summary["dice_per_case"]) == 2
    assert set(summary["threshold_dice_per_case"]) == set(summary["dice_per_case"])  # the same held-out cases
    assert summary["dice_per_case"] and summary["mean_inter_slice_similarity"] >= 0.0
    assert (out / "preview.png").stat().st_size > 10_000
    assert (out / "bundle" / "models" / "model.pt").is_file()
    assert list((out / "bundle" / "eval").glob("*_seg.nii.gz"))
    report = (tmp_path / "docs" / "demo.md").read_text()
    assert "| **mean** |" in report and "images/demo_preview.png" in report and "best global HU threshold" in report
    assert "| **total** |" in report and "CPU cores" in report
    assert "`train.json` + `cpu_small.json` + `flip.json`" in report  # the training overlays are stated
    assert summary["cpu_yardstick_s"] > 0 and f"CPU yardstick {summary['cpu_yardstick_s']} s" in report
    assert (tmp_path / "docs" / "images" / "demo_preview.png").is_file()


@pytest.mark.slow
def test_demo_runs_another_target(tmp_path):
    """``--bundle``: the target's own synthetic layout (PanTS subject folders), its label, its output folders."""
    out = tmp_path / "demo"
    summary = run_demo(out=str(out), num_cases=5, num_test=1, shape=(48, 40, 20), num_iterations=2, overrides=TINY,
                       bundle="superior_mesenteric_artery")
    assert (out / "data" / "ImageTr").is_dir() and (out / "data" / "LabelTr").is_dir()
    names = set(summary["dice_per_case"])
    assert names and all(n.endswith("/ct.nii.gz") for n in names)  # the subject keeps cases apart
    assert set(summary["threshold_dice_per_case"]) == names
    assert list((out / "bundle" / "eval").glob("*/*/ct_seg.nii.gz"))  # ImageTr/<subject>/ct_seg.nii.gz
    assert (out / "preview.png").is_file()


def test_demo_names_an_unknown_overlay_before_any_work(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"\['flips.json'\] are not in .*configs; choose from .*'flip.json'"):
        run_demo(out=str(tmp_path / "demo"), overlays="flips.json")
    assert not (tmp_path / "demo").exists()
