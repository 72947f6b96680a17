from __future__ import annotations

import json
import os

import nibabel as nib
import numpy as np
import pytest
from monai.data import load_decathlon_datalist
from monai.transforms import LoadImaged
from scipy import ndimage

from t2d_monai.data import synthetic
from t2d_monai.data.synthetic import LABELS, generate_case, write_dataset
from t2d_monai.data.synthetic_layouts import synth

SHAPE, SPACING = (64, 64, 32), (0.8, 0.8, 2.5)


@pytest.fixture(scope="module")
def cases():
    return [generate_case(i, seed=3, shape=SHAPE, spacing=SPACING) for i in range(2)]


def test_layout(small_dataset):
    with open(small_dataset / "dataset.json") as f:
        meta = json.load(f)
    assert meta["labels"] == LABELS == {"0": "background", "1": "Vessel", "2": "Tumour"}
    assert meta["modality"] == {"0": "CT"}
    assert (meta["numTraining"], meta["numTest"]) == (3, 1)
    for key in ("name", "description", "reference", "licence", "release", "tensorImageSize"):
        assert key in meta
    names = [f"hepaticvessel_{i:03d}.nii.gz" for i in (1, 2, 3)]
    assert sorted(os.listdir(small_dataset / "imagesTr")) == names
    assert sorted(os.listdir(small_dataset / "labelsTr")) == names
    assert os.listdir(small_dataset / "imagesTs") == ["hepaticvessel_004.nii.gz"]
    train = load_decathlon_datalist(str(small_dataset / "dataset.json"), True, "training")
    test = load_decathlon_datalist(str(small_dataset / "dataset.json"), False, "test")
    assert len(train) == 3 and len(test) == 1 and all(os.path.isfile(c["image"]) for c in train + test)
    data = LoadImaged(["image", "label"])(train[0])
    assert data["image"].shape == data["label"].shape == SHAPE
    assert np.allclose(data["image"].pixdim[:3], SPACING)
    label = np.asarray(data["label"])
    assert set(np.unique(label)) <= {0, 1, 2} and (label == 1).any()


def test_dtypes_affine_spacing(small_dataset):
    img = nib.load(small_dataset / "imagesTr" / "hepaticvessel_001.nii.gz")
    lab = nib.load(small_dataset / "labelsTr" / "hepaticvessel_001.nii.gz")
    assert img.get_data_dtype() == np.int16 and lab.get_data_dtype() == np.uint8
    assert np.allclose(img.header.get_zooms(), SPACING)
    assert np.allclose(img.affine, lab.affine)
    assert np.allclose(np.diag(img.affine)[:3], SPACING)
    assert nib.aff2axcodes(img.affine) == ("R", "A", "S")
    assert int(img.header["sform_code"]) == 1 and int(img.header["qform_code"]) == 1
    data = np.asanyarray(img.dataobj)
    assert data.min() >= -1024 and data.max() <= 3071
    assert (data[0, 0, :] < -900).all()  # air in the corner, outside the body


def test_same_seed_same_bytes(small_dataset, tmp_path):
    write_dataset(str(tmp_path / "again"), num_cases=3, num_test=1, seed=0, shape=SHAPE, spacing=SPACING)
    for sub, name in [("imagesTr", "hepaticvessel_002.nii.gz"), ("labelsTr", "hepaticvessel_002.nii.gz"),
                      ("imagesTs", "hepaticvessel_004.nii.gz"), (".", "dataset.json")]:
        a = (small_dataset / sub / name).read_bytes()
        assert a == (tmp_path / "again" / sub / name).read_bytes(), name


def test_case_depends_on_seed_and_index_only(cases):
    again = generate_case(1, seed=3, shape=SHAPE, spacing=SPACING)
    assert np.array_equal(again["image"], cases[1]["image"])
    assert not np.array_equal(cases[0]["image"], cases[1]["image"])
    other = generate_case(1, seed=4, shape=SHAPE, spacing=SPACING)
    assert not np.array_equal(other["image"], cases[1]["image"])


def test_contents(cases):
    for case in cases:
        image, label = case["image"], case["label"]
        assert image.dtype == np.int16 and label.dtype == np.uint8 and image.shape == SHAPE
        vessel = label == 1
        assert vessel.sum() > 100
        assert np.median(image[vessel]) > np.median(image[(label == 0) & (image > -200)]) + 30
        assert np.median(image[label == 2]) < np.median(image[vessel]) if (label == 2).any() else True


