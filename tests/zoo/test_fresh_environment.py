"""A packaged bundle checked, as the model zoo's CI checks it, by a Python that has no t2d_monai installed.

Runs only where ``T2D_ZOO_PYTHON`` names the python of a fresh virtual environment with torch==2.13.0,
monai==1.6.1, jsonschema and fire (MONAI's ``python -m monai.bundle`` needs fire) and nothing of this repository
(.ci/run makes one). The test installs the requirements that the packaged metadata lists into it with pip, as the
zoo CI does (``ci/get_bundle_requirements.py``: ``monai_version``, ``pytorch_version``, ``numpy_version``,
``optional_packages_version``, ``required_packages_version``), then, with PYTHONPATH cleared and outside the
repository: ``verify_metadata`` (local schema), ``check_properties`` of train and inference, ``verify_net_in_out``,
``ckpt_export``, and an inference on a synthetic NIfTI whose code must come from the bundle's ``scripts/``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from t2d_monai.benchmarks.monailabel_load import write_signed_checkpoint
from t2d_monai.bundle import package_bundle
from t2d_monai.data.synthetic import write_dataset

ZOO_PYTHON = os.environ.get("T2D_ZOO_PYTHON")
REPO = Path(__file__).resolve().parents[2]
SMALL = {"num_slices": 6, "backbone": "resnet18", "decoder_channels": 64, "spatial_size": [48, 48],
         "infer_batch_size": 8, "num_workers": 0}
SHAPE = (48, 40, 16)
SCHEMA = "scripts/t2d_monai/bundle/meta_schema_20240725.json"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ZOO_PYTHON, reason="set T2D_ZOO_PYTHON to the python of a fresh venv (see .ci/run)"),
]


def zoo_requirements(metadata: dict) -> list[str]:
    """The pip requirements that the zoo CI installs for a bundle, from its metadata."""
    reqs = [f"monai=={metadata['monai_version']}", f"torch=={metadata['pytorch_version']}",
            f"numpy=={metadata['numpy_version']}"]
    for key in ("optional_packages_version", "required_packages_version"):
        for name, version in metadata.get(key, {}).items():
            version = str(version).strip()
            reqs.append(f"{name}{version}" if version[0] in "<>=" else f"{name}=={version}")
    return reqs


def run(args: list[str], cwd: Path, pythonpath: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run the fresh python with ``args`` in ``cwd``: PYTHONPATH cleared (or set to ``pythonpath``), one thread."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(OMP_NUM_THREADS="1", PYTHONNOUSERSITE="1", **({"PYTHONPATH": pythonpath} if pythonpath else {}))
    result = subprocess.run([str(ZOO_PYTHON), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A folder outside the repository, the current folder of the 'elsewhere' runs."""
    path = tmp_path_factory.mktemp("zoo")
    assert REPO not in path.parents
    return path


@pytest.fixture(scope="module")
def packaged(work) -> Path:
    """The bundle packaged with a small signed checkpoint, its requirements installed into the fresh python."""
    checkpoint = work / "ckpt" / "model.pt"
    checkpoint.parent.mkdir()
    write_signed_checkpoint(checkpoint, SMALL)
    bundle = Path(package_bundle(str(REPO / "bundles" / "hepatic_vessel"), str(work / "hepatic_vessel"),
                                 model=str(checkpoint), overlays="cpu_small.json", overrides=SMALL))
    found = run(["-c", "import importlib.util; print(importlib.util.find_spec('t2d_monai'))"], work)
    assert found.stdout.strip() == "None", f"T2D_ZOO_PYTHON is not a fresh environment: t2d_monai is {found.stdout}"
    metadata = json.loads((bundle / "configs" / "metadata.json").read_text())
    run(["-m", "pip", "install", "-q", *zoo_requirements(metadata)], work)
    return bundle


@pytest.fixture(scope="module")
def dataset(work) -> Path:
    """A small synthetic MSD-like data set (NIfTI: 3 labelled cases for train.json, 1 test case for inference)."""
    write_dataset(str(work / "data"), num_cases=3, num_test=1, shape=SHAPE)
    return work / "data"


