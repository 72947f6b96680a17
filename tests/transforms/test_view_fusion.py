from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from t2d_monai.transforms import ViewFusion, ViewFusiond, fuse_views

A = torch.tensor([[[[0.9, 0.2, 0.6, 0.5]]]])
B = torch.tensor([[[[0.1, 0.7, 0.6, 0.4]]]])
C = torch.tensor([[[[0.8, 0.7, 0.1, 0.2]]]])


def _onehot(classes, num_classes=3):
    return torch.nn.functional.one_hot(torch.tensor(classes), num_classes).T.float().reshape(num_classes, 1, 1, -1)


@pytest.mark.parametrize(
    "views,method,expected",
    [
        ([A, B, C], "vote", [1.0, 1.0, 1.0, 0.0]),  # 2 of 3 views >= 0.5 in the first three voxels
        ([A, B, C], "mean", [0.6, 1.6 / 3, 1.3 / 3, 1.1 / 3]),
        ([A, B], "vote", [0.0, 0.0, 1.0, 0.0]),  # 1-1 ties give 0
        ([A], "vote", [1.0, 0.0, 1.0, 1.0]),  # threshold is inclusive
    ],
)
def test_binary_cases(views, method, expected):
    out = fuse_views(views, method)
    assert out.shape == (1, 1, 1, 4)
    torch.testing.assert_close(out.flatten(), torch.tensor(expected))


def test_multiclass_vote_is_onehot_majority():
    views = [_onehot([0, 1, 2, 0]), _onehot([1, 1, 2, 2]), _onehot([2, 0, 1, 1])]
    out = fuse_views(views)
    assert out.shape == (3, 1, 1, 4) and torch.all(out.sum(0) == 1)
    assert out.argmax(0).flatten().tolist() == [0, 1, 2, 0]  # 3-way ties go to the lowest class


def test_mapping_transform_dict_and_metatensor():
    affine = torch.diag(torch.tensor([2.0, 1.0, 1.0, 1.0]))
    names = ("pred_axial", "pred_coronal", "pred_sagittal")
    views = {k: MetaTensor(v, affine=affine) for k, v in zip(names, (A, B, C))}
    out = ViewFusion()(views)
    assert isinstance(out, MetaTensor) and torch.equal(out.affine, affine)
    d = ViewFusiond(list(views), output_key="pred", method="mean")({**views, "image": 1})
    torch.testing.assert_close(d["pred"].as_tensor(), (A + B + C) / 3)
    assert d["image"] == 1


def test_ill_arg():
    with pytest.raises(ValueError, match="same shape"):
        fuse_views([A, torch.zeros(1, 1, 1, 5)])
    with pytest.raises(ValueError, match="at least one"):
        fuse_views([])
    with pytest.raises(ValueError):
        ViewFusion(method="max")
