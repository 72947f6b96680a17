"""Each config value of the hepatic_vessel bundle is defined once: no block repeated within a config file, and
the values that train.json and inference.json must both hold (MONAI Label and the model zoo read each file
alone, so they cannot reference each other) are equal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

CONFIGS = Path(__file__).resolve().parents[2] / "bundles" / "hepatic_vessel" / "configs"
#: top-level ids both standalone configs define; they must agree
SHARED_IDS = ("view", "num_slices", "group_size", "stride", "backbone", "output_stride", "decoder_channels",
              "fusion", "attention", "decoder", "norm", "weighting", "pad_ends", "slab_margin", "hu_window",
              "infer_batch_size", "dataset_dir", "ckpt_dir", "ckpt_file", "signature", "device", "amp")


def _load(name: str) -> dict:
    return json.loads((CONFIGS / name).read_text())


def _blocks(node, path="") -> list[tuple[str, str]]:
    """(id, canonical JSON) of every dict with at least three keys in ``node``."""
    found = []
    if isinstance(node, dict):
        if len(node) >= 3:
            found.append((path, json.dumps(node, sort_keys=True)))
        for key, value in node.items():
            found += _blocks(value, f"{path}#{key}" if path else key)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _blocks(value, f"{path}#{i}")
    return found


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.json")) + ["baselines/patch3d.json"])
def test_no_block_repeated_within_a_config(name):
    seen: dict[str, str] = {}
    for path, text in _blocks(_load(name)):
        assert text not in seen, f"{name}: {path} repeats {seen[text]}; define it once and reference it (@id)"
        seen[text] = path


def test_standalone_configs_agree():
    train, inference = _load("train.json"), _load("inference.json")
    for key in SHARED_IDS:
        assert train[key] == inference[key], f"{key} differs between train.json and inference.json"
    net_train = {k: v for k, v in train["network_def"].items() if k != "pretrained"}  # ImageNet init: training only
    assert net_train == inference["network_def"]
    assert train["validate"]["inferer"] == inference["slab_inferer"]


def test_three_view_overlay_references_the_single_view_blocks():
    three = _load("inference_three_views.json")
    assert three["inferer"]["inferer"] == "@slab_inferer"
    assert three["handlers"][0]["signature"] == "@signature"


@pytest.mark.parametrize("overlay", [None, "cpu_small.json"])
def test_the_last_epoch_is_validated(overlay):
    """The checkpoint kept is the best validated one: when the epochs are not a multiple of val_interval, the last
    iterations of training (at the lowest learning rate) are never validated and can never be kept."""
    config = {**_load("train.json"), **(_load(overlay) if overlay else {})}
    epochs = config["num_iterations"] // config["iterations_per_epoch"]
    assert config["num_iterations"] % config["iterations_per_epoch"] == 0, "num_iterations: whole epochs only"
    assert epochs % config["val_interval"] == 0, (
        f"{overlay or 'train.json'}: {epochs} epochs with val_interval {config['val_interval']} leave the last "
        f"{epochs % config['val_interval']} epoch(s) unvalidated"
    )


@pytest.mark.parametrize("overlay", [None, "cpu_small.json"])
def test_training_and_inference_agree_on_the_slab_positions(overlay):
    """A recipe that leaves a slab's end slices out of the loss (SlabLoss margin) must not let inference rely on
    them: gaussian position weights and pad_ends in validation and in inference.json alike; the paper's recipe
    (train.json alone) supervises every slice and averages uniformly."""
    from monai.bundle import ConfigParser

    parsed = {}
    for name in ("train.json", "inference.json"):
        parser = ConfigParser()
        parser.read_config([str(CONFIGS / name)] + ([str(CONFIGS / overlay)] if overlay else []))
        parser.update({"bundle_root": "/nonexistent"})
        parsed[name] = parser
    train, inference = parsed["train.json"], parsed["inference.json"]
    margin = train.get_parsed_content("loss").margin
    for inferer in (train.get_parsed_content("validate#inferer"), inference.get_parsed_content("slab_inferer")):
        assert (inferer.weighting, inferer.pad_ends) == (("gaussian", True) if margin else ("uniform", False))
    assert margin == (1 if overlay else 0)


@pytest.mark.parametrize("overlay", [None, "cpu_small.json"])
def test_window_stride_stays_inside_the_supervised_slices(overlay):
    """The loss's margin is the config's ``slab_margin``, and both thick-slice inferers refuse a stride at which a
    slice would be predicted only at a window's unsupervised end slices, naming the largest stride that fits."""
    from monai.bundle import ConfigParser

    for name, key in (("train.json", "validate#inferer"), ("inference.json", "slab_inferer")):
        parser = ConfigParser()
        parser.read_config([str(CONFIGS / name)] + ([str(CONFIGS / overlay)] if overlay else []))
        parser.update({"bundle_root": "/nonexistent"})
        k, margin = parser["num_slices"], parser["slab_margin"]
        assert margin == (1 if overlay else 0)
        if name == "train.json":
            assert parser.get_parsed_content("loss").margin == margin
        largest = k - 2 * margin
        parser.update({"stride": largest})
        assert parser.get_parsed_content(key, instantiate=True, lazy=False).stride == largest
        parser.update({"stride": largest + 1})
        with pytest.raises(RuntimeError, match="check_window_stride") as raised:  # MONAI wraps the expression's error
            parser.get_parsed_content(key, instantiate=True, lazy=False)
        assert isinstance(raised.value.__cause__, ValueError)
        assert f"--stride {largest} or less" in str(raised.value.__cause__)