def test_metadata_lists_only_published_packages(packaged):
    metadata = json.loads((packaged / "configs" / "metadata.json").read_text())
    assert "t2d_monai" not in metadata["required_packages_version"]
    assert {"nibabel", "pytorch-ignite", "scikit-image", "tensorboard"} <= set(metadata["required_packages_version"])


def test_verify_metadata(packaged):
    run(["-m", "monai.bundle", "verify_metadata", "--meta_file", "configs/metadata.json", "--filepath", SCHEMA],
        packaged)


def test_check_properties(packaged, dataset, work):
    """``ConfigWorkflow.check_properties()`` of train and inference, with the bundle folder put on sys.path as the
    zoo CI and MONAI Label put it, from another folder; the code is the carried copy."""
    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from monai.bundle import ConfigWorkflow\n"
        "for kind, name in (('train', 'train.json'), ('infer', 'inference.json')):\n"
        "    wf = ConfigWorkflow(config_file=f'{sys.argv[1]}/configs/{name}', workflow_type=kind,\n"
        "                        bundle_root=sys.argv[1], dataset_dir=sys.argv[2])\n"
        "    wf.initialize()\n"
        "    assert wf.check_properties() == [], (kind, wf.check_properties())\n"
        "import t2d_monai; print('T2D_MONAI', t2d_monai.__file__)\n"
    )
    result = run(["-c", script, str(packaged), str(dataset)], work)
    assert Path(result.stdout.split("T2D_MONAI ")[1].strip()) == packaged / "scripts" / "t2d_monai" / "__init__.py"


def test_verify_net_in_out(packaged):
    run(["-m", "monai.bundle", "verify_net_in_out", "network_def", "--meta_file", "configs/metadata.json",
         "--config_file", "configs/inference.json", "--bundle_root", str(packaged)], packaged)


def test_ckpt_export(packaged, work):
    ts = work / "model.ts"
    run(["-m", "monai.bundle", "ckpt_export", "network_def", "--filepath", str(ts), "--ckpt_file",
         "models/model.pt", "--meta_file", "configs/metadata.json", "--config_file", "configs/inference.json",
         "--key_in_ckpt", "model", "--bundle_root", str(packaged)], packaged)
    run(["-c", f"import torch; torch.jit.load({str(ts)!r})"], work)


@pytest.mark.parametrize("where", ["bundle folder", "elsewhere with PYTHONPATH"])
def test_inference(packaged, dataset, work, where):
    """``python -m monai.bundle run`` on the synthetic case: the mask has the input's shape, and the code that ran
    is the bundle's copy of t2d_monai."""
    out = work / f"out_{where.split()[0]}"
    probe = work / "probe.json"  # an overlay that prints where t2d_monai came from before running the evaluator
    probe.write_text(json.dumps({"run": ["$print('T2D_MONAI', t2d_monai.__file__)", "$@evaluator.run()"]}))
    configs = f"['{packaged}/configs/inference.json','{probe}']"
    cwd, pythonpath = (packaged, None) if where == "bundle folder" else (work, str(packaged))
    result = run(["-m", "monai.bundle", "run", "--config_file", configs, "--dataset_dir", str(dataset),
                  "--output_dir", str(out)], cwd, pythonpath)
    assert Path(result.stdout.split("T2D_MONAI ")[1].split()[0]) == packaged / "scripts" / "t2d_monai" / "__init__.py"
    (image,) = sorted((dataset / "imagesTs").glob("*.nii.gz"))
    mask = nib.load(out / image.name.replace(".nii.gz", "_seg.nii.gz"))
    assert mask.shape == nib.load(image).shape == SHAPE
    assert set(np.unique(np.asarray(mask.dataobj))) <= {0, 1}


def test_elsewhere_without_the_bundle_on_sys_path_fails_naming_scripts(packaged, dataset, work):
    """Documented limit: MONAI adds the bundle folder to sys.path only in ``run()``, after ``initialize`` resolved
    the imports; the configs then fail on their first use of t2d_monai, naming ``scripts`` (never another copy)."""
    result = run(["-m", "monai.bundle", "run", "--config_file", f"{packaged}/configs/inference.json",
                  "--dataset_dir", str(dataset), "--output_dir", str(work / "never")], work, check=False)
    assert result.returncode != 0 and "from scripts import t2d_monai" in result.stderr, result.stderr[-3000:]
