from __future__ import annotations

import os

import pytest

from t2d_monai.bundle import bundle_root_from_argv, checkpoint_filename
from t2d_monai.bundle.paths import bundle_dir


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["-m", "run", "training", "--config_file", "bundles/hv/configs/train.json"], "bundles/hv"),
        (["run", "--config_file=bundles/hv/configs/train.json"], "bundles/hv"),
        (["run", "--config_file", "['bundles/hv/configs/train.json','bundles/hv/configs/evaluate.json']"], "bundles/hv"),
        (["run", "--config_file", "somewhere/train.json"], "somewhere"),
    ],
)
def test_bundle_root_from_argv(argv, expected):
    assert bundle_root_from_argv(argv=argv) == os.path.abspath(expected)


def test_bundle_root_default_without_config_file():
    assert bundle_root_from_argv(default="/x", argv=["pytest", "-q"]) == "/x"


@pytest.mark.parametrize("view, name", [("coronal", "model.pt"), ("axial", "model_axial.pt"), ("sagittal", "model_sagittal.pt")])
def test_checkpoint_filename(view, name):
    assert checkpoint_filename(view) == name


def test_ill_arg():
    with pytest.raises(ValueError, match="sagittal"):
        checkpoint_filename("sagital")


def test_bundle_dir_errors_clearly(tmp_path):
    assert (bundle_dir() / "configs" / "train.json").is_file()
    with pytest.raises(FileNotFoundError, match="no configs/train.json"):
        bundle_dir(path=str(tmp_path))
