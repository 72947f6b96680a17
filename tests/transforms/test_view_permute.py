from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, EnsureChannelFirstd, Invertd, LoadImaged, Orientationd

from t2d_monai.transforms import VIEW_AXES, ViewPermute, ViewPermuted

AFFINE = torch.tensor(
    [[0.8, 0.1, 0.0, -10.0], [0.0, 0.7, 0.2, 5.0], [0.1, 0.0, 2.5, 3.0], [0.0, 0.0, 0.0, 1.0]], dtype=torch.float64
)
EXPECTED_SHAPES = {"axial": (2, 5, 6, 7), "coronal": (2, 5, 7, 6), "sagittal": (2, 6, 7, 5)}


def _volume() -> MetaTensor:
    return MetaTensor(torch.arange(2 * 5 * 6 * 7, dtype=torch.float32).reshape(2, 5, 6, 7), affine=AFFINE)


@pytest.mark.parametrize("view", list(VIEW_AXES))
def test_shape_values_and_world_coordinates(view):
    img = _volume()
    out = ViewPermute(view)(img)
    assert tuple(out.shape) == EXPECTED_SHAPES[view]
    idx = (1, 2, 3)
    old = [0, 0, 0]
    for new_axis, old_axis in enumerate(VIEW_AXES[view]):
        old[old_axis] = idx[new_axis]
    assert out[1, idx[0], idx[1], idx[2]] == img[1, old[0], old[1], old[2]]
    world_new = out.affine @ torch.tensor([*idx, 1.0], dtype=torch.float64)
    world_old = AFFINE @ torch.tensor([*old, 1.0], dtype=torch.float64)
    assert torch.allclose(world_new, world_old)


@pytest.mark.parametrize("view", list(VIEW_AXES))
def test_inverse_round_trip(view):
    img = _volume()
    t = ViewPermute(view)
    out = t(img.clone())
    assert len(out.applied_operations) == 1
    back = t.inverse(out)
    assert torch.equal(back.as_tensor(), img.as_tensor())
    assert torch.allclose(back.affine, AFFINE)
    assert back.applied_operations == []


def test_plain_tensor_and_numpy():
    x = np.random.rand(1, 3, 4, 5).astype(np.float32)
    out = ViewPermute("coronal")(x)
    assert torch.equal(torch.as_tensor(out), torch.as_tensor(x).permute(0, 1, 3, 2))


@pytest.mark.parametrize("view", list(VIEW_AXES))
def test_invertd_pipeline_from_file(tmp_path, view):
    # a non-RAS file (flipped first axis, oblique, anisotropic) so that Orientationd does real work too
    affine = np.array([[-0.8, 0.1, 0.0, 10.0], [0.0, 0.7, 0.0, -5.0], [0.05, 0.0, 2.5, 3.0], [0, 0, 0, 1.0]])
    data = np.random.default_rng(0).random((9, 7, 5)).astype(np.float32)
    path = str(tmp_path / "ct.nii.gz")
    nib.save(nib.Nifti1Image(data, affine), path)
    keys = ["image"]
    pre = Compose(
        [LoadImaged(keys), EnsureChannelFirstd(keys), Orientationd(keys, axcodes="RAS"), ViewPermuted(keys, view)]
    )
    d = pre({"image": path})
    image = d["image"]
    assert image.shape[-1] == {"axial": 5, "coronal": 7, "sagittal": 9}[view]
    # a two-channel "prediction" in the permuted space, carrying the image's metadata (as an inferer returns it)
    pred = MetaTensor(torch.cat([image.as_tensor(), 2 * image.as_tensor()]))
    pred.copy_meta_from(image)
    d["pred"] = pred
    inverted = Invertd(keys="pred", transform=pre, orig_keys="image")(d)["pred"]
    assert tuple(inverted.shape) == (2, 9, 7, 5)
    np.testing.assert_allclose(inverted[1].numpy(), 2 * data, rtol=1e-6)
    np.testing.assert_allclose(inverted.affine.numpy(), affine, atol=1e-6)


def test_dictionary_inverse():
    t = ViewPermuted(["image", "label"], "sagittal")
    d = t({"image": _volume(), "label": _volume()[:1]})
    assert d["label"].shape == (1, 6, 7, 5)
    back = t.inverse(d)
    assert torch.equal(back["label"].as_tensor(), _volume()[:1].as_tensor())


def test_ill_arg():
    with pytest.raises(ValueError):
        ViewPermute("axal")
    with pytest.raises(ValueError, match="channel-first"):
        ViewPermute("axial")(torch.zeros(5, 6, 7))
    with pytest.raises(ValueError, match="channel-first"):
        ViewPermuted("image", "coronal")({"image": torch.zeros(1, 1, 5, 6, 7)})
