from __future__ import annotations

import json

import pytest
import torch

from t2d_monai.bundle import (
    check_checkpoint,
    check_checkpoint_exists,
    check_dataset_dir,
    check_window_stride,
    list_images,
)
from t2d_monai.handlers import CheckpointMismatchError, CheckpointReadError, ModelSignature


def test_check_dataset_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*t2d_monai synth"):
        check_dataset_dir(str(tmp_path / "nope"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="no dataset.json and no images"):
        check_dataset_dir(str(tmp_path))
    (tmp_path / "a.nii.gz").write_bytes(b"")
    assert check_dataset_dir(str(tmp_path)) == str(tmp_path)


def test_check_checkpoint_exists(tmp_path):
    with pytest.raises(FileNotFoundError, match="no trained model at .*model.pt.*Train one first"):
        check_checkpoint_exists(str(tmp_path / "model.pt"))
    (tmp_path / "model.pt").write_bytes(b"x")
    assert check_checkpoint_exists(str(tmp_path / "model.pt")).endswith("model.pt")


def test_check_checkpoint_reads_it_and_compares_the_signature(tmp_path):
    path = str(tmp_path / "model.pt")
    with pytest.raises(FileNotFoundError, match="no trained model at"):
        check_checkpoint(path)
    torch.save({"model": {}}, path)
    with pytest.raises(CheckpointReadError, match=r"lacks \['signature'\]"):
        check_checkpoint(path)
    torch.save({"signature": {"view": "coronal", "num_slices": 6}, "model": {}}, path)
    assert check_checkpoint(path, ModelSignature(view="coronal", num_slices=6)) == path
    with pytest.raises(CheckpointMismatchError, match="num_slices: the checkpoint was trained with 6, the config asks for 15"):
        check_checkpoint(path, ModelSignature(view="coronal", num_slices=15))


def test_list_images_msd_test_list(tmp_path):
    (tmp_path / "imagesTs").mkdir()
    (tmp_path / "imagesTs" / "b.nii.gz").write_bytes(b"")
    (tmp_path / "dataset.json").write_text(json.dumps({"test": ["./imagesTs/b.nii.gz"]}))
    assert list_images(str(tmp_path)) == [{"image": str(tmp_path / "imagesTs" / "b.nii.gz")}]


def test_list_images_plain_folder_skips_labels(tmp_path):
    for name in ["img2.nii.gz", "img1.nii", "labelsTr/l.nii.gz", ".hidden.nii.gz", "readme.md"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert [d["image"] for d in list_images(str(tmp_path))] == [str(tmp_path / "img1.nii"), str(tmp_path / "img2.nii.gz")]
    assert list_images(str(tmp_path / "img1.nii")) == [{"image": str(tmp_path / "img1.nii")}]


def test_list_images_ill_arg(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_images(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="no images"):
        list_images(str(tmp_path))
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(FileNotFoundError, match="not an image file"):
        list_images(str(tmp_path / "x.txt"))


def test_check_window_stride():
    assert check_window_stride(15, 15) == 15  # the paper's recipe supervises every slice: windows side by side fit
    assert check_window_stride(4, 6, slab_margin=1) == 4  # every slice inside some window's 4 inner slices
    with pytest.raises(ValueError, match=r"stride=5 with 6-slice windows.*slab_margin=1.*--stride 4 or less"):
        check_window_stride(5, 6, slab_margin=1)
    assert check_window_stride(1, 1, slab_margin=1) == 1  # the margin is capped as SlabLoss caps it
    with pytest.raises(ValueError, match="--stride 1 or less"):
        check_window_stride(2, 3, slab_margin=5)
