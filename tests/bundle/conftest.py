"""Fixtures of the packaging and zoo-check tests: a bundle copy and a small signed checkpoint (resnet18, 6 slices)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser

from t2d_monai.bundle import package_bundle

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "hepatic_vessel"
SMALL = {"num_slices": 6, "backbone": "resnet18", "decoder_channels": 64, "spatial_size": [48, 48], "infer_batch_size": 8, "num_workers": 0}


@pytest.fixture(scope="session")
def small() -> dict:
    """Small network and slice settings that the packaging tests train nothing with (copy: tests may not mutate it)."""
    return dict(SMALL)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A copy of the bundle with a docs/README.md (written by the lead; a stub here if not there yet)."""
    root = tmp_path_factory.mktemp("src") / "hepatic_vessel"
    shutil.copytree(BUNDLE, root, ignore=shutil.ignore_patterns("models", "eval"))
    readme = root / "docs" / "README.md"
    if not readme.exists():
        readme.write_text("# hepatic_vessel\n")
    return root


def signed_checkpoint(path: Path, view: str | None = None, seed: int = 0) -> Path:
    """Write an untrained but signed checkpoint of ``cpu_small.json`` with the SMALL settings, in the format the
    bundle's trainer writes, trained (as its signature says) for ``view`` (default: the config's, coronal)."""
    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "configs" / "inference.json"), str(BUNDLE / "configs" / "cpu_small.json")])
    parser.update({**SMALL, **({"view": view} if view else {})})
    torch.manual_seed(seed)
    state = {"signature": parser.get_parsed_content("signature").state_dict(),
             "model": parser.get_parsed_content("network_def").state_dict()}
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained but signed checkpoint of ``cpu_small.json`` with the SMALL settings (coronal view)."""
    return signed_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt")


@pytest.fixture(scope="module")
def view_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """One signed SMALL checkpoint per view (view -> file), each with other random weights."""
    folder = tmp_path_factory.mktemp("views")
    return {view: signed_checkpoint(folder / f"{view}.pt", view, seed) for seed, view in
            enumerate(("axial", "coronal", "sagittal"), start=1)}


@pytest.fixture(scope="module")
def packaged(bundle, checkpoint, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pkg") / "hepatic_vessel"
    path = package_bundle(str(bundle), str(out), model=str(checkpoint), overlays="cpu_small.json", overrides=SMALL)
    return Path(path)


