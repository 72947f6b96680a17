from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from t2d_monai.transforms import ReplaceNonFinited


def test_replaces_nan_and_inf_and_names_file_and_count(caplog):
    img = MetaTensor(torch.zeros(1, 4, 4, 3), meta={"filename_or_obj": "ct_nan.nii.gz"})
    img[0, :2, :2, 1] = float("nan")
    img[0, 3, 3, 2] = float("inf")
    img[0, 3, 3, 0] = float("-inf")
    keep = img.clone()
    with caplog.at_level(logging.WARNING, logger="t2d_monai.transforms.non_finite"):
        out = ReplaceNonFinited("image", value=-100.0)({"image": img, "label": 1})
    assert torch.isfinite(out["image"]).all() and out["label"] == 1
    assert int((out["image"] == -100.0).sum()) == 6
    assert isinstance(out["image"], MetaTensor) and out["image"].meta["filename_or_obj"] == "ct_nan.nii.gz"
    torch.testing.assert_close(img, keep, equal_nan=True)  # the input is not modified
    assert "'ct_nan.nii.gz': 6 non-finite voxel(s)" in caplog.text and "replaced by -100" in caplog.text


def test_finite_and_integer_images_pass_untouched(caplog):
    finite, integer = torch.rand(1, 3, 3, 2), torch.ones(1, 3, 3, 2, dtype=torch.int16)
    with caplog.at_level(logging.WARNING):
        out = ReplaceNonFinited(["image", "other"], value=0.0)({"image": finite, "other": integer})
    assert out["image"] is finite and out["other"] is integer and caplog.text == ""


def test_numpy_image():
    out = ReplaceNonFinited("image", value=-1.0)({"image": np.array([[1.0, np.nan]])})["image"]
    np.testing.assert_array_equal(out, [[1.0, -1.0]])


def test_all_non_finite_is_refused():
    img = MetaTensor(torch.full((1, 2, 2, 2), float("nan")), meta={"filename_or_obj": "empty.nii.gz"})
    with pytest.raises(ValueError, match="'empty.nii.gz': every voxel \\(8\\) is NaN or infinite"):
        ReplaceNonFinited("image", value=0.0)({"image": img})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "0", True])
def test_ill_arg(value):
    with pytest.raises(ValueError, match="finite number"):
        ReplaceNonFinited("image", value=value)
