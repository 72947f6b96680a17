from __future__ import annotations

import json

import pytest
from monai.data import load_decathlon_datalist

from t2d_monai.data.datalist import find_cases, load_datalists, make_split, save_split, split, split_by_number


@pytest.fixture
def fake_task08(tmp_path):
    """A dataset.json listing 303 labelled cases, like MSD Task08 (files need not exist)."""
    training = [{"image": f"./imagesTr/hepaticvessel_{i:03d}.nii.gz", "label": f"./labelsTr/hepaticvessel_{i:03d}.nii.gz"}
                for i in range(1, 304)]
    meta = {"labels": {"0": "background", "1": "Vessel", "2": "Tumour"}, "numTraining": 303, "training": training,
            "test": ["./imagesTs/hepaticvessel_400.nii.gz"]}
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    return tmp_path


def _ids(items):
    return [c["image"] for c in items]


def test_paper_proportions(fake_task08):
    s = make_split(str(fake_task08), seed=0)
    assert len(s["training"]) + len(s["validation"]) == 228 and len(s["test"]) == 75
    assert len(s["validation"]) == 23
    everything = _ids(s["training"]) + _ids(s["validation"]) + _ids(s["test"])
    assert len(set(everything)) == 303
    assert all(c["image"].startswith("imagesTr/") and c["label"].startswith("labelsTr/") for c in s["training"])


def test_deterministic(fake_task08):
    a, b = make_split(str(fake_task08), seed=5), make_split(str(fake_task08), seed=5)
    assert a == b
    assert _ids(make_split(str(fake_task08), seed=6)["test"]) != _ids(a["test"])


@pytest.mark.parametrize("num_test, num_val, sizes", [(75, 0, (228, 0, 75)), (3, 10, (290, 10, 3)), (None, 228 - 1, (1, 227, 75))])
def test_counts(fake_task08, num_test, num_val, sizes):
    s = make_split(str(fake_task08), num_test=num_test, num_val=num_val)
    assert (len(s["training"]), len(s["validation"]), len(s["test"])) == sizes


def test_saved_split_is_a_datalist(fake_task08, tmp_path):
    s = make_split(str(fake_task08), seed=1)
    path = save_split(s, str(tmp_path / "split.json"))
    val = load_decathlon_datalist(path, True, "validation", base_dir=str(fake_task08))
    assert [v["image"] for v in val] == [str(fake_task08 / c["image"]) for c in s["validation"]]
    lists = load_datalists(str(fake_task08), split_file=path)
    assert lists == load_datalists(str(fake_task08), seed=1)
    assert lists["test"][0]["label"].startswith(str(fake_task08))


def test_small_synthetic_dataset(small_dataset):
    lists = load_datalists(str(small_dataset))
    assert [len(lists[k]) for k in ("training", "validation", "test")] == [1, 1, 1]
    assert all(c["image"].endswith(".nii.gz") for k in lists for c in lists[k])


def test_folder_of_pairs(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for name in ("b.nii.gz", "a.nii.gz", "c.nii"):
        (tmp_path / "images" / name).write_bytes(b"")
        (tmp_path / "labels" / name).write_bytes(b"")
    cases = find_cases(str(tmp_path))
    assert [c["image"] for c in cases] == [str(tmp_path / "images" / n) for n in ("a.nii.gz", "b.nii.gz", "c.nii")]
    (tmp_path / "images" / "d.nii.gz").write_bytes(b"")
    with pytest.raises(ValueError, match="without a label"):
        find_cases(str(tmp_path))


def test_split_command(fake_task08, tmp_path):
    out = tmp_path / "s.json"
    summary = split(str(fake_task08), out=str(out), seed=0, val_fraction=0.0)
    assert "training 228" in summary and "test 75" in summary
    assert json.loads(out.read_text())["seed"] == 0
    with pytest.raises(FileExistsError, match="--overwrite"):
        split(str(fake_task08), out=str(out))
    split(str(fake_task08), out=str(out), seed=1, overwrite=True)
    assert json.loads(out.read_text())["seed"] == 1


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"num_test": 304}, ValueError),
        ({"num_test": -1}, ValueError),
        ({"test_fraction": 1.0}, ValueError),
        ({"val_fraction": -0.1}, ValueError),
        ({"num_test": 300, "num_val": 3}, ValueError),
        ({"seed": 0.5}, ValueError),
    ],
)
def test_ill_arg(fake_task08, kwargs, error):
    with pytest.raises(error):
        make_split(str(fake_task08), **kwargs)


def test_split_by_number(fake_task08):
    """Held-out cases named by number (1 is hepaticvessel_001), in the order given; the rest train, in path order."""
    parts = split_by_number(str(fake_task08), test=[19, 5], validation=[303, 1])
    assert _ids(parts["test"]) == ["imagesTr/hepaticvessel_019.nii.gz", "imagesTr/hepaticvessel_005.nii.gz"]
    assert _ids(parts["validation"]) == ["imagesTr/hepaticvessel_303.nii.gz", "imagesTr/hepaticvessel_001.nii.gz"]
    assert parts["test"][0]["label"] == "labelsTr/hepaticvessel_019.nii.gz"
    assert len(parts["training"]) == 299 and _ids(parts["training"])[:2] == [
        "imagesTr/hepaticvessel_002.nii.gz", "imagesTr/hepaticvessel_003.nii.gz"]


def test_split_by_number_in_a_subject_layout(tmp_path):
    from t2d_monai.data.synthetic_layouts import synth

    synth(str(tmp_path / "ts"), num_cases=3, num_test=0, shape=[16, 16, 8], layout="totalsegmentator")
    parts = split_by_number(str(tmp_path / "ts"), [3], [1], layout="totalsegmentator", label="duodenum")
    assert _ids(parts["test"]) == ["s0003/ct.nii.gz"] and _ids(parts["validation"]) == ["s0001/ct.nii.gz"]
    assert parts["training"] == [{"image": "s0002/ct.nii.gz", "label": "s0002/segmentations/duodenum.nii.gz"}]


@pytest.mark.parametrize(
    "test, validation, match",
    [([304], [1], r"case numbers \[304\] are not cases of .*303 labelled cases"), ([0], [], "numbers \\[0\\]"),
     ([2.5], [], "2.5"), ([4], [4], "given twice")],
)
def test_split_by_number_ill_arg(fake_task08, test, validation, match):
    with pytest.raises(ValueError, match=match):
        split_by_number(str(fake_task08), test, validation)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        find_cases(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="no dataset.json"):
        find_cases(str(tmp_path))
