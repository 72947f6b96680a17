"""package_bundle (and its command line) on the hepatic_vessel bundle."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from t2d_monai.bundle import package_bundle
from t2d_monai.bundle.packaging import bake_config
from t2d_monai.handlers import CheckpointMismatchError

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


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
    assert not any(f.startswith(("models/checkpoint", "eval")) for f in files), "no training state, no outputs"
    inference = json.loads((packaged / "configs" / "inference.json").read_text())
    train = json.loads((packaged / "configs" / "train.json").read_text())
    assert inference["num_slices"] == train["num_slices"] == 6 and inference["backbone"] == "resnet18"
    assert inference["device"] == "$torch.device('cpu')"  # from cpu_small.json
    assert "spatial_size" not in inference and train["spatial_size"] == [48, 48]
    assert inference["network_def"]["num_slices"] == "@num_slices", "expressions stay expressions"
    meta = json.loads((packaged / "configs" / "metadata.json").read_text())["network_data_format"]
    assert meta["inputs"]["image"]["num_channels"] == meta["outputs"]["pred"]["num_channels"] == 6
    assert list(meta["inputs"]["image"]["channel_def"]) == list(meta["outputs"]["pred"]["channel_def"]) == [
        str(i) for i in range(6)
    ]
    # cpu_small.json's instance norm (learnt shift) needs 2x2 values at stride 16: slice sides multiples of 32
    assert inference["norm"] == ["instance", {"affine": True}]
    assert meta["inputs"]["image"]["spatial_shape"] == meta["outputs"]["pred"]["spatial_shape"] == ["32*n", "32*n"]
    assert (packaged / "models" / "model.pt").read_bytes() == checkpoint.read_bytes()


def test_package_bundle_zip_and_hosted_weights(bundle, checkpoint, small, tmp_path):
    archive = package_bundle(str(bundle), str(tmp_path / "hv.zip"), model=str(checkpoint), overlays="cpu_small.json",
                             overrides=small, weights_url="https://example.org/model.pt")
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


def test_ill_arg(bundle, checkpoint, packaged, small, tmp_path):
    with pytest.raises(FileExistsError, match="--force"):
        package_bundle(str(bundle), str(packaged), model=str(checkpoint), overrides=small)
    with pytest.raises(ValueError, match=r"\['num_slice'\] are defined in none"):
        package_bundle(str(bundle), str(tmp_path / "x"), overrides={"num_slice": 6})
    with pytest.raises(FileNotFoundError, match="overlay 'nope.json'"):
        package_bundle(str(bundle), str(tmp_path / "x"), overlays="nope.json")
    with pytest.raises(ValueError, match="weights_url needs the checkpoint"):
        package_bundle(str(bundle), str(tmp_path / "x"), weights_url="https://example.org/m.pt")
    with pytest.raises(FileNotFoundError, match="has no configs/metadata.json"):
        package_bundle(str(tmp_path), str(tmp_path / "x"))



def test_commands_from_the_command_line(bundle, checkpoint, small, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "t2d_monai", "package_bundle", str(bundle), str(out), "--model", str(checkpoint),
           "--overlays", "cpu_small.json", "--overrides", json.dumps(small)]
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=300)
    assert (out / "models" / "model.pt").is_file()
    shutil.rmtree(out / "models")
    result = subprocess.run([sys.executable, "-m", "t2d_monai", "zoo_check", str(out), "--onnx", "False"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "missing in" in result.stderr
    assert "models/model.pt (or large_files.yml" in result.stderr


def test_shipped_metadata_describes_every_slab_channel():
    """The source bundle's metadata: one input channel per CT slice and one output logit per slice, as many as
    train.json's num_slices, worded as slab_channel_def words them."""
    from t2d_monai.bundle.packaging import slab_channel_def

    configs = Path(__file__).resolve().parents[2] / "bundles" / "hepatic_vessel" / "configs"
    num_slices = json.loads((configs / "train.json").read_text())["num_slices"]
    fmt = json.loads((configs / "metadata.json").read_text())["network_data_format"]
    for section, name in (("inputs", "image"), ("outputs", "pred")):
        entry = fmt[section][name]
        assert entry["num_channels"] == num_slices
        assert entry["channel_def"] == slab_channel_def(num_slices, section)


@pytest.mark.parametrize("norm, side", [("instance", "32"), (["instance", {"affine": True}], "32"),
                                        ("INSTANCE", "32"), ("batch", "16"), (["group", {"num_groups": 8}], "16")])
def test_packaged_spatial_shape_follows_the_norm_in_any_spelling(norm, side):
    """Instance norm in any of MONAI's spellings (a name, or a name with arguments) makes the slice sides multiples of
    32; any other norm leaves them multiples of 16."""
    from t2d_monai.bundle.packaging import _sync_metadata

    meta = {"network_data_format": {"inputs": {"image": {"spatial_shape": ["16*n", "16*n"]}}}}
    _sync_metadata(meta, {"num_slices": 6, "norm": norm})
    assert meta["network_data_format"]["inputs"]["image"]["spatial_shape"] == [f"{side}*n"] * 2