def _training_samples(files: list[str], volume: torch.Tensor, label: torch.Tensor, **overrides) -> list[dict]:
    """``train_sample_transforms`` of the stacked ``files`` applied to one ``(1, H, W, D)`` volume."""
    from monai.bundle import ConfigParser
    from monai.transforms import Compose

    parser = ConfigParser()
    parser.read_config([str(CONFIGS / f) for f in files])
    parser.update({"bundle_root": "/nonexistent", **overrides})
    samples = Compose(parser.get_parsed_content("train_sample_transforms")).set_random_state(seed=0)(
        {"image": volume, "label": label})
    return samples if isinstance(samples, list) else [samples]


@pytest.mark.parametrize("size", [(80, 40, 20), (30, 20, 4)])
def test_cpu_recipe_trains_on_vessel_centred_crops(size):
    """cpu_small.json cuts its training slabs as the 3D row cuts its patches: ``crops_per_slab * slabs_per_volume``
    crops of ``train_crop`` in the slice and ``k`` slices (a volume smaller than that is padded), each centred on a
    vessel voxel (``pos``) or a background one (``neg``; a volume padded to the crop has one crop only); the paper's
    recipe (train.json) keeps full slices, and ``train_sample_transforms="@slab_sample_transforms"`` restores them."""
    image = torch.rand(1, *size)
    label = torch.zeros(1, *size)
    label[0, size[0] // 2, size[1] // 2, 1:-1] = 1  # one vessel along the slab axis, mid-slice
    samples = _training_samples(["train.json", "cpu_small.json"], image, label, neg_slabs=0)
    config = {**_load("train.json"), **_load("cpu_small.json")}
    k, crop = config["num_slices"], config["train_crop"]
    assert len(samples) == config["crops_per_slab"] * config["slabs_per_volume"]
    for sample in samples:
        assert tuple(sample["image"].shape) == (k, *crop) and tuple(sample["label"].shape) == (k, *crop)
        assert sample["label"][k // 2, crop[0] // 2, crop[1] // 2] == 1  # pos only: the centre voxel is vessel
    background = _training_samples(["train.json", "cpu_small.json"], image, label, pos_slabs=0)
    assert size[0] <= crop[0] or not all(s["label"][k // 2, crop[0] // 2, crop[1] // 2] == 1 for s in background)
    paper = _training_samples(["train.json"], image, label, spatial_size=list(size[:2]), num_slices=3)
    assert {tuple(s["image"].shape) for s in paper} == {(3, *size[:2])}
    # the runs made before the crops: the paper's full slices with the CPU overlay, by one override
    slabs = _training_samples(["train.json", "cpu_small.json"], image, label,
                              train_sample_transforms="@slab_sample_transforms")
    assert len(slabs) == config["slabs_per_volume"] and {tuple(s["image"].shape) for s in slabs} == {(k, *size[:2])}
