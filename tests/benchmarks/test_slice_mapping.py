from __future__ import annotations

import csv

import pytest
import torch

from t2d_monai.benchmarks.slice_mapping import SLICE_MAPPING_VARIANTS, slice_mapping, toy_windows


def test_toy_windows_mask_is_each_slice_thresholded():
    x, y = toy_windows(2, 5, 16, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (2, 5, 16, 16)
    torch.testing.assert_close(y, (x > 1.0).float())
    assert 0.02 < float(y.mean()) < 0.4  # the masks are neither empty nor everything
    # independent slices: neighbouring slices' masks differ
    assert float((y[:, 1:] != y[:, :-1]).float().mean()) > 0.05


def test_runs_every_variant_and_writes_the_table(tmp_path):
    rows = slice_mapping(out_dir=str(tmp_path), num_slices=4, iterations=2, decoder_channels=8, size=16,
                         eval_windows=2)
    assert [r["variant"] for r in rows] == list(SLICE_MAPPING_VARIANTS)
    assert [r["slices"] for r in rows] == [1, 4, 4, 4]
    for row in rows:
        assert 0.0 <= row["worst_position_dice"] <= row["dice"] <= 1.0 and row["parameters"] > 0
    with open(tmp_path / "slice_mapping.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
    assert "ESM + SSA" in (tmp_path / "slice_mapping.md").read_text()
    with pytest.raises(ValueError, match="iterations"):
        slice_mapping(out_dir=str(tmp_path), iterations=0)
