"""The subject-folder layouts (TotalSegmentator, PanTS, AbdomenAtlas) on hand-made folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from t2d_monai.data import LAYOUTS, SubjectLayout, find_cases, find_subject_cases, load_datalists, make_split
from t2d_monai.data.layouts import read_layout_split


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def _subject_folders(root: Path, layout: str, subjects: list[str], classes=("duodenum", "pancreas")) -> Path:
    spec = LAYOUTS[layout]
    for s in subjects:
        _touch(root / spec.image.format(subject=s))
        for c in classes:
            _touch(root / spec.label.format(subject=s, label=c))
    return root


@pytest.mark.parametrize("layout,subjects", [
    ("totalsegmentator", ["s0001", "s0002", "s0003"]),
    ("pants", ["PanTS_00000001", "PanTS_00000002"]),
    ("abdomenatlas", ["BDMAP_00000001", "BDMAP_00000002"]),
])
def test_every_layout_pairs_ct_with_the_named_class(tmp_path, layout, subjects):
    root = _subject_folders(tmp_path / layout, layout, subjects)
    cases = find_subject_cases(str(root), "duodenum", layout)
    assert [c["subject"] for c in cases] == sorted(subjects)
    for c in cases:
        assert Path(c["image"]).name == "ct.nii.gz" and Path(c["image"]).is_absolute()
        assert c["label"].endswith(f"{c['subject']}/segmentations/duodenum.nii.gz")
        assert c["subject"] in c["image"]
    # the same through the datalist entry point used by the bundles
    assert find_cases(str(root), layout, "duodenum") == [{"image": c["image"], "label": c["label"]} for c in cases]


def test_missing_class_file_names_subject_and_available_classes(tmp_path):
    root = _subject_folders(tmp_path / "ts", "totalsegmentator", ["s1", "s2"])
    (root / "s2" / "segmentations" / "duodenum.nii.gz").unlink()
    with pytest.raises(ValueError, match=r"1 of 2 subjects have no 'duodenum' mask.*'s2'.*pancreas"):
        find_subject_cases(str(root), "duodenum")
    with pytest.raises(ValueError, match="no 'duodenom' mask.*Check the class name"):
        find_subject_cases(str(root), "duodenom")


def test_subject_without_ct_is_named(tmp_path):
    root = _subject_folders(tmp_path / "ts", "totalsegmentator", ["s1", "s2"])
    (root / "s1" / "ct.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"segmentations but no CT.*'s1'.*'s1/ct.nii.gz'"):
        find_subject_cases(str(root), "duodenum")


def test_wrong_folder_or_layout_and_missing_label(tmp_path):
    root = _subject_folders(tmp_path / "pants", "pants", ["p1"])
    with pytest.raises(FileNotFoundError, match="no subject CT.*right layout"):
        find_subject_cases(str(root), "duodenum", "totalsegmentator")
    with pytest.raises(ValueError, match="unknown layout 'nnunet'"):
        find_subject_cases(str(root), "duodenum", "nnunet")
    with pytest.raises(ValueError, match="label=.*duodenum"):
        find_cases(str(root), "pants")
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        find_subject_cases(str(tmp_path / "nowhere"), "duodenum")
    with pytest.raises(ValueError, match="needs .subject. in image"):
        SubjectLayout("ct.nii.gz", "{subject}/{label}.nii.gz")


def _meta(root: Path, rows: list[tuple[str, str]], header: str = "image_id;split;age") -> None:
    (root / "meta.csv").write_text(header + "\n" + "".join(f"{s};{sp};50\n" for s, sp in rows))


def test_totalsegmentator_split_file_is_kept(tmp_path):
    subjects = [f"s{i:04d}" for i in range(8)]
    root = _subject_folders(tmp_path / "ts", "totalsegmentator", subjects)
    _meta(root, [(s, "train") for s in subjects[:5]] + [("s0005", "val"), ("s0006", "test"), ("s0007", "test")])
    split = make_split(str(root), layout="totalsegmentator", label="duodenum", num_test=1)  # num_test: file wins
    assert [Path(c["image"]).parent.name for c in split["test"]] == ["s0006", "s0007"]
    assert [Path(c["image"]).parent.name for c in split["validation"]] == ["s0005"]
    assert sorted(Path(c["image"]).parent.name for c in split["training"]) == subjects[:5]
    lists = load_datalists(str(root), layout="totalsegmentator", label="duodenum")
    assert all(Path(c["label"]).is_file() and c["label"].endswith("duodenum.nii.gz") for c in lists["training"])


def test_split_file_without_validation_draws_it_from_training(tmp_path):
    subjects = [f"s{i}" for i in range(10)]
    root = _subject_folders(tmp_path / "ts", "totalsegmentator", subjects)
    _meta(root, [(s, "train") for s in subjects[:8]] + [(s, "test") for s in subjects[8:]])
    a = make_split(str(root), seed=0, num_val=2, layout="totalsegmentator", label="pancreas")
    b = make_split(str(root), seed=1, num_val=2, layout="totalsegmentator", label="pancreas")
    assert len(a["validation"]) == 2 and len(a["training"]) == 6 and len(a["test"]) == 2
    assert a["test"] == b["test"] and a["validation"] != b["validation"]  # the seed moves validation only
    names = {Path(c["image"]).parent.name for part in ("training", "validation") for c in a[part]}
    assert names == set(subjects[:8])


def test_split_file_errors(tmp_path):
    root = _subject_folders(tmp_path / "ts", "totalsegmentator", ["s1", "s2", "s3"])
    _meta(root, [("s1", "train"), ("s9", "train"), ("s2", "test")])
    with pytest.raises(ValueError, match=r"names 1 subject\(s\) that are not in the data set.*'s9'"):
        read_layout_split(str(root), "totalsegmentator", ["s1", "s2", "s3"])
    _meta(root, [("s1", "training")])
    with pytest.raises(ValueError, match="split 'training'; known splits"):
        read_layout_split(str(root), "totalsegmentator", ["s1"])
    (root / "meta.csv").write_text("id,split\ns1,train\n")
    with pytest.raises(ValueError, match="needs the columns 'image_id' and 'split'"):
        read_layout_split(str(root), "totalsegmentator", ["s1"])


def test_layout_without_split_file_is_split_by_seed(tmp_path):
    subjects = [f"BDMAP_{i:08d}" for i in range(6)]
    root = _subject_folders(tmp_path / "aa", "abdomenatlas", subjects, classes=("celiac_trunk",))
    assert read_layout_split(str(root), "abdomenatlas", subjects) is None
    split = make_split(str(root), seed=0, num_test=2, num_val=1, layout="abdomenatlas", label="celiac_trunk")
    assert (len(split["training"]), len(split["validation"]), len(split["test"])) == (3, 1, 2)
