from __future__ import annotations

import os

import nibabel as nib
import numpy as np
import pytest

from t2d_monai.visualize import preview, save_preview

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def volume():
    rng = np.random.default_rng(0)
    image = rng.normal(100, 20, (40, 36, 12)).astype(np.float32)
    label = np.zeros(image.shape, np.uint8)
    label[18:21, 16:19, 1:11] = 1
    label[5:9, 5:9, 4:6] = 2
    image[label == 1] = 220
    return image, label


@pytest.mark.parametrize("with_prediction", [True, False])
def test_save_preview(tmp_path, volume, with_prediction):
    image, label = volume
    pred = (image > 200)[None] if with_prediction else None  # a leading channel is accepted
    path = save_preview(image, label, pred, str(tmp_path / "sub" / "p.png"), spacing=(0.8, 0.8, 2.5), num_slices=3)
    data = open(path, "rb").read()
    assert data[:8] == PNG and len(data) > 10_000
    assert os.listdir(tmp_path / "sub") == ["p.png"]  # no temporary file left


def test_preview_command(tmp_path, volume):
    image, label = volume
    affine = np.diag([0.8, 0.8, 2.5, 1.0])
    nib.save(nib.Nifti1Image(image.astype(np.int16), affine), tmp_path / "i.nii.gz")
    nib.save(nib.Nifti1Image(label, affine), tmp_path / "l.nii.gz")
    out = preview(str(tmp_path / "i.nii.gz"), str(tmp_path / "l.nii.gz"), str(tmp_path / "l.nii.gz"),
                  out=str(tmp_path / "c.png"))
    assert open(out, "rb").read(8) == PNG
    with pytest.raises(FileNotFoundError, match="no such file"):
        preview(str(tmp_path / "missing.nii.gz"), str(tmp_path / "l.nii.gz"))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"label": np.zeros((40, 36, 11))}, "shape"),
        ({"prediction": np.zeros((40, 36))}, "3D"),
        ({"image": np.zeros((40, 36))}, "3D"),
        ({"spacing": (1.0, 0.0, 1.0)}, "spacing"),
        ({"window": (40, 0)}, "window"),
        ({"num_slices": 0}, "num_slices"),
    ],
)
def test_ill_arg(tmp_path, volume, kwargs, match):
    image, label = volume
    args = {"image": image, "label": label, "prediction": None, "path": str(tmp_path / "x.png"), **kwargs}
    with pytest.raises(ValueError, match=match):
        save_preview(**args)
    assert not (tmp_path / "x.png").exists()
