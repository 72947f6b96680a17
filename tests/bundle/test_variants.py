"""View variants of a packaged bundle (package_bundle --view): files, metadata, the wrong-view refusal, inference run
from each package as the zoo runs it, the three-view fusion against the source bundle's, and zoo_check."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from t2d_monai.bundle import package_bundle, zoo_check
from t2d_monai.bundle.variants import (
    THREE_VIEWS,
    VARIANTS,
    merge_overlay,
    parse_per_view,
    variant_views,
    weights_urls,
    zoo_bundle_id,
)
from t2d_monai.handlers import CheckpointMismatchError

REPO = Path(__file__).resolve().parents[2]
THREE = ("axial", "coronal", "sagittal")
#: the case's affine: flipped axes, anisotropic spacing and an offset, so that a wrong inverse would show
AFFINE = np.array([[-0.8, 0, 0, 10], [0, -0.8, 0, -20], [0, 0, 2.5, 30], [0, 0, 0, 1]])


@pytest.mark.parametrize(
    "value, views, expected",
    [
        ("a.pt", ("axial",), {"axial": "a.pt"}),
        ("dir,with,commas/a.pt", ("axial",), {"axial": "dir,with,commas/a.pt"}),
        ("sagittal=s.pt", ("sagittal",), {"sagittal": "s.pt"}),
        ("axial=a.pt,coronal=c.pt,sagittal=s.pt", THREE, {"axial": "a.pt", "coronal": "c.pt", "sagittal": "s.pt"}),
        ("sagittal=/x/s.pt", THREE, {"sagittal": "/x/s.pt"}),
        ("a.pt,c.pt,s.pt", THREE, {"axial": "a.pt", "coronal": "c.pt", "sagittal": "s.pt"}),
        ("[a.pt,c.pt,s.pt]", THREE, {"axial": "a.pt", "coronal": "c.pt", "sagittal": "s.pt"}),
        (["a.pt", "c.pt", "s.pt"], THREE, {"axial": "a.pt", "coronal": "c.pt", "sagittal": "s.pt"}),
        ({"coronal": "c.pt"}, THREE, {"coronal": "c.pt"}),
        ("axial=https://h/a.pt?x=1", THREE, {"axial": "https://h/a.pt?x=1"}),
    ],
)
def test_parse_per_view(value, views, expected):
    assert parse_per_view(value, views) == expected


def test_parse_per_view_ill_arg():
    with pytest.raises(ValueError, match="got 2 value"):
        parse_per_view("a.pt,c.pt", THREE)
    with pytest.raises(ValueError, match=r"no slot for the view\(s\) \['axial'\]; its views are \['sagittal'\]"):
        parse_per_view("axial=a.pt", ("sagittal",))
    with pytest.raises(ValueError, match="is not view=value"):
        parse_per_view("axial=a.pt,c.pt", THREE)
    with pytest.raises(ValueError, match="three_views"):
        variant_views("three_view")


def test_names_and_urls():
    from t2d_monai.bundle.variants import Member

    assert VARIANTS == ("axial", "coronal", "sagittal", "three_views") and variant_views(THREE_VIEWS) == THREE
    assert zoo_bundle_id("hepatic_vessel") == "hepatic_vessel_ct_t2d_segmentation"
    assert zoo_bundle_id("hepatic_vessel", THREE_VIEWS) == "hepatic_vessel_three_views_ct_t2d_segmentation"
    members = [Member("axial", "models/model_axial.pt", None), Member("coronal", "models/model.pt", None),
               Member("sagittal", "models/model_sagittal.pt", None)]
    assert weights_urls("https://h/v1/", THREE_VIEWS, members) == {
        "models/model_axial.pt": "https://h/v1/model_axial.pt", "models/model.pt": "https://h/v1/model.pt",
        "models/model_sagittal.pt": "https://h/v1/model_sagittal.pt"}
    with pytest.raises(ValueError, match=r"no URL for the view\(s\) \['coronal', 'sagittal'\]"):
        weights_urls("axial=https://h/a.pt", THREE_VIEWS, members)


def test_merge_overlay_as_the_bundle_runner_does():
    config = {"a": 1, "b": {"x": 1}, "c": [1]}
    merged = merge_overlay(config, {"a": 2, "d": 3, "+b": {"y": 2}, "+c": [2]})
    assert merged == {"a": 2, "b": {"x": 1, "y": 2}, "c": [1, 2], "d": 3}
    assert config == {"a": 1, "b": {"x": 1}, "c": [1]}


# ---- end to end, on small signed checkpoints -------------------------------------------------------------------


@pytest.fixture(scope="module")
def source(bundle, view_checkpoints, tmp_path_factory) -> Path:
    """The bundle with its three trained view models in models/, as training leaves them."""
    root = tmp_path_factory.mktemp("trained") / "hepatic_vessel"
    shutil.copytree(bundle, root)
    (root / "models").mkdir()
    for view, path in view_checkpoints.items():
        shutil.copy2(path, root / "models" / ("model.pt" if view == "coronal" else f"model_{view}.pt"))
    return root


@pytest.fixture(scope="module")
def variants(source, view_checkpoints, small, tmp_path_factory) -> dict[str, Path]:
    """Every variant packaged: the one-view ones with the checkpoint given, three views from the bundle's models/."""
    out = tmp_path_factory.mktemp("variants")
    packages = {}
    for variant in VARIANTS:
        model = None if variant == THREE_VIEWS else str(view_checkpoints[variant])
        packages[variant] = Path(package_bundle(
            str(source), str(out / zoo_bundle_id("hepatic_vessel", variant)), model=model, overlays="cpu_small.json",
            overrides=small, view=variant))
    return packages


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("case") / "case.nii.gz"
    data = np.random.default_rng(0).normal(100, 150, (40, 32, 16)).astype(np.int16)
    nib.save(nib.Nifti1Image(data, AFFINE), str(path))
    return path


