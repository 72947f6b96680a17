from __future__ import annotations

import pytest
import torch

from t2d_monai.benchmarks.resolution import stride_ceiling_dice


def test_grid_aligned_block_survives():
    label = torch.zeros(16, 16, 6)
    label[4:12, 8:16, 1:5] = 1
    assert stride_ceiling_dice(label, "axial", 4) > 0.98  # only the block's corners blur below every threshold
    assert stride_ceiling_dice(label[None], "axial", 1) == pytest.approx(1.0)


def test_thin_line_along_the_slicing_axis_is_lost_in_that_view_only():
    """A one-voxel line along Z: a dot in each axial slice (1/16 of a cell), a line in coronal slices."""
    label = torch.zeros(16, 16, 12)
    label[5, 9, :] = 1
    assert stride_ceiling_dice(label, "axial", 4) == 0.0
    coronal = stride_ceiling_dice(label, "coronal", 4)
    assert 0.2 < coronal < 1.0
    assert stride_ceiling_dice(label, "coronal", 1) == pytest.approx(1.0)


def test_empty_label_and_ill_arg():
    assert stride_ceiling_dice(torch.zeros(4, 4, 4), "sagittal") == 1.0
    with pytest.raises(ValueError, match="view"):
        stride_ceiling_dice(torch.zeros(4, 4, 4), "oblique")
    with pytest.raises(ValueError, match="stride"):
        stride_ceiling_dice(torch.zeros(4, 4, 4), "axial", 0)
    with pytest.raises(ValueError, match="label must be"):
        stride_ceiling_dice(torch.zeros(2, 4, 4, 4), "axial")