def test_packaged_bundle_carries_its_code(packaged):
    """scripts/t2d_monai holds byte-identical copies of the modules the configs need (not the benchmarks, the demo,
    the command line), the configs import it through scripts, and the metadata requires published packages only."""
    import importlib.metadata

    import t2d_monai
    from t2d_monai.bundle.carry import CARRIED_IMPORT

    source = Path(t2d_monai.__file__).resolve().parent
    carried = packaged / "scripts" / "t2d_monai"
    files = sorted(p.relative_to(carried) for p in carried.rglob("*") if p.is_file())
    assert {Path("__init__.py"), Path("networks/nets/t2dnet.py"), Path("bundle/meta_schema_20240725.json")} <= set(files)
    assert not [f for f in files if f.parts[0] in ("benchmarks", "demo.py", "__main__.py", "visualize.py")]
    assert not [f for f in files if "__pycache__" in f.parts or f.suffix == ".pyc"]
    for f in files:
        assert (carried / f).read_bytes() == (source / f).read_bytes(), f
    assert "import t2d_monai" in (packaged / "scripts" / "__init__.py").read_text()
    for name in ("inference.json", "train.json"):
        imports = json.loads((packaged / "configs" / name).read_text())["imports"]
        assert CARRIED_IMPORT in imports and "$import t2d_monai" not in imports
    required = json.loads((packaged / "configs" / "metadata.json").read_text())["required_packages_version"]
    assert "t2d_monai" not in required and "t2d-monai" not in required
    assert {"nibabel", "pytorch-ignite", "scikit-image", "tensorboard"} <= set(required)
    for dist, version in required.items():  # published names, installed here at the listed version
        assert importlib.metadata.version(dist) == version, dist


def test_package_bundle_without_carried_code(bundle, checkpoint, small, tmp_path):
    out = Path(package_bundle(str(bundle), str(tmp_path / "plain"), model=str(checkpoint), overlays="cpu_small.json",
                              overrides=small, carry_code=False))
    assert not (out / "scripts").exists()
    assert "$import t2d_monai" in json.loads((out / "configs" / "inference.json").read_text())["imports"]
    assert "t2d_monai" in json.loads((out / "configs" / "metadata.json").read_text())["required_packages_version"]


def test_carried_closure_covers_function_level_imports(tmp_path):
    """The closure follows imports inside functions too (the carried code must be complete for every call), while
    only module-level imports of other packages become requirements."""
    from t2d_monai.bundle.carry import import_closure, package_modules, required_packages

    modules = package_modules()
    closure = import_closure(["t2d_monai.bundle.checks"], modules)
    assert {"t2d_monai", "t2d_monai.bundle", "t2d_monai.handlers.checkpoint"} <= closure
    assert "onnxruntime" not in required_packages(import_closure(["t2d_monai.bundle.zoo_check"], modules), {}, modules)


def test_shipped_metadata_names_the_written_labels():
    """MONAI Label shows the labels of the written label map (segmentation_labels), not the network's
    per-slice logit channels."""
    configs = Path(__file__).resolve().parents[2] / "bundles" / "hepatic_vessel" / "configs"
    meta = json.loads((configs / "metadata.json").read_text())
    assert meta["segmentation_labels"] == {"vessel": 1}


def test_eval_metrics_come_from_an_evaluation_run(bundle, checkpoint, small, tmp_path):
    """eval_dir: the summary that evaluating writes (MONAI's MetricsSaver, name,value lines) fills eval_metrics."""
    from t2d_monai.bundle.packaging import eval_metrics_from

    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    (eval_dir / "metrics.csv").write_text("val_mean_dice,0.61234\nval_hd95,12.5\nval_cldice,0.5\n")
    out = package_bundle(str(bundle), str(tmp_path / "pkg"), model=str(checkpoint), overlays="cpu_small.json",
                         overrides=small, eval_dir=str(eval_dir), carry_code=False)
    meta = json.loads((Path(out) / "configs" / "metadata.json").read_text())
    assert meta["eval_metrics"] == {"mean_dice": 0.6123, "hd95": 12.5, "cldice": 0.5}
    with pytest.raises(FileNotFoundError, match="run the evaluation"):
        eval_metrics_from(str(tmp_path / "nowhere"))
    (eval_dir / "metrics.csv").write_text("val_mean_dice;0.6\n")
    with pytest.raises(ValueError, match="is not 'name,number'"):
        eval_metrics_from(str(eval_dir))
    with pytest.raises(ValueError, match="model=... as well"):
        package_bundle(str(bundle), str(tmp_path / "pkg2"), overlays="cpu_small.json", overrides=small,
                       eval_dir=str(eval_dir))