def _run_bundle(configs: list[Path], case: Path, out: Path, pythonpath: Path, *args: str) -> None:
    """``python -m monai.bundle run`` in a fresh, empty working directory, with only ``pythonpath`` on PYTHONPATH."""
    cwd = out.parent / f"{out.name}_cwd"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(PYTHONPATH=str(pythonpath), OMP_NUM_THREADS="1")
    config = str([str(c) for c in configs]) if len(configs) > 1 else str(configs[0])
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", config, "--dataset_dir", str(case),
           "--output_dir", str(out), *args]
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert not any(cwd.iterdir()), "nothing is written to the working directory"


@pytest.fixture(scope="module")
def outputs(variants, case, tmp_path_factory):
    """variant -> the mask that the package's own configs/inference.json writes for the case (run once each)."""
    done: dict[str, nib.Nifti1Image] = {}

    def run(variant: str) -> nib.Nifti1Image:
        if variant not in done:
            out = tmp_path_factory.mktemp(f"out_{variant}") / "out"
            _run_bundle([variants[variant] / "configs" / "inference.json"], case, out, variants[variant])
            postfix = "seg_3views" if variant == THREE_VIEWS else "seg"
            done[variant] = nib.load(out / f"case_{postfix}.nii.gz")
        return done[variant]

    return run


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_files_and_metadata(variants, variant, view_checkpoints):
    pkg = variants[variant]
    models = sorted(p.name for p in (pkg / "models").iterdir())
    inference = json.loads((pkg / "configs" / "inference.json").read_text())
    train = json.loads((pkg / "configs" / "train.json").read_text())
    meta = json.loads((pkg / "configs" / "metadata.json").read_text())
    if variant == THREE_VIEWS:
        assert models == ["model.pt", "model_axial.pt", "model_sagittal.pt"]
        for view in THREE:  # the source bundle's files, each in its view's slot
            name = "model.pt" if view == "coronal" else f"model_{view}.pt"
            assert (pkg / "models" / name).read_bytes() == view_checkpoints[view].read_bytes()
        assert inference["inferer"]["_target_"] == "t2d_monai.inferers.MultiViewInferer"
        assert inference["view_fusion"] == "vote" and inference["output_postfix"] == "seg_3views"
        assert train["view"] == "coronal", "train.json trains the coronal member, models/model.pt"
        assert meta["name"] == "Hepatic vessel segmentation with thickened 2D networks, three views"
        assert ("three-view variant" in meta["description"] and "majority vote" in meta["description"]
                and "axial (models/model_axial.pt), coronal (models/model.pt) and sagittal (models/model_sagittal.pt)"
                in meta["description"])
    else:
        assert models == ["model.pt"]
        assert not (pkg / "configs" / "inference_three_views.json").exists(), "no other view to fuse"
        assert (pkg / "models" / "model.pt").read_bytes() == view_checkpoints[variant].read_bytes()
        assert inference["view"] == train["view"] == variant
        assert inference["ckpt_file"] == train["ckpt_file"] == "$@ckpt_dir + '/model.pt'"
        assert meta["name"] == f"Hepatic vessel segmentation with thickened 2D networks, {variant} view"
        assert f"{variant}-view variant" in meta["description"] and "models/model.pt" in meta["description"]
    assert f"version {meta['version']}" in meta["description"]
    assert meta["network_data_format"]["inputs"]["image"]["num_channels"] == 6
    assert (pkg / "docs" / "README.md").read_text().splitlines()[2].startswith(f"**{meta['name']}.** This package")


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_runs_from_its_own_folder(outputs, variant, case):
    """``python -m monai.bundle run --config_file <pkg>/configs/inference.json`` from an empty folder, with only the
    package on PYTHONPATH (its carried code): a binary mask with the input's shape and affine."""
    pred, image = outputs(variant), nib.load(case)
    assert pred.shape == image.shape
    np.testing.assert_allclose(pred.affine, image.affine, atol=1e-5)
    data = np.asarray(pred.dataobj)
    assert set(np.unique(data)) <= {0, 1} and 0 < data.sum() < data.size


