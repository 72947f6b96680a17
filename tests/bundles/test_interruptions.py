"""Interrupted work through the bundle runner: training and inference killed by SIGKILL at random points.

Training resumes from a loadable checkpoint every time and loses at most the iterations since the last completed
save; inference never leaves a partial file under a prediction's name. Bounded: a fixed number of kills, each
subprocess with a timeout.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from t2d_monai.bundle.bundle_run import SHAPE
from t2d_monai.bundle.bundle_run import TINY as BASE
from t2d_monai.handlers import read_checkpoint

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")]

CONFIGS = Path(__file__).resolve().parents[2] / "bundles" / "hepatic_vessel" / "configs"
# the tiny recipe of the odd-input cases, as command-line overrides; the tests set the budget themselves
TINY = [a for k, v in BASE.items() if k not in ("num_iterations", "iterations_per_epoch", "val_interval")
        for a in (f"--{k}", v if isinstance(v, str) else json.dumps(v))]
KILLS = 3
SAVED = re.compile(r"saved resumable state at epoch (\d+)")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from t2d_monai.data.synthetic_layouts import synth

    out = tmp_path_factory.mktemp("data") / "synthetic"
    synth(out=str(out), num_cases=5, num_test=3, seed=0, shape=list(SHAPE))
    return out


def _bundle(kind: str, files: list[str], args: list[str], log: Path) -> subprocess.Popen:
    config = "[" + ",".join(f"'{CONFIGS / f}'" for f in files) + "]"
    cmd = [sys.executable, "-m", "monai.bundle", "run", kind, "--config_file", config,
           "--meta_file", str(CONFIGS / "metadata.json"), "--logging_file", str(CONFIGS / "logging.conf"), *TINY, *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)


def _wait_for(proc: subprocess.Popen, log: Path, pattern: str, timeout: float = 120.0) -> bool:
    """Wait until ``pattern`` appears in the log (True) or the process ends (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if re.search(pattern, log.read_text()):
            return True
        if proc.poll() is not None:
            return bool(re.search(pattern, log.read_text()))
        time.sleep(0.05)
    proc.kill()
    raise TimeoutError(f"{pattern!r} did not appear within {timeout} s; log:\n{log.read_text()[-3000:]}")


def test_training_killed_at_random_points_always_resumes(dataset, tmp_path):
    rng = random.Random(0)
    root, iterations = tmp_path / "run", 24
    args = ["--bundle_root", str(root), "--dataset_dir", str(dataset), "--resume", "true", "--num_iterations",
            str(iterations), "--iterations_per_epoch", "1", "--val_interval", "1000"]  # a save after every iteration
    checkpoint = root / "models" / "checkpoint.pt"
    last = 0
    for kill in range(KILLS):
        log = tmp_path / f"train_{kill}.log"
        proc = _bundle("training", ["train.json", "cpu_small.json"], args, log)
        assert _wait_for(proc, log, SAVED.pattern), log.read_text()[-3000:]
        time.sleep(rng.uniform(0.0, 1.5))  # anywhere in an iteration or a checkpoint write
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        saved = [int(e) for e in SAVED.findall(log.read_text())]
        state = read_checkpoint(str(checkpoint), keys=("trainer", "model", "optimizer", "signature"))  # loadable
        epoch = int(state["trainer"]["iteration"]) // int(state["trainer"]["epoch_length"])  # one iteration each
        # nothing but the iterations after the last completed save is lost (the rename may beat the log line)
        assert max(saved) <= epoch <= max(saved) + 1, (saved, epoch)
        assert epoch >= last  # never goes back
        last = epoch
    log = tmp_path / "train_final.log"
    proc = _bundle("training", ["train.json", "cpu_small.json"], args, log)
    assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
    assert f"resumed at epoch {last}" in log.read_text()
    assert int(read_checkpoint(str(checkpoint), keys=("trainer",))["trainer"]["iteration"]) == iterations
    assert sorted(p.name for p in (root / "models").iterdir()) == ["checkpoint.pt"]  # no partial write left


def test_inference_killed_while_writing_leaves_no_partial_prediction(dataset, tmp_path):
    root = tmp_path / "run"
    train_log = tmp_path / "train.log"
    proc = _bundle("training", ["train.json", "cpu_small.json"],
                   ["--bundle_root", str(root), "--dataset_dir", str(dataset), "--num_iterations", "2",
                    "--iterations_per_epoch", "2", "--val_interval", "1"], train_log)
    assert proc.wait(timeout=300) == 0, train_log.read_text()[-3000:]
    images = tmp_path / "images"
    images.mkdir()
    src = sorted((dataset / "imagesTs").glob("*.nii.gz"))[0]
    vol, affine = np.asarray(nib.load(str(src)).dataobj), nib.load(str(src)).affine
    for i in range(8):  # larger volumes, so that writes take long enough to be hit
        nib.save(nib.Nifti1Image(np.tile(vol, (4, 4, 2)), affine), str(images / f"case_{i}.nii.gz"))
    out = tmp_path / "out"
    args = ["--bundle_root", str(root), "--dataset_dir", str(images), "--output_dir", str(out)]
    rng = random.Random(1)
    for kill in range(KILLS):
        log = tmp_path / f"infer_{kill}.log"
        proc = _bundle("run", ["inference.json", "cpu_small.json"], args, log)
        finished = not _wait_for(proc, log, r"_seg\.nii\.gz")  # the first prediction is being written
        if not finished:
            time.sleep(rng.uniform(0.0, 1.0))
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=120)
        for pred in out.glob("*_seg.nii.gz"):  # everything under a final name is complete
            data = np.asarray(nib.load(str(pred)).dataobj)
            assert data.shape == (192, 160, 40), pred
    log = tmp_path / "infer_final.log"
    proc = _bundle("run", ["inference.json", "cpu_small.json"], args, log)
    assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"case_{i}_seg.nii.gz" for i in range(8)]  # every partial file cleaned by the rewrite
