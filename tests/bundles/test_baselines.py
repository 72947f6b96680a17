"""The baseline overlays of the hepatic_vessel bundle (configs/baselines/): each builds, trains two iterations
and writes a signed checkpoint; a 3D one evaluates; a 2D variant runs three-view inference."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser, ConfigWorkflow

from t2d_monai.handlers import CheckpointMismatchError

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "hepatic_vessel"
CONFIGS = BUNDLE / "configs"
SHAPE = (48, 40, 20)
TINY = {
    "num_slices": 6,
    "backbone": "resnet18",
    "spatial_size": [48, 48],
    "num_iterations": 2,
    "iterations_per_epoch": 2,
    "lr_milestones": [1],
    "val_interval": 1,
    "volumes_per_batch": 1,
    "slabs_per_volume": 1,
    "infer_batch_size": 8,
    "num_workers": 0,
}
#: 3D: patches the networks accept (UNet/VNet: multiples of 16; AHNet: 32 or more per axis, PSP only from 128)
TINY_3D = {k: v for k, v in TINY.items() if k not in ("num_slices", "spatial_size")}
TINY_3D.update(patch_size=[32, 32, 32], slabs_per_volume=2)  # UNet's 2x2x2 bottom: instance norm needs > 1 voxel
pytestmark = pytest.mark.slow

CASES_2D = [
    # overlay, signature fields that must differ from the default ESM + SSA
    ("deeplab_k1", {"num_slices": 1, "fusion": "early", "attention": None}),
    ("deeplab_k3", {"num_slices": 3, "fusion": "early", "attention": None}),
    ("deeplab_k12", {"num_slices": 12, "fusion": "early", "attention": None}),
    ("esm", {"attention": None}),
    ("esm_concat", {"attention": "concat"}),
    ("esm_dot", {"attention": "dot"}),
]
CASES_3D = [
    ("unet3d", "UNet", {}),
    ("vnet", "VNet", {}),
    ("ahnet", "AHNet", {"patch_size": [32, 32, 32], "network_def#psp_block_num": 0}),
]


def _files(*names: str) -> list[str]:
    return [str(CONFIGS / n) for n in names]


def _workflow(workflow_type: str, config: list[str], **overrides) -> ConfigWorkflow:
    return ConfigWorkflow(
        config_file=config, meta_file=str(CONFIGS / "metadata.json"), logging_file=str(CONFIGS / "logging.conf"),
        workflow_type=workflow_type, **overrides,
    )


def _run(wf: ConfigWorkflow) -> ConfigWorkflow:
    wf.initialize()
    assert wf.check_properties() == []
    wf.run()
    wf.finalize()
    return wf


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from t2d_monai.data.synthetic_layouts import synth

    out = tmp_path_factory.mktemp("data") / "Task08_synthetic"
    synth(out=str(out), num_cases=4, num_test=1, seed=0, shape=list(SHAPE))
    return out


def _no_overrides_of_the_paper_recipe(name: str) -> None:
    """An overlay holds only what makes it that baseline: no budget, size or device values."""
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "baselines" / f"{name}.json"))
    budget = {"num_iterations", "spatial_size", "backbone", "device", "learning_rate", "dataset_dir", "bundle_root"}
    assert not budget & set(parser.get()), name


@pytest.mark.parametrize("name, fields", CASES_2D)
def test_2d_baseline_trains_and_signs_its_checkpoint(dataset, tmp_path, name, fields):
    _no_overrides_of_the_paper_recipe(name)
    # overrides win over every config file: leave num_slices to the overlay where it sets one
    overrides = {k: v for k, v in TINY.items() if not (k == "num_slices" and "num_slices" in fields)}
    wf = _run(_workflow(
        "train", _files("train.json", "cpu_small.json", f"baselines/{name}.json"),
        bundle_root=str(tmp_path), dataset_dir=str(dataset), **overrides,
    ))
    expected = {"view": "coronal", "num_slices": 6, "group_size": 3, "backbone": "resnet18", "fusion": "esm",
                "attention": "ssa", "decoder_channels": 64, "decoder": "unet", "norm": ["instance", {"affine": True}],
                "encoder_depth": 4,
                **fields}
    assert torch.load(tmp_path / "models" / "model.pt", weights_only=True)["signature"] == expected
    assert torch.load(tmp_path / "models" / "checkpoint.pt", weights_only=True)["trainer"]["iteration"] == 2
    net = wf.parser.get_parsed_content("network_def")
    assert net.num_slices == expected["num_slices"] and net.fusion == expected["fusion"]


def test_slab_thickness_is_one_override(dataset, tmp_path):
    # Table 4: --num_slices K on the default ESM + SSA recipe
    _run(_workflow("train", _files("train.json", "cpu_small.json"), bundle_root=str(tmp_path),
                   dataset_dir=str(dataset), **{**TINY, "num_slices": 9}))
    assert torch.load(tmp_path / "models" / "model.pt", weights_only=True)["signature"]["num_slices"] == 9


@pytest.mark.parametrize("name, cls, extra", CASES_3D)
def test_3d_baseline_trains_with_patches_and_poly_lr(dataset, tmp_path, name, cls, extra):
    _no_overrides_of_the_paper_recipe(name)
    wf = _run(_workflow(
        "train", _files("train.json", "cpu_small.json", "baselines/patch3d.json", f"baselines/{name}.json"),
        bundle_root=str(tmp_path), dataset_dir=str(dataset), **{**TINY_3D, **extra},
    ))
    parser = wf.parser
    assert type(parser.get_parsed_content("network_def")).__name__ == cls
    scheduler = parser.get_parsed_content("lr_scheduler")
    assert isinstance(scheduler, torch.optim.lr_scheduler.PolynomialLR) and scheduler.power == 0.9
    assert scheduler.base_lrs == [0.01]
    # two polynomial steps out of two iterations: the learning rate has reached 0
    assert parser.get_parsed_content("optimizer").param_groups[0]["lr"] == pytest.approx(0.0)
    inferer = parser.get_parsed_content("validate#inferer")
    assert inferer.overlap == 0.75 and list(inferer.roi_size) == list(extra.get("patch_size", [32, 32, 32]))
    sample = parser.get_parsed_content("train#dataset")[0]
    assert [tuple(s["image"].shape) for s in sample] == [(1, *extra.get("patch_size", [32, 32, 32]))] * 2
    signature = torch.load(tmp_path / "models" / "model.pt", weights_only=True)["signature"]
    patch = "x".join(map(str, extra.get("patch_size", [32, 32, 32])))
    assert signature == {"network": cls, "spatial_dims": 3, "patch_size": patch}


@pytest.fixture(scope="module")
def unet3d(dataset, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("unet3d")
    _run(_workflow("train", _files("train.json", "cpu_small.json", "baselines/patch3d.json", "baselines/unet3d.json"),
                   bundle_root=str(root), dataset_dir=str(dataset), **TINY_3D))
    return root


def test_3d_baseline_evaluates_per_case(unet3d, dataset):
    files = _files("train.json", "evaluate.json", "cpu_small.json", "baselines/patch3d.json", "baselines/unet3d.json")
    wf = _workflow("eval", files, bundle_root=str(unet3d), dataset_dir=str(dataset), **TINY_3D)
    wf.initialize()
    wf.run()
    wf.finalize()
    rows = list(csv.reader((unet3d / "eval" / "val_mean_dice_raw.csv").open()))
    assert len(rows) >= 2 and 0.0 <= float(rows[1][1]) <= 1.0


def test_3d_checkpoint_of_other_patch_is_refused(unet3d, dataset):
    files = _files("train.json", "evaluate.json", "cpu_small.json", "baselines/patch3d.json", "baselines/unet3d.json")
    wf = _workflow("eval", files, bundle_root=str(unet3d), dataset_dir=str(dataset), **{**TINY_3D, "patch_size": [32, 32, 16]})
    with pytest.raises(BaseException) as info:
        wf.initialize()
        wf.run()
    chain, exc = [], info.value
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    assert any(isinstance(e, CheckpointMismatchError) and "patch_size" in str(e) for e in chain), chain


def test_three_view_fusion_of_a_2d_baseline(dataset, tmp_path):
    """inference_three_views.json on top of a 2D overlay (DeepLabV3+ on 3 slices): one model per view, vote."""
    from t2d_monai.bundle import checkpoint_filename

    overlay = "baselines/deeplab_k3.json"
    tiny = {k: v for k, v in TINY.items() if k != "num_slices"}  # the overlay sets it
    (tmp_path / "models").mkdir()
    for view in ("axial", "coronal", "sagittal"):
        parser = ConfigParser()
        parser.read_config(_files("train.json", "cpu_small.json", overlay))
        parser.update({**tiny, "view": view})
        net = parser.get_parsed_content("network_def")
        signature = parser.get_parsed_content("signature").state_dict()
        torch.save({"signature": signature, "model": net.state_dict()}, tmp_path / "models" / checkpoint_filename(view))
    wf = _workflow(
        "infer", _files("inference.json", "cpu_small.json", overlay, "inference_three_views.json"),
        bundle_root=str(tmp_path), dataset_dir=str(dataset), **tiny,
    )
    _run(wf)
    assert wf.parser.get_parsed_content("num_slices") == 3
    image = sorted((dataset / "imagesTs").glob("*.nii.gz"))[0]
    pred = nib.load(tmp_path / "eval" / image.name.replace(".nii.gz", "_seg_3views.nii.gz"))
    assert pred.shape == nib.load(image).shape
    assert set(np.unique(np.asarray(pred.dataobj))) <= {0, 1}