@pytest.mark.slow
def test_three_view_package_equals_source_three_view_inference(outputs, source, case, small, tmp_path):
    """The packaged three-view bundle writes, voxel for voxel, what the source bundle writes with
    inference.json + inference_three_views.json (+ the overlay the models were trained with)."""
    configs = [source / "configs" / name for name in ("inference.json", "inference_three_views.json", "cpu_small.json")]
    settings = [a for k, v in small.items() if k != "spatial_size" for a in (f"--{k}", str(v))]
    _run_bundle(configs, case, tmp_path / "out", REPO, *settings)
    want = nib.load(tmp_path / "out" / "case_seg_3views.nii.gz")
    got = outputs(THREE_VIEWS)
    np.testing.assert_array_equal(np.asarray(got.dataobj), np.asarray(want.dataobj))
    np.testing.assert_array_equal(got.affine, want.affine)
    for view in THREE:  # the fusion is not one view's mask
        assert not np.array_equal(np.asarray(outputs(view).dataobj), np.asarray(got.dataobj)), view


@pytest.mark.slow
def test_wrong_view_checkpoint_is_refused(source, view_checkpoints, small, tmp_path):
    c = view_checkpoints
    with pytest.raises(CheckpointMismatchError, match=r"axial slot \(models/model_axial.pt\)(.|\n)*view: the checkpoint "
                       r"was trained with 'sagittal', the config asks for 'axial'"):
        package_bundle(str(source), str(tmp_path / "a"), model=f"axial={c['sagittal']}", overlays="cpu_small.json",
                       overrides=small, view=THREE_VIEWS)
    with pytest.raises(CheckpointMismatchError, match=r"axial slot \(models/model.pt\)(.|\n)*view: the checkpoint "
                       r"was trained with 'sagittal', the config asks for 'axial'"):
        package_bundle(str(source), str(tmp_path / "b"), model=str(c["sagittal"]), overlays="cpu_small.json",
                       overrides=small, view="axial")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.slow
