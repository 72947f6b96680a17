"""The hepatic_vessel bundle as the model zoo tests bundles: synthetic NIfTI in a temporary folder,
ConfigWorkflow with overrides by key name, then train, resume, evaluate, infer and the zoo checks."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigWorkflow

from t2d_monai.handlers import CheckpointMismatchError

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "hepatic_vessel"
CONFIGS = BUNDLE / "configs"
SCHEMA = Path(__file__).resolve().parents[2] / "t2d_monai" / "bundle" / "meta_schema_20240725.json"
SHAPE = (48, 40, 20)  # non-cubic on purpose; coronal slices are X x Z = 48 x 20
TINY = {
    "num_slices": 6,
    "backbone": "resnet18",
    "decoder_channels": 64,
    "spatial_size": [48, 48],
    "num_iterations": 4,
    "iterations_per_epoch": 2,
    "lr_milestones": [3],
    "val_interval": 1,
    "volumes_per_batch": 1,
    "slabs_per_volume": 2,
    "infer_batch_size": 8,
    "num_workers": 0,
}
pytestmark = pytest.mark.slow


def _files(*names: str) -> list[str]:
    return [str(CONFIGS / n) for n in names]


def _workflow(workflow_type: str, config: list[str], **overrides) -> ConfigWorkflow:
    return ConfigWorkflow(
        config_file=config,
        meta_file=str(CONFIGS / "metadata.json"),
        logging_file=str(CONFIGS / "logging.conf"),
        workflow_type=workflow_type,
        **overrides,
    )


def _run(workflow: ConfigWorkflow) -> None:
    workflow.initialize()
    workflow.run()
    workflow.finalize()


@contextlib.contextmanager
def raises_in_chain(exc_type: type[BaseException], match: str):
    """Like pytest.raises, but the clear error may sit anywhere in the chain that the bundle runner re-raises."""
    with pytest.raises(BaseException) as info:
        yield
    chain, exc = [], info.value
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    assert any(isinstance(e, exc_type) and re.search(match, str(e)) for e in chain), (
        f"no {exc_type.__name__} matching {match!r} in the chain: {[f'{type(e).__name__}: {e}' for e in chain]}"
    )


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from t2d_monai.data.synthetic_layouts import synth

    out = tmp_path_factory.mktemp("data") / "Task08_synthetic"
    synth(out=str(out), num_cases=5, num_test=1, seed=0, shape=list(SHAPE))
    return out


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bundle_run")
    wf = _workflow("train", _files("train.json", "cpu_small.json"), bundle_root=str(root), dataset_dir=str(dataset), **TINY)
    wf.initialize()
    assert wf.check_properties() == []
    wf.run()
    wf.finalize()
    return root


def test_train_writes_signed_checkpoints(trained):
    model = torch.load(trained / "models" / "model.pt", weights_only=True)
    assert model["signature"] == {
        "view": "coronal", "num_slices": 6, "group_size": 3, "backbone": "resnet18", "fusion": "esm", "attention": "ssa",
        "decoder_channels": 64, "decoder": "unet", "encoder_depth": 4,  # the CPU overlay's recipe
        "norm": ["instance", {"affine": True}],
    }
    state = torch.load(trained / "models" / "checkpoint.pt", weights_only=True)
    assert state["trainer"]["iteration"] == 4 and state["trainer"]["epoch_length"] == 2
    assert {"model", "optimizer", "lr_scheduler", "signature"} <= set(state)
    assert not list(Path.cwd().glob("models/checkpoint*.pt")), "nothing may land in the current folder"


def test_resume_continues_from_last_checkpoint(trained, dataset, tmp_path):
    # continue the module's run in a copy, to 6 iterations: it must start at iteration 4, not 0
    import shutil

    root = tmp_path / "resumed"
    shutil.copytree(trained / "models", root / "models")
    overrides = {**TINY, "num_iterations": 6, "resume": True}
    wf = _workflow("train", _files("train.json", "cpu_small.json"), bundle_root=str(root), dataset_dir=str(dataset), **overrides)
    seen = []
    wf.initialize()
    trainer = wf.parser.get_parsed_content("train#trainer")
    from ignite.engine import Events

    trainer.add_event_handler(Events.ITERATION_STARTED, lambda e: seen.append(e.state.iteration))
    wf.run()
    wf.finalize()
    assert seen == [5, 6]
    state = torch.load(root / "models" / "checkpoint.pt", weights_only=True)
    assert state["trainer"]["iteration"] == 6


def test_evaluate_writes_per_case_and_mean_metrics(trained, dataset):
    wf = _workflow(
        "eval", _files("train.json", "evaluate.json", "cpu_small.json"), bundle_root=str(trained), dataset_dir=str(dataset),
        **TINY,
    )
    _run(wf)
    out = trained / "eval"
    # Dice-like metrics in [0, 1]; distances (mm) and the inter-slice similarity >= 0; HD95 may be nan (no vessel
    # predicted by a 4-iteration model) but then MONAI's rule must be the reason
    bounded = {"val_mean_dice", "val_surface_dice", "val_cldice"}
    names = ("val_mean_dice", "val_inter_slice_similarity", "val_hd95", "val_surface_dice", "val_cldice")
    for metric in names:
        rows = list(csv.reader((out / f"{metric}_raw.csv").open()))
        assert len(rows) >= 2  # header + one row per case
        value = float(rows[1][1])
        if metric == "val_hd95" and not np.isfinite(value):
            continue
        assert np.isfinite(value), metric
        assert 0.0 <= value <= 1.0 if metric in bounded else value >= 0.0
    summary = (out / "metrics.csv").read_text()
    assert all(name in summary for name in names)


def test_monailabel_training_reports_the_vessel_metrics(dataset, tmp_path):
    """What the MONAI Label app adds to a training (``training_overrides``): the model's view, and after every
    validation its metrics, the evaluation's HD95, surface Dice and clDice among them, in the model's stats file."""
    import shutil

    from t2d_monai.bundle.served import served_models, training_overrides
    from t2d_monai.handlers import read_train_stats

    bundle = tmp_path / "hepatic_vessel"
    shutil.copytree(BUNDLE, bundle, ignore=shutil.ignore_patterns("models", "eval"))
    model = {m.name: m for m in served_models(str(bundle))}["hepatic_vessel_axial"]
    configs = [str(bundle / "configs" / n) for n in ("train.json", "cpu_small.json")]
    _run(_workflow("train", configs, bundle_root=str(bundle), dataset_dir=str(dataset),
                   **{**TINY, **training_overrides(model)}))
    assert (bundle / "models" / "model_axial.pt").is_file()
    stats = read_train_stats(model.stats_file)
    assert stats["epoch"] == 2 and stats["key_metric_name"] == "val_mean_dice"
    metrics = stats["metrics"]
    assert set(metrics) == {"val_mean_dice", "val_inter_slice_similarity", "val_hd95", "val_surface_dice",
                            "val_cldice"}
    for name in ("val_mean_dice", "val_surface_dice", "val_cldice"):
        assert 0.0 <= metrics[name] <= 1.0, name
    assert metrics["val_hd95"] is None or metrics["val_hd95"] >= 0.0  # None: no vessel predicted yet
    assert stats["best_metric"] >= metrics["val_mean_dice"]


def test_inference_keeps_input_space_and_never_touches_inputs(trained, dataset):
    image = sorted((dataset / "imagesTs").glob("*.nii.gz"))[0]
    before = _md5(image)
    wf = _workflow("infer", _files("inference.json", "cpu_small.json"), bundle_root=str(trained), dataset_dir=str(dataset), **TINY)
    wf.initialize()
    assert wf.check_properties() == []
    wf.run()
    wf.finalize()
    assert _md5(image) == before
    pred_path = trained / "eval" / image.name.replace(".nii.gz", "_seg.nii.gz")
    pred, src = nib.load(pred_path), nib.load(image)
    assert pred.shape == src.shape
    np.testing.assert_allclose(pred.affine, src.affine, atol=1e-5)
    assert set(np.unique(np.asarray(pred.dataobj))) <= {0, 1}


def _write_view_checkpoint(root: Path, view: str, num_slices: int = 6) -> None:
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "inference.json"), str(CONFIGS / "cpu_small.json")])
    parser.update({**TINY, "num_slices": num_slices, "view": view})
    net = parser.get_parsed_content("network_def")
    fields = parser.get_parsed_content("signature").state_dict()  # the config's own signature: what training saves
    assert fields["view"] == view and fields["num_slices"] == num_slices
    from t2d_monai.bundle import checkpoint_filename

    torch.save({"signature": fields, "model": net.state_dict()}, root / "models" / checkpoint_filename(view))


def test_three_view_inference_fuses_by_vote(trained, dataset, tmp_path):
    import shutil

    root = tmp_path / "three"
    shutil.copytree(trained / "models", root / "models")
    for view in ("axial", "sagittal"):
        _write_view_checkpoint(root, view)
    wf = _workflow(
        "infer", _files("inference.json", "inference_three_views.json", "cpu_small.json"), bundle_root=str(root),
        dataset_dir=str(dataset), **TINY,
    )
    _run(wf)
    image = sorted((dataset / "imagesTs").glob("*.nii.gz"))[0]
    pred = nib.load(root / "eval" / image.name.replace(".nii.gz", "_seg_3views.nii.gz"))
    assert pred.shape == nib.load(image).shape
    assert set(np.unique(np.asarray(pred.dataobj))) <= {0, 1}


def test_three_view_inference_names_missing_views(trained, dataset, tmp_path):
    import shutil

    root = tmp_path / "only_coronal"
    shutil.copytree(trained / "models", root / "models")
    wf = _workflow(
        "infer", _files("inference.json", "inference_three_views.json", "cpu_small.json"), bundle_root=str(root),
        dataset_dir=str(dataset), **TINY,
    )
    with raises_in_chain(FileNotFoundError, r"missing:\s+axial: .*model_axial.pt\s+sagittal"):
        _run(wf)


@pytest.mark.parametrize(
    "override, match",
    [
        ({"num_slices": 9}, "num_slices: the checkpoint was trained with 6, the config asks for 9"),
        ({"view": "axial", "ckpt_file": "MODEL"}, "view: the checkpoint was trained with 'coronal', the config asks for 'axial'"),
        ({"decoder": "deeplabv3plus"}, "decoder: the checkpoint was trained with 'unet', the config asks for 'deeplabv3plus'"),
    ],
)
def test_checkpoint_of_other_settings_is_refused_clearly(trained, dataset, override, match):
    override = {k: (str(trained / "models" / "model.pt") if v == "MODEL" else v) for k, v in override.items()}
    wf = _workflow(
        "infer", _files("inference.json", "cpu_small.json"), bundle_root=str(trained), dataset_dir=str(dataset),
        **{**TINY, **override},
    )
    with raises_in_chain(CheckpointMismatchError, match):
        _run(wf)


def _nifti(path: Path, shape, affine=None) -> Path:
    nib.save(nib.Nifti1Image(np.zeros(shape, dtype=np.int16), np.eye(4) if affine is None else affine), str(path))
    return path


@pytest.mark.parametrize(
    "shape, match",
    [((48, 40), "is a 2D image"), ((48, 40, 20, 2), "is a 4D image")],
)
def test_inference_rejects_2d_and_4d_images(trained, tmp_path, shape, match):
    image = _nifti(tmp_path / "bad.nii.gz", shape)
    wf = _workflow("infer", _files("inference.json", "cpu_small.json"), bundle_root=str(trained), dataset_dir=str(image), **TINY)
    with raises_in_chain(ValueError, match):
        _run(wf)


def test_inference_on_volume_thinner_than_window(trained, tmp_path):
    # coronal view: the slices run along Y, so Y=3 < num_slices=6
    image = _nifti(tmp_path / "thin.nii.gz", (32, 3, 12), np.diag([0.8, 2.0, 2.5, 1.0]))
    wf = _workflow(
        "infer", _files("inference.json", "cpu_small.json"), bundle_root=str(trained), dataset_dir=str(image),
        output_dir=str(tmp_path / "out"), **TINY,
    )
    _run(wf)
    assert nib.load(tmp_path / "out" / "thin_seg.nii.gz").shape == (32, 3, 12)


def test_missing_dataset_dir_and_missing_model(tmp_path, trained):
    wf = _workflow("train", _files("train.json", "cpu_small.json"), bundle_root=str(tmp_path), dataset_dir=str(tmp_path / "nope"), **TINY)
    with raises_in_chain(FileNotFoundError, "does not exist.*t2d_monai synth"):
        wf.initialize()
    wf = _workflow("infer", _files("inference.json", "cpu_small.json"), bundle_root=str(tmp_path), dataset_dir=str(trained), **TINY)
    with raises_in_chain(FileNotFoundError, "no trained model at"):
        wf.initialize()


def test_label_shape_mismatch_is_reported(tmp_path):
    data = tmp_path / "bad_data"
    for sub in ("imagesTr", "labelsTr"):
        (data / sub).mkdir(parents=True)
    training = []
    for i in range(3):
        _nifti(data / "imagesTr" / f"c{i}.nii.gz", (24, 20, 12))
        _nifti(data / "labelsTr" / f"c{i}.nii.gz", (24, 20, 12 if i else 10))
        training.append({"image": f"./imagesTr/c{i}.nii.gz", "label": f"./labelsTr/c{i}.nii.gz"})
    (data / "dataset.json").write_text(json.dumps({"training": training, "test": [], "labels": {"0": "background", "1": "Vessel"}}))
    wf = _workflow(
        "train", _files("train.json", "cpu_small.json"), bundle_root=str(tmp_path), dataset_dir=str(data),
        **{**TINY, "cache_rate": 0.0},
    )
    with raises_in_chain(ValueError, r"has shape \(24, 20, 10\) but image .* has shape \(24, 20, 12\)"):
        _run(wf)


def test_model_zoo_checks(trained, tmp_path):
    """verify_metadata against the schema, verify_net_in_out, and ckpt_export equal to eager."""
    meta = str(CONFIGS / "metadata.json")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BUNDLE.parents[1]), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "monai.bundle"]
    subprocess.run(cmd + ["verify_metadata", "--meta_file", meta, "--filepath", str(SCHEMA)], check=True, env=env)
    subprocess.run(
        cmd + ["verify_net_in_out", "network_def", "--meta_file", meta, "--config_file", str(CONFIGS / "inference.json"),
               "--backbone", "resnet18", "--decoder_channels", "64"],
        check=True, env=env,
    )
    ts = tmp_path / "model.ts"
    subprocess.run(
        cmd + ["ckpt_export", "network_def", "--filepath", str(ts), "--ckpt_file", str(trained / "models" / "model.pt"),
               "--meta_file", meta, "--config_file", str([str(CONFIGS / "inference.json"), str(CONFIGS / "cpu_small.json")]),
               "--key_in_ckpt", "model",
               "--backbone", "resnet18", "--num_slices", "6", "--decoder_channels", "64"],
        check=True, env=env,
    )
    scripted = torch.jit.load(str(ts))
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "inference.json"), str(CONFIGS / "cpu_small.json")])
    parser.update({**TINY})
    net = parser.get_parsed_content("network_def")
    net.load_state_dict(torch.load(trained / "models" / "model.pt", weights_only=True)["model"])
    net.eval()
    x = torch.rand(1, 6, 48, 20)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), net(x), atol=1e-5, rtol=1e-4)


def test_multi_gpu_training_runs_on_cpu_with_torchrun(dataset, tmp_path):
    cfg = "['" + "','".join(_files("train.json", "multi_gpu_train.json", "cpu_small.json")) + "']"
    args = []
    # two validation cases, so that each of the two ranks evaluates one
    for key, value in {**TINY, "num_validation": 2, "bundle_root": str(tmp_path), "dataset_dir": str(dataset)}.items():
        args += [f"--{key}", json.dumps(value) if not isinstance(value, str) else value]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=2",
           "-m", "monai.bundle", "run", "training", "--config_file", cfg, "--meta_file", str(CONFIGS / "metadata.json"),
           "--logging_file", str(CONFIGS / "logging.conf"), *args]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    state = torch.load(tmp_path / "models" / "checkpoint.pt", weights_only=True)
    assert state["trainer"]["iteration"] == 4
    assert not any(k.startswith("module.") for k in state["model"])
    # TensorBoard from rank 0 only: three writers (train stats, validation stats, validation case) of one process
    events = list((tmp_path / "eval" / "tensorboard" / "coronal").glob("events.out.tfevents.*"))
    assert len(events) == 3 and len({p.name.rsplit(".", 2)[1] for p in events}) == 1, [p.name for p in events]
    # the trained model evaluated by two ranks on two test cases: each scores one, rank 0 writes both rows
    cfg = "['" + "','".join(_files("train.json", "evaluate.json", "multi_gpu_evaluate.json", "cpu_small.json")) + "']"
    cmd = [*cmd[:cmd.index("run") + 1], "evaluating", "--config_file", cfg, *cmd[cmd.index("--meta_file"):]]
    # the data set's one test case cannot be shared by two ranks: a clear error before any evaluation
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0 and "1 test case(s) for 2 processes" in result.stderr, result.stderr[-3000:]
    result = subprocess.run([*cmd, "--num_test", "2"], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = list(csv.reader((tmp_path / "eval" / "val_mean_dice_raw.csv").open()))
    assert len(rows) == 3, rows  # header + the two test cases


@pytest.mark.parametrize("overlays, expected", [((), "PolynomialLR"), (("step_lr.json",), "MultiStepLR")])
def test_cpu_schedule_follows_the_budget(overlays, expected):
    """cpu_small.json decays the learning rate polynomially to 0 over ``num_iterations`` (the 3D row's schedule);
    step_lr.json restores the paper's steps (/10 at 70 % and 90 % of the budget)."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(_files("train.json", "cpu_small.json", *overlays))
    parser.update({"backbone": "resnet18", "num_iterations": 1000})
    scheduler = parser.get_parsed_content("lr_scheduler")
    assert type(scheduler).__name__ == expected
    optimizer = parser.get_parsed_content("optimizer")
    rates = []
    for _ in range(1000):
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    lr = parser.get_parsed_content("learning_rate")
    if expected == "PolynomialLR":
        assert rates[499] == pytest.approx(lr * 0.5**0.9) and rates[-1] == 0.0
    else:
        assert sorted(parser.get_parsed_content("lr_milestones")) == [700, 900]
        assert rates[698] == pytest.approx(lr) and rates[699] == pytest.approx(lr / 10)
        assert rates[-1] == pytest.approx(lr / 100)
