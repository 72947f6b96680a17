"""Synthetic stand-ins in every data set layout, read back by the layout readers."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from t2d_monai.data import find_cases, generate_case, make_split, synthetic
from t2d_monai.data.organ import add_organ
from t2d_monai.data.synthetic_layouts import LAYOUT_CLASSES, synth, write_layout_dataset

SHAPE = [48, 40, 20]


@pytest.mark.parametrize("layout", sorted(LAYOUT_CLASSES))
def test_subject_layouts_are_read_back_for_every_class(tmp_path, layout):
    out = Path(synth(out=str(tmp_path / layout), num_cases=3, num_test=1, seed=0, shape=SHAPE, layout=layout))
    reference = generate_case(0, 0, SHAPE)
    for cls, kind in LAYOUT_CLASSES[layout].items():
        cases = find_cases(str(out), layout, cls)
        assert len(cases) == 3
        image, mask = nib.load(cases[0]["image"]), nib.load(cases[0]["label"])
        assert image.shape == mask.shape == tuple(SHAPE)
        np.testing.assert_allclose(image.affine, reference["affine"])
        m = np.asarray(mask.dataobj)
        assert set(np.unique(m)) <= {0, 1} and m.sum() > 0
        if kind == "vessel":  # the generator's vessel tree, the same case in every layout
            np.testing.assert_array_equal(m, reference["label"] == 1)
        else:  # the organ is brighter than the soft tissue around it
            ct = np.asarray(image.dataobj).astype(float)
            ring = ndimage.binary_dilation(m > 0, iterations=3) & (m == 0) & (reference["label"] == 0)
            assert ring.sum() > 0 and ct[m > 0].mean() > 80
            assert ct[m > 0].mean() > ct[ring].mean() + 30


def test_totalsegmentator_split_file_marks_the_test_cases(tmp_path):
    out = synth(out=str(tmp_path / "ts"), num_cases=4, num_test=1, seed=0, shape=SHAPE, layout="totalsegmentator")
    assert (Path(out) / "meta.csv").read_text().splitlines() == [
        "image_id;split", "s0001;train", "s0002;train", "s0003;train", "s0004;test"]
    split = make_split(out, num_val=1, layout="totalsegmentator", label="duodenum")
    assert [Path(c["image"]).parent.name for c in split["test"]] == ["s0004"]
    assert len(split["validation"]) == 1 and len(split["training"]) == 2


def test_msd_pancreas_labels_organ_and_tumour_inside_it(tmp_path):
    out = Path(synth(out=str(tmp_path / "p"), num_cases=2, num_test=0, seed=0, shape=SHAPE, layout="msd_pancreas"))
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["labels"] == {"0": "background", "1": "pancreas", "2": "cancer"}
    cases = find_cases(str(out))
    assert len(cases) == 2
    label = np.asarray(nib.load(cases[0]["label"]).dataobj)
    assert set(np.unique(label)) <= {0, 1, 2} and (label == 1).sum() > 0


def test_never_overwrites_foreign_folders_and_asks_before_replacing(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not written by synth"):
        write_layout_dataset(str(foreign), "pants", num_cases=2, num_test=0, shape=SHAPE)
    assert (foreign / "notes.txt").read_text() == "keep me"
    out = write_layout_dataset(str(tmp_path / "aa"), "abdomenatlas", num_cases=2, num_test=0, shape=SHAPE)
    with pytest.raises(FileExistsError, match="--overwrite"):
        write_layout_dataset(out, "abdomenatlas", num_cases=2, num_test=0, shape=SHAPE)
    write_layout_dataset(out, "abdomenatlas", num_cases=2, num_test=0, shape=SHAPE, overwrite=True)
    with pytest.raises(ValueError, match="unknown layout 'nnunet'"):
        write_layout_dataset(str(tmp_path / "x"), "nnunet")


def test_add_organ_is_deterministic_and_leaves_its_input_alone():
    image = np.full((48, 40, 20), 30, np.int16)
    before = image.copy()
    a, mask_a = add_organ(image, (0.8, 0.8, 2.5), np.random.default_rng(3))
    b, mask_b = add_organ(image, (0.8, 0.8, 2.5), np.random.default_rng(3))
    np.testing.assert_array_equal(image, before)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(mask_a, mask_b)
    assert a.dtype == image.dtype and 0 < mask_a.sum() < mask_a.size
    assert a[mask_a].mean() >= 80 and a[~mask_a].mean() < 40
    with pytest.raises(ValueError, match="expected an"):
        add_organ(image[0], (0.8, 0.8), np.random.default_rng(0))


def test_every_entry_point_shares_the_generator_defaults():
    """``synth``, both writers and ``generate_case`` take their defaults from the module's constants."""
    expected = {
        "shape": synthetic.DEFAULT_SHAPE,
        "spacing": synthetic.DEFAULT_SPACING,
        "vessel_density": synthetic.DEFAULT_VESSEL_DENSITY,
        "radius_range": synthetic.DEFAULT_RADIUS_RANGE,
    }
    for entry in (synth, write_layout_dataset, synthetic.write_dataset, generate_case):
        parameters = inspect.signature(entry).parameters
        assert {name: parameters[name].default for name in expected} == expected, entry.__name__
