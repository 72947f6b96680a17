"""Each target bundle besides hepatic_vessel (tested in depth in test_hepatic_vessel.py, from the same recipe), end
to end on synthetic data in its own data set's layout: training with the property check, inference with the input's
shape and affine back, and the model zoo's checks (metadata schema, net in/out, TorchScript equal to eager)."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from monai.bundle import ConfigWorkflow

from t2d_monai.bundle import list_images, package_bundle, zoo_check
from t2d_monai.bundle.recipe import read_target
from t2d_monai.data.synthetic_layouts import synth

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"
TARGETS = ("pancreas", "duodenum", "portal_splenic_vein", "superior_mesenteric_artery", "celiac_artery")
SHAPE = (48, 40, 20)
TINY = {"num_slices": 6, "backbone": "resnet18", "decoder_channels": 64, "spatial_size": [48, 48], "num_iterations": 2,
        "iterations_per_epoch": 2, "val_interval": 1, "volumes_per_batch": 1, "slabs_per_volume": 2,
        "infer_batch_size": 8, "num_workers": 0}
pytestmark = pytest.mark.slow


def _workflow(root: Path, workflow_type: str, names: list[str], **overrides) -> ConfigWorkflow:
    configs = root / "configs"
    return ConfigWorkflow(config_file=[str(configs / n) for n in names], meta_file=str(configs / "metadata.json"),
                          logging_file=str(configs / "logging.conf"), workflow_type=workflow_type,
                          bundle_root=str(root), **overrides)


@pytest.mark.parametrize("name", TARGETS)
def test_target_bundle_trains_infers_and_passes_zoo_checks(name, tmp_path):
    root = tmp_path / name
    shutil.copytree(BUNDLES / name, root, ignore=shutil.ignore_patterns("models", "eval"))
    data = tmp_path / "data"
    synth(out=str(data), num_cases=4, num_test=1, seed=0, shape=list(SHAPE), layout=read_target(root)["synthetic_layout"])

    train = _workflow(root, "train", ["train.json", "cpu_small.json"], dataset_dir=str(data), **TINY)
    train.initialize()
    assert train.check_properties() == []
    assert len(train.parser.get_parsed_content("datasplit")["training"]) >= 1
    label = train.parser.get_parsed_content("train#dataset")[0][0]["label"]
    assert set(np.unique(np.asarray(label)).tolist()) <= {0.0, 1.0}
    train.run()
    train.finalize()
    assert (root / "models" / "model.pt").is_file()

    infer = _workflow(root, "infer", ["inference.json", "cpu_small.json"], dataset_dir=str(data), **TINY)
    infer.initialize()
    assert infer.check_properties() == []
    infer.run()
    infer.finalize()
    images = [Path(item["image"]) for item in list_images(str(data))]
    outputs = sorted((root / "eval").rglob("*_seg.nii.gz"))
    assert len(outputs) == len(images) >= 1
    for image in images:
        # subject-folder layouts name every CT ct.nii.gz: the output keeps the subject folder
        rel = image.parent.relative_to(data) if read_target(root)["config"]["data_layout"] != "msd" else Path()
        out = root / "eval" / rel / (image.name[: -len(".nii.gz")] + "_seg.nii.gz")
        src, pred = nib.load(image), nib.load(out)
        assert pred.shape == src.shape
        np.testing.assert_allclose(pred.affine, src.affine, atol=1e-5)
        assert set(np.unique(np.asarray(pred.dataobj)).tolist()) <= {0, 1}

    # as shared: packaged with the CPU overlay baked in, then what the zoo's CI runs on the package
    small = {k: TINY[k] for k in ("num_slices", "backbone", "decoder_channels", "infer_batch_size", "num_workers")}
    packaged = package_bundle(str(root), str(tmp_path / "packaged" / name), model=str(root / "models" / "model.pt"),
                              overlays="cpu_small.json", overrides=small)
    report = zoo_check(packaged, onnx=False)
    assert all(v.startswith("ok") for v in report.values()), report
