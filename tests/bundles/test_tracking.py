"""Experiment tracking of the hepatic_vessel bundle's training: TensorBoard logs by default (read back with
TensorBoard's own reader), and the bundle runner's ``--tracking mlflow`` with MONAI's local store."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from t2d_monai.bundle.bundle_run import SHAPE, TINY, Context

pytestmark = pytest.mark.slow

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "hepatic_vessel"
TRAIN = ["train.json", "cpu_small.json"]
assert TINY["num_iterations"] == TINY["iterations_per_epoch"] == 2 and TINY["val_interval"] == 1, "one epoch"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from t2d_monai.data.synthetic_layouts import synth

    out = tmp_path_factory.mktemp("data") / "synthetic"
    synth(out=str(out), num_cases=5, num_test=1, seed=0, shape=list(SHAPE))
    return out


def test_training_writes_tensorboard_logs(dataset, tmp_path):
    """2 iterations and one validation: loss and learning rate per iteration, the validation metrics and one
    validation case (image, label and prediction of the same slice, in the input file's orientation) at the
    trainer's iteration 2."""
    ctx = Context(tmp_path, BUNDLE)
    result = ctx.run("train", TRAIN, dataset_dir=str(dataset))
    assert result.error is None, result.error
    parser = result.workflow.parser
    log_dir = Path(parser.get_parsed_content("tensorboard_dir"))
    assert log_dir == ctx.root / "eval" / "tensorboard" / "coronal"
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    steps = {tag: [e.step for e in acc.Scalars(tag)] for tag in tags["scalars"]}
    assert steps == {"train_loss": [1, 2], "lr": [1, 2], "val_mean_dice": [2], "val_inter_slice_similarity": [2]}
    lr = [e.value for e in acc.Scalars("lr")]
    assert lr[0] == pytest.approx(parser.get_parsed_content("learning_rate")) and lr[1] < lr[0], "polynomial decay"
    assert all(np.isfinite(e.value) for e in acc.Scalars("train_loss"))
    assert 0.0 <= acc.Scalars("val_mean_dice")[0].value <= 1.0

    assert sorted(tags["images"]) == ["val/image", "val/label", "val/pred"]
    images = {}
    for tag in tags["images"]:
        (event,) = acc.Images(tag)
        assert event.step == 2
        images[tag] = np.array(Image.open(io.BytesIO(event.encoded_image_string)))[..., 0].astype(int)
    # the last validation case, as in its files: the label slice with the most vessel along the file's last axis
    case = parser.get_parsed_content("datasplit")["validation"][-1]
    label = np.asarray(nib.load(case["label"]).dataobj) == 1
    z = int(np.argmax(label.sum(axis=(0, 1))))
    np.testing.assert_array_equal(images["val/label"] > 127, label[:, :, z])
    low, high = parser.get_parsed_content("hu_window")
    ct = np.clip((np.asarray(nib.load(case["image"]).dataobj)[:, :, z] - low) / (high - low), 0, 1)
    expected = (ct - ct.min()) / (ct.max() - ct.min()) * 255
    assert np.abs(images["val/image"] - expected).max() <= 1
    assert images["val/pred"].shape == label.shape[:2] and set(np.unique(images["val/pred"])) <= {0, 255}


def test_tracking_mlflow_records_the_run(dataset, tmp_path):
    """``python -m monai.bundle run training ... --tracking mlflow``: one finished run in MONAI's local store
    (``<output_dir>/mlruns.db``) with the loss and learning rate per iteration, the validation metrics, the
    trainer's settings and the executed config as an artifact in ``<output_dir>/mlruns/<run id>``."""
    mlflow = pytest.importorskip("mlflow", reason="the test extra installs mlflow-skinny")
    configs = BUNDLE / "configs"
    args = [a for k, v in TINY.items() for a in (f"--{k}", v if isinstance(v, str) else json.dumps(v))]
    cmd = [sys.executable, "-m", "monai.bundle", "run", "training",
           "--config_file", str([str(configs / f) for f in TRAIN]), "--meta_file", str(configs / "metadata.json"),
           "--logging_file", str(configs / "logging.conf"), "--bundle_root", str(tmp_path / "root"),
           "--dataset_dir", str(dataset), *args, "--tracking", "mlflow"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    out = tmp_path / "root" / "eval"
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{out / 'mlruns.db'}")
    experiment = client.get_experiment_by_name("monai_experiment")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    history = {key: [m.step for m in client.get_metric_history(run.info.run_id, key)] for key in run.data.metrics}
    assert history == {"train_loss": [1, 2], "lr_group_0": [1, 2], "val_mean_dice": [1],
                       "val_inter_slice_similarity": [1]}
    assert run.data.params["epoch_length"] == "2" and run.data.params["max_epochs"] == "1"
    run_dir = out / "mlruns" / run.info.run_id / "artifacts"
    (config,) = run_dir.glob("config_*.json")
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == [config.name]
    assert json.loads(config.read_text())["num_iterations"] == 2
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlruns.db").exists(), "nothing in the cwd"
    assert (out / "tensorboard" / "coronal").is_dir(), "TensorBoard logs as well"
