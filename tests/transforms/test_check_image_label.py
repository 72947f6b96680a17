from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from t2d_monai.transforms.check_image_label import CheckImageLabeld


def _vol(*shape, name="case.nii.gz"):
    return MetaTensor(torch.zeros(shape), meta={"filename_or_obj": name})


def test_accepts_matching_3d_volumes():
    data = {"image": _vol(8, 9, 4), "label": _vol(8, 9, 4), "other": 1}
    out = CheckImageLabeld(["image", "label"])(data)
    assert out["image"] is data["image"] and out["other"] == 1
    CheckImageLabeld(["image", "label"])({"image": _vol(8, 9, 4, 1), "label": _vol(8, 9, 4)})


@pytest.mark.parametrize(
    "image, label, match",
    [
        (_vol(8, 9, name="flat.png"), None, r"'flat.png' is a 2D image of shape \(8, 9\)"),
        (_vol(8, 9, 4, 3, name="phases.nii.gz"), None, r"'phases.nii.gz' is a 4D image"),
        (_vol(8, 9, 4, name="img.nii.gz"), _vol(8, 9, 5, name="lab.nii.gz"),
         r"label 'lab.nii.gz' has shape \(8, 9, 5\) but image 'img.nii.gz' has shape \(8, 9, 4\)"),
    ],
)
def test_ill_input(image, label, match):
    data = {"image": image} if label is None else {"image": image, "label": label}
    with pytest.raises(ValueError, match=match):
        CheckImageLabeld(["image", "label"], allow_missing_keys=True)(data)
