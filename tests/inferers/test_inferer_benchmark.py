from __future__ import annotations

import csv

import pytest

from t2d_monai.benchmarks.inferers import inferer_benchmark, scaled_patch


def test_scaled_patch_matches_the_paper():
    assert scaled_patch((512, 512, 394)) == (128, 128, 64)
    assert scaled_patch((256, 256, 96)) == (64, 64, 16)
    assert scaled_patch((20, 20, 6)) == (8, 8, 6)


def test_runs_with_a_stand_in_and_writes_results(tmp_path, stand_in_esm):
    def factory(in_slices, fusion, attention, backbone):
        return stand_in_esm(in_slices=in_slices, group_size=min(3, in_slices))

    rows = inferer_benchmark(
        out_dir=str(tmp_path),
        size=(16, 12, 9),
        num_slices=5,
        batch_size=2,
        network_factory=factory,
        unet_channels=(4, 8),
    )
    assert [r["method"] for r in rows][0] == "3D sliding window" and rows[0]["time_vs_3d"] == 1.0
    with open(tmp_path / "inferer_benchmark.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
    text = (tmp_path / "inferer_benchmark.md").read_text()
    assert "max |cached - uncached|" in text and "thick-slice, f1 cache" in text


def test_ill_arg(tmp_path):
    with pytest.raises(ValueError, match="size"):
        inferer_benchmark(out_dir=str(tmp_path), size=(8, 8))
    with pytest.raises(ValueError, match="network_factory"):
        inferer_benchmark(out_dir=str(tmp_path), size=(8, 8, 8), network_factory="nomodule")
