from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from t2d_monai.transforms import RandThickSlabd, ThickSlab, ThickSlabd, pad_slices, slice_padding


def _volume(depth: int) -> torch.Tensor:
    return torch.arange(4 * 3 * depth, dtype=torch.float32).reshape(1, 4, 3, depth)


@pytest.mark.parametrize("num_slices,start,depth", [(1, 0, 5), (3, 2, 5), (5, 0, 5), (4, 6, 10)])
def test_slab_values(num_slices, start, depth):
    img = _volume(depth)
    slab = ThickSlab(num_slices, start)(img)
    assert slab.shape == (num_slices, 4, 3)
    for s in range(num_slices):
        assert torch.equal(slab[s], img[0, :, :, start + s])


@pytest.mark.parametrize("mode", ["edge", "constant", "reflect"])
def test_short_volume_padding(mode):
    img = _volume(2)  # 2 slices, slab of 5 -> 1 before, 2 after
    assert slice_padding(2, 5) == (1, 2)
    slab = ThickSlab(5, pad_mode=mode)(img)
    first, last = img[0, ..., 0], img[0, ..., 1]
    fill = {"edge": (first, last, last), "constant": (torch.zeros_like(first),) * 3,
            "reflect": (last, first, last)}[mode]  # reflect of [0, 1]: 1 | 0 1 | 0 1
    for got, want in zip(slab[[0, 3, 4]], fill):
        assert torch.equal(got, want)
    assert torch.equal(slab[1], first) and torch.equal(slab[2], last)


@pytest.mark.parametrize("depth", [2, 3, 5])
@pytest.mark.parametrize("before,after", [(0, 0), (1, 2), (4, 4), (9, 7)])
def test_reflect_padding_mirrors_at_the_end_slices_as_numpy(depth, before, after):
    """``..., 2, 1, 0, 1, 2, ...``: the end slice is not repeated, and pads longer than the volume fold back."""
    img = torch.arange(depth)
    want = np.pad(np.arange(depth), (before, after), mode="reflect")
    assert pad_slices(img, before, after, "reflect").tolist() == want.tolist()


def test_reflect_padding_of_one_slice_repeats_it():
    assert pad_slices(torch.tensor([[7.0]]), 2, 1, "reflect").tolist() == [[7.0, 7.0, 7.0, 7.0]]


def test_pad_slices_keeps_integer_labels():
    label = torch.tensor([[[[0, 2]]]], dtype=torch.uint8)
    assert pad_slices(label, 2, 1, "edge").tolist() == [[[[0, 0, 0, 2, 2]]]]


def test_metatensor_affine_moves_to_slab():
    affine = torch.diag(torch.tensor([1.0, 1.0, 2.5, 1.0], dtype=torch.float64))
    affine[2, 3] = 7.0
    slab = ThickSlab(3, start=4)(MetaTensor(_volume(10), affine=affine))
    assert isinstance(slab, MetaTensor)
    assert slab.affine[2, 3] == pytest.approx(7.0 + 4 * 2.5)
    short = ThickSlab(4)(MetaTensor(_volume(2), affine=affine))  # 1 slice padded in front
    assert short.affine[2, 3] == pytest.approx(7.0 - 2.5)


def test_dictionary_version():
    img = _volume(8)
    d = ThickSlabd(["image", "label"], num_slices=3, start=5)({"image": img, "label": img > 20, "id": 1})
    assert torch.equal(d["image"], img[0, ..., 5:8].permute(2, 0, 1))
    assert d["label"].dtype == torch.bool and d["label"].shape == (3, 4, 3) and d["id"] == 1


def _label(depth: int, fg_slices) -> torch.Tensor:
    label = torch.zeros(1, 4, 3, depth)
    for s in fg_slices:
        label[0, 1, 1, s] = 1
    return label


def _centres(samples, num_slices):
    # the image holds each slice's index, so the slab's centre slice gives the sampled centre
    return [int(s["image"][num_slices // 2, 0, 0]) for s in samples]


def _indexed(depth):
    return torch.arange(depth, dtype=torch.float32).expand(1, 4, 3, depth).clone()


@pytest.mark.parametrize("pos,neg,want_fg", [(1, 0, True), (0, 1, False)])
def test_pos_neg_centres(pos, neg, want_fg):
    fg = [10, 11, 12]
    t = RandThickSlabd(["image", "label"], "label", num_slices=3, num_samples=20, pos=pos, neg=neg)
    t.set_random_state(1)
    samples = t({"image": _indexed(30), "label": _label(30, fg), "meta": {"a": [1]}})
    assert len(samples) == 20
    for s in samples:
        assert s["image"].shape == (3, 4, 3) and s["label"].shape == (3, 4, 3)
    assert all((c in fg) == want_fg for c in _centres(samples, 3))
    assert samples[0]["meta"] is not samples[1]["meta"]  # deep copies of the other items


def test_ratio_and_reproducible():
    t = RandThickSlabd(["image", "label"], "label", num_slices=5, num_samples=400, pos=1, neg=3)
    data = {"image": _indexed(60), "label": _label(60, range(20, 30))}
    t.set_random_state(0)
    centres = _centres(t(data), 5)
    share = sum(20 <= c < 30 for c in centres) / len(centres)
    assert 0.17 < share < 0.33  # 1 / (1 + 3) = 0.25
    t.set_random_state(0)
    assert _centres(t(data), 5) == centres


def test_edge_centre_shifted_inwards():
    t = RandThickSlabd(["image", "label"], "label", num_slices=5, num_samples=5, pos=1, neg=0)
    t.set_random_state(0)
    for s in t({"image": _indexed(12), "label": _label(12, [0])}):
        assert s["image"][:, 0, 0].tolist() == [0, 1, 2, 3, 4]


def test_empty_label_warns_and_samples_uniformly():
    t = RandThickSlabd(["image", "label"], "label", num_slices=3, num_samples=50)
    t.set_random_state(0)
    with pytest.warns(UserWarning, match="no foreground"):
        samples = t({"image": _indexed(20), "label": _label(20, [])})
    assert len(set(_centres(samples, 3))) > 5


def test_short_volume_is_padded_not_rejected():
    t = RandThickSlabd(["image", "label"], "label", num_slices=7, num_samples=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        samples = t({"image": _indexed(4), "label": _label(4, [])})
    assert [s["image"][:, 0, 0].tolist() for s in samples] == [[0, 0, 1, 2, 3, 3, 3]] * 3


def test_ill_arg():
    with pytest.raises(ValueError, match="num_slices"):
        ThickSlab(0)
    with pytest.raises(ValueError, match="start"):
        ThickSlab(3, start=-1)
    with pytest.raises(ValueError):
        ThickSlab(3, pad_mode="wrap")
    with pytest.raises(ValueError, match="does not fit"):
        ThickSlab(3, start=3)(_volume(5))
    with pytest.raises(ValueError, match=r"\(1, H, W, D\)"):
        ThickSlab(3)(torch.zeros(2, 4, 4, 5))
    with pytest.raises(ValueError, match="num_samples"):
        RandThickSlabd("image", "label", 3, num_samples=0)
    with pytest.raises(ValueError, match="pos"):
        RandThickSlabd("image", "label", 3, pos=0, neg=0)
    with pytest.raises(KeyError, match="label"):
        RandThickSlabd("image", "label", 3)({"image": _volume(5)})
