from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import AsDiscrete

from t2d_monai.transforms import MergeTargets, MergeTargetsd, merge_targets, target_legend

#: three targets over six voxels (1, 1, 6): the comments give what each voxel checks
P = torch.tensor([[[0.9, 0.2, 0.6, 0.7, 0.4, 0.5]]])
Q = torch.tensor([[[0.6, 0.3, 0.8, 0.7, 0.4, 0.2]]])
R = torch.tensor([[[0.1, 0.1, 0.9, 0.9, 0.4, float("nan")]]])


@pytest.mark.parametrize(
    "maps, thresholds, expected",
    [
        # P wins by confidence | nothing above | R largest | Q/P tie, R largest | all below | P at its threshold
        ([P, Q, R], 0.5, [1, 0, 3, 3, 0, 1]),
        # R's threshold above its values: it never wins; P and Q tie at 0.7 -> P (given first)
        ([P, Q, R], [0.5, 0.5, 0.95], [1, 0, 2, 1, 0, 1]),
        # the same tie, Q given first -> Q
        ([Q, P], 0.5, [2, 0, 1, 1, 0, 2]),
        # a low threshold lets the 0.4s in: three-way tie -> the first target
        ([P, Q, R], [0.3, 0.3, 0.3], [1, 2, 3, 3, 1, 1]),
    ],
)
def test_largest_confidence_above_threshold(maps, thresholds, expected):
    out = merge_targets(maps, [f"t{i}" for i in range(len(maps))], thresholds)
    assert out.dtype == torch.uint8 and out.shape == P.shape
    assert out.flatten().tolist() == expected


def test_single_target_equals_the_bundle_threshold():
    rng = np.random.default_rng(0)
    prob = rng.random((8, 6, 5)).astype(np.float32)
    prob[0, 0, :3] = [0.5, np.nextafter(np.float32(0.5), np.float32(0)), 0.25]  # exactly at / just below 0.5
    for threshold in (0.5, 0.25, 0.9):
        merged = merge_targets([prob], ["vessel"], threshold)
        own = AsDiscrete(threshold=threshold)(torch.from_numpy(prob)[None])[0]  # what the bundle's AsDiscreted does
        assert isinstance(merged, np.ndarray) and merged.dtype == np.uint8
        np.testing.assert_array_equal(merged, own.numpy().astype(np.uint8))


def test_mapping_order_thresholds_by_name_and_numpy_dtype():
    maps = {"b": Q.numpy(), "a": P.numpy()}  # the mapping's order is the target order: b first
    out = merge_targets(maps, thresholds={"a": 0.5, "b": 0.5}, dtype=np.int16)
    assert isinstance(out, np.ndarray) and out.dtype == np.int16
    assert out.flatten().tolist() == [2, 0, 1, 1, 0, 2]
    assert target_legend(list(maps)) == {0: "background", 1: "b", 2: "a"}


def test_transforms_keep_metadata():
    affine = torch.diag(torch.tensor([0.8, 0.8, 2.5, 1.0]))
    merge = MergeTargets(["p", "q"], [0.5, 0.5])
    assert merge.legend == {0: "background", 1: "p", 2: "q"}
    out = merge([MetaTensor(P, affine=affine), Q])
    assert isinstance(out, MetaTensor) and torch.equal(out.affine, affine)
    d = MergeTargetsd(["pred_p", "pred_q"], names=["p", "q"], output_key="label")(
        {"pred_p": P, "pred_q": Q, "image": 1}
    )
    assert d["label"].flatten().tolist() == [1, 0, 2, 1, 0, 1] and d["image"] == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"probabilities": [P, torch.zeros(1, 1, 5)], "names": ["liver", "spleen"]},
         r"target 'liver' has \(1, 1, 6\), target 'spleen' has \(1, 1, 5\)"),
        ({"probabilities": [], "names": []}, "no probability map"),
        ({"probabilities": [P, Q], "names": ["a", "a"]}, r"\['a'\] are given more than once"),
        ({"probabilities": [P, Q], "names": ["a", "b"], "thresholds": [0.5]}, "1 threshold.*2 target"),
        ({"probabilities": {"a": P, "b": Q}, "thresholds": {"a": 0.5}}, r"no threshold for target\(s\) \['b'\]"),
        ({"probabilities": [P, Q], "names": ["a", "b"], "thresholds": [0.5, 1.0]},
         "target 'b' is 1.0.*between 0 and 1"),
        ({"probabilities": [P], "names": ["a"], "thresholds": 0.0}, "strictly between 0 and 1"),
        ({"probabilities": [P], "names": ["a"], "thresholds": float("nan")}, "strictly between 0 and 1"),
        ({"probabilities": [P] * 256, "names": [f"t{i}" for i in range(256)]}, "256 targets do not fit.*uint8"),
        ({"probabilities": [P, Q], "names": ["a"]}, "2 probability map.*1 name"),
        ({"probabilities": [P, Q]}, "names are required"),
        ({"probabilities": [P], "names": ["background"]}, "not allowed"),
        ({"probabilities": [P], "names": ["a"], "dtype": torch.float32}, "not an integer type"),
    ],
)
def test_ill_arg(kwargs, match):
    with pytest.raises(ValueError, match=match):
        merge_targets(**kwargs)


def test_ill_arg_at_construction():
    with pytest.raises(ValueError, match="more than once"):
        MergeTargets(["a", "a"])
    with pytest.raises(ValueError, match="between 0 and 1"):
        MergeTargetsd(["pred_a"], thresholds=1.5)
