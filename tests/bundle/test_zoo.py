"""package_bundle and zoo_check on the hepatic_vessel bundle, with a small signed checkpoint (resnet18, 6 slices)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser, ConfigWorkflow, ckpt_export

from t2d_monai.bundle import ZooCheckError, package_bundle, zoo_check
from t2d_monai.bundle.zoo import bake_config
from t2d_monai.handlers import CheckpointMismatchError

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "hepatic_vessel"
SMALL = {"num_slices": 6, "backbone": "resnet18", "decoder_channels": 64, "spatial_size": [48, 48], "infer_batch_size": 8, "num_workers": 0}
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A copy of the bundle with a docs/README.md (written by the lead; a stub here if not there yet)."""
    root = tmp_path_factory.mktemp("src") / "hepatic_vessel"
    shutil.copytree(BUNDLE, root, ignore=shutil.ignore_patterns("models", "eval"))
    readme = root / "docs" / "README.md"
    if not readme.exists():
        readme.write_text("# hepatic_vessel\n")
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained but signed checkpoint of the SMALL settings, in the format the bundle's trainer writes."""
    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "inference.json"))
    parser.update(SMALL)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    state = {"signature": parser.get_parsed_content("signature").state_dict(),
             "model": parser.get_parsed_content("network_def").state_dict()}
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def packaged(bundle, checkpoint, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pkg") / "hepatic_vessel"
    path = package_bundle(str(bundle), str(out), model=str(checkpoint), overlays="cpu_small.json", overrides=SMALL)
    return Path(path)


@pytest.mark.parametrize(
    "values, expected, written",
    [
        ({"a": 2}, {"a": 2, "b": {"c": [1, {"d": 0}]}}, ["a"]),
        ({"b#c#1#d": 5}, {"a": 1, "b": {"c": [1, {"d": 5}]}}, ["b#c#1#d"]),
        ({"z": 1, "b#x": 2, "b#c#7": 3}, {"a": 1, "b": {"c": [1, {"d": 0}]}}, []),
    ],
)
def test_bake_config(values, expected, written):
    config = {"a": 1, "b": {"c": [1, {"d": 0}]}}
    baked, ids = bake_config(config, values)
    assert baked == expected and ids == written
    assert config == {"a": 1, "b": {"c": [1, {"d": 0}]}}, "the input config must not change"


def test_package_bundle_folder(packaged, checkpoint):
    files = {p.relative_to(packaged).as_posix() for p in packaged.rglob("*") if p.is_file()}
    assert {"LICENSE", "docs/README.md", "configs/metadata.json", "configs/inference.json", "configs/train.json",
            "models/model.pt"} <= files
    assert not any("checkpoint" in f or f.startswith("eval") for f in files)
    inference = json.loads((packaged / "configs" / "inference.json").read_text())
    train = json.loads((packaged / "configs" / "train.json").read_text())
    assert inference["num_slices"] == train["num_slices"] == 6 and inference["backbone"] == "resnet18"
    assert inference["device"] == "$torch.device('cpu')"  # from cpu_small.json
    assert "spatial_size" not in inference and train["spatial_size"] == [48, 48]
    assert inference["network_def"]["num_slices"] == "@num_slices", "expressions stay expressions"
    meta = json.loads((packaged / "configs" / "metadata.json").read_text())["network_data_format"]
    assert meta["inputs"]["image"]["num_channels"] == meta["outputs"]["pred"]["num_channels"] == 6
    assert (packaged / "models" / "model.pt").read_bytes() == checkpoint.read_bytes()


def test_package_bundle_zip_and_hosted_weights(bundle, checkpoint, tmp_path):
    archive = package_bundle(str(bundle), str(tmp_path / "hv.zip"), model=str(checkpoint), overrides=SMALL,
                             weights_url="https://example.org/model.pt")
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        large = z.read("hv/large_files.yml").decode()
    assert {"hv/LICENSE", "hv/configs/inference.json", "hv/docs/README.md", "hv/large_files.yml"} <= names
    assert "hv/models/model.pt" not in names, "hosted weights are not packaged"
    assert 'url: "https://example.org/model.pt"' in large
    assert hashlib.md5(checkpoint.read_bytes()).hexdigest() in large and 'path: "models/model.pt"' in large


def test_package_bundle_refuses_checkpoint_of_other_settings(bundle, checkpoint, tmp_path):
    match = "num_slices: the checkpoint was trained with 6, the config asks for 15"
    with pytest.raises(CheckpointMismatchError, match=match):
        package_bundle(str(bundle), str(tmp_path / "a"), model=str(checkpoint))
    unsigned = tmp_path / "unsigned.pt"  # weights only, as other tools save them: the weights themselves must fit
    torch.save({"model": torch.load(checkpoint, weights_only=True)["model"]}, unsigned)
    with pytest.raises(ValueError, match="do not fit network_def"):
        package_bundle(str(bundle), str(tmp_path / "b"), model=str(unsigned))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists(), "nothing is written on failure"


def test_ill_arg(bundle, checkpoint, packaged, tmp_path):
    with pytest.raises(FileExistsError, match="--force"):
        package_bundle(str(bundle), str(packaged), model=str(checkpoint), overrides=SMALL)
    with pytest.raises(ValueError, match=r"\['num_slice'\] are defined in none"):
        package_bundle(str(bundle), str(tmp_path / "x"), overrides={"num_slice": 6})
    with pytest.raises(FileNotFoundError, match="overlay 'nope.json'"):
        package_bundle(str(bundle), str(tmp_path / "x"), overlays="nope.json")
    with pytest.raises(ValueError, match="weights_url needs the checkpoint"):
        package_bundle(str(bundle), str(tmp_path / "x"), weights_url="https://example.org/m.pt")
    with pytest.raises(FileNotFoundError, match="has no configs/metadata.json"):
        package_bundle(str(tmp_path), str(tmp_path / "x"))


def test_zoo_check_passes_on_packaged_bundle(packaged):
    report = zoo_check(str(packaged))
    assert list(report) == ["required_files", "version_in_changelog", "metadata_schema", "verify_net_in_out",
                            "torchscript_export", "onnx_export"]
    assert all(v.startswith("ok") for v in report.values()), report
    assert "models/model.pt: equal to eager" in report["torchscript_export"]
    assert "models/model.pt: equal to eager" in report["onnx_export"]


def test_zoo_check_reports_every_failure(packaged, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(packaged, broken)
    (broken / "docs" / "README.md").unlink()
    meta = json.loads((broken / "configs" / "metadata.json").read_text())
    meta["version"] = "0.2.0"
    (broken / "configs" / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ZooCheckError) as info:
        zoo_check(str(broken), onnx=False)
    message = str(info.value)
    assert "required_files: FAILED: FileNotFoundError: missing in" in message and "docs/README.md" in message
    assert "version_in_changelog: FAILED: ValueError: version '0.2.0' is not a key of changelog" in message
    assert "torchscript_export: ok" in message, "the other steps still run"


def test_torchscript_overlay_runs_the_exported_model_like_eager(packaged, tmp_path):
    from t2d_monai.data.synthetic import synth

    data = tmp_path / "data"
    synth(out=str(data), num_cases=1, num_test=1, seed=1, shape=[40, 32, 16])
    configs = packaged / "configs"
    ckpt_export(net_id="network_def", filepath=str(packaged / "models" / "model.ts"),
                ckpt_file=str(packaged / "models" / "model.pt"), meta_file=str(configs / "metadata.json"),
                config_file=str(configs / "inference.json"), key_in_ckpt="model", bundle_root=str(packaged))
    (image,) = sorted((data / "imagesTs").glob("*.nii.gz"))

    def infer(name: str, files: list[str], threshold: float) -> np.ndarray:
        wf = ConfigWorkflow(config_file=[str(configs / f) for f in files], meta_file=str(configs / "metadata.json"),
                            logging_file=str(configs / "logging.conf"), workflow_type="infer",
                            bundle_root=str(packaged), dataset_dir=str(data), output_dir=str(tmp_path / "out"),
                            threshold=threshold)
        wf.initialize()
        wf.run()
        wf.finalize()
        return np.asarray(nib.load(tmp_path / "out" / image.name.replace(".nii.gz", f"_{name}.nii.gz")).dataobj)

    # an untrained network's probabilities sit near 0.5: find a threshold that splits them, so that the
    # comparison below is not between two all-ones or all-zeros volumes
    outputs = {}
    for threshold in (0.5, 0.49, 0.51, 0.48, 0.52, 0.45, 0.55):
        outputs["seg"] = infer("seg", ["inference.json"], threshold)
        if 0 < outputs["seg"].sum() < outputs["seg"].size:
            break
    outputs["seg_ts"] = infer("seg_ts", ["inference.json", "inference_torchscript.json"], threshold)
    assert outputs["seg"].shape == (40, 32, 16) and 0 < outputs["seg"].sum() < outputs["seg"].size
    np.testing.assert_array_equal(outputs["seg_ts"], outputs["seg"])


def test_commands_from_the_command_line(bundle, checkpoint, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "t2d_monai", "package_bundle", str(bundle), str(out), "--model", str(checkpoint),
           "--overlays", "cpu_small.json", "--overrides", json.dumps(SMALL)]
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=300)
    assert (out / "models" / "model.pt").is_file()
    shutil.rmtree(out / "models")
    result = subprocess.run([sys.executable, "-m", "t2d_monai", "zoo_check", str(out), "--onnx", "False"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "missing in" in result.stderr
    assert "models/model.pt (or large_files.yml" in result.stderr
