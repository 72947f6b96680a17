"""A real MONAI Label server (apps/t2d_label) serving the packaged hepatic_vessel bundle on 127.0.0.1.

Runs only where ``monailabel`` is installed (its own virtual environment, see docs/monailabel.md and .ci/run):
package the bundle with a small signed checkpoint, start the server on a free port, infer through the REST API,
compare with the bundle's own inference, send bad input, train through MONAI Label, stop the server.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("monailabel")

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import requests  # noqa: E402
import torch  # noqa: E402
from monai.bundle import ConfigWorkflow  # noqa: E402

from t2d_monai.benchmarks.monailabel_load import (  # noqa: E402
    load_test,
    prepare_studies,
    serve,
    write_signed_checkpoint,
)
from t2d_monai.bundle import package_bundle  # noqa: E402
from t2d_monai.bundle.layout import bundle_on_sys_path  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "hepatic_vessel"
SHAPE = (48, 40, 20)
#: baked into the served configs (MONAI Label reads configs/inference.json and configs/train.json alone)
SMALL = {
    "num_slices": 6, "backbone": "resnet18", "decoder_channels": 64, "spatial_size": [48, 48], "iterations_per_epoch": 2,
    "lr_milestones": [3],
    "val_interval": 1, "volumes_per_batch": 1, "slabs_per_volume": 2, "infer_batch_size": 8, "num_workers": 0,
}
pytestmark = pytest.mark.slow


def _signed_checkpoint(path: Path, case: Path) -> float:
    """Save an untrained, signed checkpoint of ``cpu_small.json`` with the SMALL settings; return a threshold that marks ~20% of ``case``
    as vessel (an untrained network's probabilities sit near 0.5), so that the Dice comparison is not 0 == 0."""
    parser, net = write_signed_checkpoint(path, SMALL)
    image = parser.get_parsed_content("preprocessing")({"image": str(case)})["image"]
    with torch.no_grad():
        probabilities = parser.get_parsed_content("inferer")(image[None], net)
    return float(np.quantile(probabilities.numpy(), 0.8))


def _dice(pred: np.ndarray, truth: np.ndarray) -> float:
    pred, truth = pred > 0, truth == 1
    return float(2 * (pred & truth).sum() / max(pred.sum() + truth.sum(), 1))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("label")
    paths = prepare_studies(tmp, SHAPE, num_cases=4)  # the last case stays unlabelled: the one we infer on
    data, studies, images, app = paths["data"], paths["studies"], paths["images"], paths["app"]
    case = images[-1]
    checkpoint = tmp / "model.pt"
    threshold = _signed_checkpoint(checkpoint, case)
    served = Path(package_bundle(str(BUNDLE), str(app / "model" / "hepatic_vessel"), model=str(checkpoint),
                                 overlays="cpu_small.json", overrides={**SMALL, "threshold": threshold}))
    package_bundle(str(BUNDLE), str(app / "model" / "untrained"), overlays="cpu_small.json", overrides=SMALL)
    truncated = Path(package_bundle(str(BUNDLE), str(app / "model" / "truncated"), model=str(checkpoint),
                                    overlays="cpu_small.json", overrides=SMALL)) / "models" / "model.pt"
    truncated.write_bytes(truncated.read_bytes()[:100_000])  # an interrupted copy of the weights
    # the other two views beside model.pt (the coronal model): served as hepatic_vessel_<view> and _three_views
    for view in ("axial", "sagittal"):
        write_signed_checkpoint(served / "models" / f"model_{view}.pt", {**SMALL, "view": view})
    # a package of the three-view fusion (package_bundle --view three_views): its inference.json fuses
    package_bundle(str(BUNDLE), str(app / "model" / "hv3"), overlays="cpu_small.json",
                   overrides={**SMALL, "threshold": threshold}, view="three_views",
                   model={"coronal": str(checkpoint), **{v: str(served / "models" / f"model_{v}.pt")
                                                         for v in ("axial", "sagittal")}})

    with serve(app, studies, ["hepatic_vessel", "untrained", "truncated", "hv3"], tmp / "server.log") as url:
        yield {"url": url, "bundle": served, "case": case, "label": data / "labelsTr" / case.name, "tmp": tmp,
               "log": tmp / "server.log", "images": images}


def _infer(url: str, image: Path, out: Path, model: str = "hepatic_vessel") -> requests.Response:
    with open(image, "rb") as f:
        response = requests.post(f"{url}/infer/{model}", params={"output": "image"},
                                 files={"file": (image.name, f)}, data={"params": json.dumps({"device": "cpu"})},
                                 timeout=300)
    if response.ok:
        out.write_bytes(response.content)
    return response


def test_info_serves_the_bundle_and_names_the_untrained_one(server):
    info = requests.get(f"{server['url']}/info/", timeout=30).json()
    model = info["models"]["hepatic_vessel"]
    version = json.loads((BUNDLE / "configs" / "metadata.json").read_text())["version"]
    assert model["labels"] == {"vessel": 1} and model["dimension"] == 3 and model["version"] == version
    assert "untrained" not in info["models"], "a bundle without weights must not be served"
    assert "has no trained weights" in info["unavailable_models"]["untrained"]
    assert {"hepatic_vessel", "untrained"} <= set(info["trainers"])


def test_skip_trainers_serves_inference_only(server, tmp_path):
    """``--conf skip_trainers true`` (MONAI Label's switch): the bundle is served, no trainer is offered."""
    # a server of its own: copies of the app and the studies (each server writes into both)
    studies, app = tmp_path / "studies", tmp_path / "app"
    shutil.copytree(server["tmp"] / "studies", studies, symlinks=True)
    shutil.copytree(server["tmp"] / "app", app, symlinks=True, ignore=shutil.ignore_patterns("logs", "*.log"))
    with serve(app, studies, ["hepatic_vessel"], tmp_path / "server.log", conf={"skip_trainers": "true"}) as url:
        info = requests.get(f"{url}/info/", timeout=30).json()
        assert "hepatic_vessel" in info["models"] and not info["trainers"]
        response = requests.post(f"{url}/train/hepatic_vessel?run_sync=true", json={"max_epochs": 1}, timeout=120)
        assert response.status_code == 409 and "skip_trainers" in response.json()["detail"]
        # an asynchronous request: MONAI Label accepts it and runs the app in a background process, where the same
        # refusal ends the task with ERROR and the reason in its log; nothing is trained
        before = sorted((app / "model" / "hepatic_vessel" / "models").iterdir())
        response = requests.post(f"{url}/train/hepatic_vessel", json={"max_epochs": 1}, timeout=120)
        assert response.ok, response.text
        deadline, task = time.monotonic() + 300, {}
        while time.monotonic() < deadline:
            task = requests.get(f"{url}/train/", timeout=30).json()
            if task.get("status") not in ("SUBMITTED", "RUNNING"):
                break
            time.sleep(1)
        assert task.get("status") == "ERROR", task
        assert any("skip_trainers" in line for line in task.get("details", [])), task
        assert sorted((app / "model" / "hepatic_vessel" / "models").iterdir()) == before, "nothing may be trained"


def test_inference_equals_the_bundles_own_inference(server, tmp_path):
    served = tmp_path / "served.nii.gz"
    response = _infer(server["url"], server["case"], served)
    assert response.status_code == 200, response.text
    pred, image = nib.load(served), nib.load(server["case"])
    assert pred.shape == image.shape == SHAPE
    np.testing.assert_allclose(pred.affine, image.affine, atol=1e-4)

    bundle = server["bundle"]
    configs = bundle / "configs"
    with bundle_on_sys_path(bundle):  # as MONAI Label does, so that the packaged configs import scripts/
        wf = ConfigWorkflow(config_file=str(configs / "inference.json"), meta_file=str(configs / "metadata.json"),
                            logging_file=str(configs / "logging.conf"), workflow_type="infer",
                            bundle_root=str(bundle), dataset_dir=str(server["case"]), output_dir=str(tmp_path / "own"))
        wf.initialize()
        wf.run()
        wf.finalize()
    own = np.asarray(nib.load(tmp_path / "own" / server["case"].name.replace(".nii.gz", "_seg.nii.gz")).dataobj)
    truth = np.asarray(nib.load(server["label"]).dataobj)
    served_pred = np.asarray(pred.dataobj)
    assert 0 < own.sum() < own.size, "the comparison needs a prediction that is neither empty nor full"
    assert _dice(served_pred, truth) == pytest.approx(_dice(own, truth), abs=1e-6)
    assert (served_pred.astype(bool) != own.astype(bool)).sum() == 0


def test_bad_input_is_answered_clearly_and_the_server_keeps_serving(server, tmp_path):
    flat = tmp_path / "flat.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((48, 40), np.int16), np.eye(4)), str(flat))
    response = _infer(server["url"], flat, tmp_path / "unused.nii.gz")
    assert response.status_code == 422
    assert "is a 2D image of shape (48, 40)" in response.json()["detail"]

    # thinner than the 6-slice window along the coronal view (Y = 3): segmented as the bundle does, padded slices
    thin = tmp_path / "thin.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((32, 3, 12), np.int16), np.diag([0.8, 2.0, 2.5, 1.0])), str(thin))
    response = _infer(server["url"], thin, tmp_path / "thin_seg.nii.gz")
    assert response.status_code == 200, response.text
    assert nib.load(tmp_path / "thin_seg.nii.gz").shape == (32, 3, 12)

    with open(server["case"], "rb") as f:  # a bundle without weights: a clear refusal, never a random network
        response = requests.post(f"{server['url']}/infer/untrained", params={"output": "image"},
                                 files={"file": (server["case"].name, f)}, timeout=60)
    assert response.status_code == 503 and "has no trained weights" in response.json()["detail"]
    with open(server["case"], "rb") as f:  # weights cut short: the server's fault, named with the fix
        response = requests.post(f"{server['url']}/infer/truncated", params={"output": "image"},
                                 files={"file": (server["case"].name, f)}, timeout=60)
    assert response.status_code == 503 and "truncated or corrupted" in response.json()["detail"], response.text

    assert requests.get(f"{server['url']}/info/", timeout=30).ok
    assert _infer(server["url"], server["case"], tmp_path / "again.nii.gz").status_code == 200


def test_training_through_monailabel(server, tmp_path):
    models = server["bundle"] / "models"
    before = torch.load(models / "model.pt", weights_only=True)
    response = requests.post(f"{server['url']}/train/hepatic_vessel", params={"run_sync": "true"},
                             json={"max_epochs": 1, "val_split": 0.5, "device": "cpu", "multi_gpu": False}, timeout=600)
    assert response.status_code == 200, response.text
    state = torch.load(models / "checkpoint.pt", weights_only=True)
    assert state["trainer"]["iteration"] == 2, server["log"].read_text()[-5000:]
    after = torch.load(models / "model.pt", weights_only=True)
    assert after["signature"] == before["signature"]
    assert any(not torch.equal(after["model"][k], before["model"][k]) for k in before["model"]), "weights must change"
    # the server picks up the new weights
    assert _infer(server["url"], server["case"], tmp_path / "trained.nii.gz").status_code == 200
    # and reports the validation's metrics, the vessel metrics of evaluate.json among them (MONAI Label's own
    # bundle trainer reports none)
    stats = requests.get(f"{server['url']}/info/", timeout=30).json()["train_stats"]["hepatic_vessel"]
    assert {"val_mean_dice", "val_hd95", "val_surface_dice", "val_cldice"} <= set(stats["metrics"]), stats
    assert stats["key_metric_name"] == "val_mean_dice" and 0.0 <= stats["best_metric"] <= 1.0
    assert 0.0 <= stats["metrics"]["val_cldice"] <= 1.0


def test_concurrent_requests_while_training(server):
    """16 inference requests at once and a training request beside them: every one answered with exactly the
    single-request answer for its input, nothing half-written, the server still serving afterwards."""
    images = server["images"][:3]
    result = load_test(server["url"], images, "hepatic_vessel", requests=16, concurrency=16, train_model="untrained")
    assert result["answered"] == 16 and result["equal"] == 16, result["rows"]
    assert result["training"] is not None and result["training"]["status"] == 200, result["training"]
    assert result["serving_after"]
    assert 0 < result["p50_s"] <= result["p90_s"] <= result["p99_s"] <= result["max_s"] and result["throughput_per_s"] > 0
    trained = server["bundle"].parent / "untrained" / "models"
    # no partial write left
    assert sorted(p.name for p in trained.iterdir()) == ["checkpoint.pt", "model.pt", "train_stats.json"]


def test_models_all_lists_every_bundle(server, tmp_path):
    """``--conf models all``: every bundle of ``<app>/model/`` and of the bundles folder (here a copy of the
    repository's bundles/, whose target bundles have no weights): the trained one is served, the others are listed
    under unavailable_models with the reason and offered for training; the recipe folder is not a bundle."""
    studies, app, bundles = tmp_path / "studies", tmp_path / "app", tmp_path / "bundles"
    shutil.copytree(server["tmp"] / "studies", studies, symlinks=True)
    shutil.copytree(server["tmp"] / "app", app, symlinks=True, ignore=shutil.ignore_patterns("logs", "*.log"))
    shutil.copytree(REPO / "bundles", bundles, ignore=shutil.ignore_patterns("models", "eval"))
    targets = {"pancreas", "duodenum", "portal_splenic_vein", "superior_mesenteric_artery", "celiac_artery"}
    with serve(app, studies, ["all"], tmp_path / "server.log", conf={"bundles_dir": str(bundles)}) as url:
        info = requests.get(f"{url}/info/", timeout=30).json()
    assert "hepatic_vessel" in info["models"]  # <app>/model/ wins over the bundles folder on a name clash
    assert targets <= set(info["unavailable_models"]) and not targets & set(info["models"])
    assert all("has no trained weights" in info["unavailable_models"][t] for t in targets)
    assert targets | {"hepatic_vessel"} <= set(info["trainers"])
    assert "_recipe" not in info["unavailable_models"] and "_recipe" not in info["trainers"]


def _own_inference(bundle: Path, configs: list[str], image: Path, out: Path, **overrides) -> np.ndarray:
    """The bundle's own inference (``monai.bundle``'s ConfigWorkflow over ``configs``) of ``image``."""
    with bundle_on_sys_path(bundle):  # as MONAI Label does, so that the packaged configs import scripts/
        wf = ConfigWorkflow(config_file=[str(bundle / "configs" / c) for c in configs],
                            meta_file=str(bundle / "configs" / "metadata.json"),
                            logging_file=str(bundle / "configs" / "logging.conf"), workflow_type="infer",
                            bundle_root=str(bundle), dataset_dir=str(image), output_dir=str(out), **overrides)
        wf.initialize()
        wf.run()
        wf.finalize()
    return np.asarray(nib.load(next(out.glob("*.nii.gz"))).dataobj)


def test_every_view_and_the_fusion_are_models(server):
    """Each view of a bundle and its three-view fusion are listed as models; a view without weights is listed
    under unavailable_models with the reason; the fusion has no trainer, each view has one."""
    info = requests.get(f"{server['url']}/info/", timeout=30).json()
    views = {f"hepatic_vessel_{v}" for v in ("axial", "coronal", "sagittal", "three_views")}
    assert views | {"hepatic_vessel", "hv3"} <= set(info["models"])
    assert "hv3_axial" not in info["models"]  # a three-view package serves its fusion, under its own name
    assert "untrained_axial" in info["unavailable_models"]
    assert "models/model_axial.pt missing" in info["unavailable_models"]["untrained_axial"]
    assert {"hepatic_vessel_axial", "hepatic_vessel_sagittal"} <= set(info["trainers"])
    assert "hepatic_vessel_three_views" not in info["trainers"] and "hv3" not in info["trainers"]


@pytest.mark.parametrize("model, configs, overrides", [
    ("hepatic_vessel_axial", ["inference.json"], {"view": "axial"}),
    ("hepatic_vessel_three_views", ["inference.json", "inference_three_views.json"], {}),
])
def test_view_and_fusion_equal_the_bundles_own_inference(server, tmp_path, model, configs, overrides):
    served = tmp_path / "served.nii.gz"
    response = _infer(server["url"], server["case"], served, model=model)
    assert response.status_code == 200, response.text
    pred = nib.load(served)
    assert pred.shape == nib.load(server["case"]).shape
    own = _own_inference(server["bundle"], configs, server["case"], tmp_path / "own", **overrides)
    assert (np.asarray(pred.dataobj).astype(bool) != own.astype(bool)).sum() == 0


def test_three_view_package_equals_its_own_inference(server, tmp_path):
    """The package made with --view three_views (its inference.json fuses) serves what it segments itself."""
    package = server["bundle"].parent / "hv3"
    served = tmp_path / "served.nii.gz"
    response = _infer(server["url"], server["case"], served, model="hv3")
    assert response.status_code == 200, response.text
    own = _own_inference(package, ["inference.json"], server["case"], tmp_path / "own")
    pred = np.asarray(nib.load(served).dataobj)
    assert pred.shape == own.shape and (pred.astype(bool) != own.astype(bool)).sum() == 0


def test_training_a_view_trains_that_view(server, tmp_path):
    models = server["bundle"] / "models"
    coronal_before = (models / "model.pt").read_bytes()
    before = torch.load(models / "model_axial.pt", weights_only=True)
    response = requests.post(f"{server['url']}/train/hepatic_vessel_axial", params={"run_sync": "true"},
                             json={"max_epochs": 1, "val_split": 0.5, "device": "cpu", "multi_gpu": False}, timeout=600)
    assert response.status_code == 200, response.text
    after = torch.load(models / "model_axial.pt", weights_only=True)
    assert after["signature"] == before["signature"] and after["signature"]["view"] == "axial"
    assert any(not torch.equal(after["model"][k], before["model"][k]) for k in before["model"]), "weights must change"
    assert (models / "model.pt").read_bytes() == coronal_before, "training the axial view must leave coronal alone"
    assert _infer(server["url"], server["case"], tmp_path / "axial.nii.gz", model="hepatic_vessel_axial").status_code == 200