def test_vessels_thin(cases):
    for case in cases:
        vessel = case["label"] == 1
        dist = ndimage.distance_transform_edt(~case["centerline"])  # in voxels
        assert (dist[vessel] <= 3).mean() > 0.9  # the rest: tubes whose centerline runs just outside the grid


def test_vessels_mostly_through_plane(cases):
    """A vessel voxel's connected component within its axial slice is small (a dot, not a line)."""
    for case in cases:
        vessel = case["label"] == 1
        sizes = []
        for z in range(vessel.shape[2]):
            comp, n = ndimage.label(vessel[:, :, z], np.ones((3, 3)))
            if n:
                sizes.append(np.bincount(comp.ravel())[comp[vessel[:, :, z]]])
        sizes = np.concatenate(sizes)
        assert np.median(sizes) <= 60 and np.percentile(sizes, 90) <= 120
        # and the vessel tree continues through many slices
        assert np.flatnonzero(vessel.any(axis=(0, 1))).size >= SHAPE[2] // 2


def test_distractors_short_and_comparable(cases):
    for case in cases:
        distractor, vessel = case["distractor"], case["label"] == 1
        assert 0.5 < distractor.sum() / vessel.sum() < 2.0
        assert not (distractor & vessel).any()
        comp, _ = ndimage.label(distractor, np.ones((3, 3, 3)))
        spans = [box[2].stop - box[2].start for box in ndimage.find_objects(comp)]
        assert max(spans) <= 4


def test_implausible_cases_are_redrawn(monkeypatch):
    calls = []
    real = synthetic._plausible

    def first_fails(label, shape):
        calls.append(1)
        return len(calls) > 1 and real(label, shape)

    monkeypatch.setattr(synthetic, "_plausible", first_fails)
    case = generate_case(0, seed=0, shape=SHAPE, spacing=SPACING)
    assert case["attempt"] >= 1
    monkeypatch.setattr(synthetic, "_plausible", lambda label, shape: False)
    with pytest.raises(RuntimeError, match="no plausible case"):
        generate_case(0, seed=0, shape=SHAPE, spacing=SPACING, max_attempts=2)
    assert not real(np.zeros(SHAPE, np.uint8), SHAPE)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shape": (0, 64, 32)}, "shape"),
        ({"shape": (64, -1, 32)}, "shape"),
        ({"shape": (64, 64)}, "shape"),
        ({"shape": "64,64,x"}, "shape"),
        ({"spacing": (0.8, 0.0, 2.5)}, "spacing"),
        ({"num_cases": 0}, "num_cases"),
        ({"num_test": -1}, "num_test"),
        ({"radius_range": (2.0, 1.0)}, "radius_range"),
        ({"vessel_density": 0}, "vessel_density"),
    ],
)
def test_ill_arg(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        write_dataset(str(tmp_path / "out"), **{"shape": SHAPE, **kwargs})
    assert not (tmp_path / "out").exists()


def test_out_folder_with_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds files"):
        write_dataset(str(tmp_path), num_cases=1, num_test=0, shape=SHAPE, overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        write_dataset(str(tmp_path / "file"), num_cases=1, shape=SHAPE)


def test_no_overwrite(tmp_path):
    out = tmp_path / "ds"
    synth(str(out), num_cases=2, num_test=0, shape=SHAPE, seed=1)
    before = (out / "labelsTr" / "hepaticvessel_002.nii.gz").read_bytes()
    with pytest.raises(FileExistsError, match="--overwrite"):
        synth(str(out), num_cases=1, num_test=0, shape=SHAPE, seed=2)
    assert (out / "labelsTr" / "hepaticvessel_002.nii.gz").read_bytes() == before
    synth(str(out), num_cases=1, num_test=0, shape=SHAPE, seed=2, overwrite=True)
    assert os.listdir(out / "labelsTr") == ["hepaticvessel_001.nii.gz"]  # no stale case left
    assert json.loads((out / "dataset.json").read_text())["numTraining"] == 1
    assert not [f for f in os.listdir(out) if f.startswith(".tmp")]


def test_foreign_dataset_json_never_overwritten(tmp_path):
    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "dataset.json").write_text(json.dumps({"name": "HepaticVessel"}))
    with pytest.raises(ValueError, match="not written by synth"):
        write_dataset(str(tmp_path), num_cases=1, shape=SHAPE, overwrite=True)