def test_variant_ill_arg(source, view_checkpoints, small, tmp_path):
    with pytest.raises(ValueError, match="package that view with --view axial"):
        package_bundle(str(source), str(tmp_path / "x"), overrides={**small, "view": "axial"})
    with pytest.raises(ValueError, match="--view sagittal but the overlays/overrides set view='axial'"):
        package_bundle(str(source), str(tmp_path / "x"), overrides={**small, "view": "axial"}, view="sagittal")
    with pytest.raises(ValueError, match="leave view out"):
        package_bundle(str(source), str(tmp_path / "x"), overrides={**small, "view": "axial"}, view=THREE_VIEWS)
    with pytest.raises(ValueError, match="three_views"):
        package_bundle(str(source), str(tmp_path / "x"), view="three_view")
    only_coronal = tmp_path / "only_coronal"
    shutil.copytree(source, only_coronal, ignore=shutil.ignore_patterns("model_*.pt"))
    with pytest.raises(FileNotFoundError, match=r"none for \['axial', 'sagittal'\]"):
        package_bundle(str(only_coronal), str(tmp_path / "x"), view=THREE_VIEWS)
    with pytest.raises(FileNotFoundError, match="for the axial view does not exist"):
        package_bundle(str(source), str(tmp_path / "x"), model="axial=nowhere.pt", view=THREE_VIEWS)


@pytest.mark.slow
def test_three_views_from_the_command_line_with_hosted_weights(bundle, view_checkpoints, small, tmp_path):
    """fire reads --view three_views --model axial=...,coronal=...,sagittal=...; large_files.yml lists every model,
    and zoo_check finds them there."""
    from t2d_monai.__main__ import main

    c = view_checkpoints
    out = tmp_path / "hv3.zip"
    main(["package_bundle", str(bundle), str(out), "--view", "three_views", "--model",
          f"axial={c['axial']},coronal={c['coronal']},sagittal={c['sagittal']}", "--overlays", "cpu_small.json",
          "--overrides", json.dumps(small), "--weights_url", "https://example.org/hv/v1/"])
    import zipfile

    with zipfile.ZipFile(out) as z:
        assert not [n for n in z.namelist() if n.startswith("hv3/models/")], "hosted weights are not packaged"
        large = z.read("hv3/large_files.yml").decode()
    for view, name in (("axial", "model_axial.pt"), ("coronal", "model.pt"), ("sagittal", "model_sagittal.pt")):
        assert (f'  - path: "models/{name}"\n    url: "https://example.org/hv/v1/{name}"\n'
                f'    hash_val: "{hashlib.md5(c[view].read_bytes()).hexdigest()}"\n    hash_type: "md5"\n') in large
    with zipfile.ZipFile(out) as z:
        z.extractall(tmp_path)
    report = zoo_check(str(tmp_path / "hv3"), onnx=False)  # hosted weights: the members export with random weights
    assert report["required_files"] == "ok: weights in large_files.yml"
    assert "sagittal random weights (no local models/model_sagittal.pt): equal to eager" in report["torchscript_export"]


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_zoo_check_passes_on_every_variant(variants, variant):
    report = zoo_check(str(variants[variant]), onnx=False)
    assert all(v.startswith("ok") for v in report.values()), report
    views = THREE if variant == THREE_VIEWS else (variant,)
    files = [f"models/{'model.pt' if v == 'coronal' else f'model_{v}.pt'}" for v in views] if len(views) > 1 else [
        "models/model.pt"]
    for view, file in zip(views, files):
        prefix = f"{view} " if len(views) > 1 else ""
        assert f"{prefix}{file}: signature and weights fit" in report["verify_net_in_out"]
        assert f"{prefix}{file}: equal to eager" in report["torchscript_export"]


@pytest.mark.slow
def test_zoo_check_refuses_a_package_that_loads_another_file(variants, tmp_path):
    """A one-view bundle whose inference.json loads anything but models/model.pt would ship weights that MONAI Label
    and the zoo never read."""
    broken = tmp_path / "broken"
    shutil.copytree(variants["axial"], broken)
    inference = json.loads((broken / "configs" / "inference.json").read_text())
    inference["ckpt_file"] = "$@ckpt_dir + '/model_axial.pt'"
    (broken / "configs" / "inference.json").write_text(json.dumps(inference))
    (broken / "models" / "model.pt").rename(broken / "models" / "model_axial.pt")
    with pytest.raises(Exception, match=r"required_files: FAILED: ValueError: configs/inference.json loads "
                       r"\['models/model_axial.pt'\], not models/model.pt"):
        zoo_check(str(broken), onnx=False)
