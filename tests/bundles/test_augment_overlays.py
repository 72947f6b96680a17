"""The opt-in training augmentation overlays of the bundles (configs/flip.json, configs/augment.json)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser
from monai.transforms import Compose

CONFIGS = Path(__file__).resolve().parents[2] / "bundles" / "hepatic_vessel" / "configs"


def _parser(*names: str, **overrides) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / n) for n in ("train.json", "cpu_small.json", *names)])
    parser.update({"bundle_root": "/nonexistent", **overrides})
    return parser


def _names(parser: ConfigParser) -> list[str]:
    return [type(t).__name__ for t in parser.get_parsed_content("train#preprocessing").transforms]


@pytest.mark.parametrize("method", [(), ("baselines/unet3d.json", "baselines/patch3d.json")])
def test_flips_come_before_the_sample_is_cut(method):
    """flip.json flips the whole volume on each of its three axes before the slab (or 3D patch) is cut, for T2D and
    the 3D row alike; everything else in the training pipeline is unchanged."""
    plain, flipped = _names(_parser(*method)), _names(_parser(*method, "flip.json"))
    at = plain.index("SpatialPadd")  # the first step of cutting the sample: the 2D crop or the 3D patch
    assert flipped == plain[:at] + ["RandFlipd"] * 3 + plain[at:]
    axes = [t.flipper.spatial_axis for t in _parser(*method, "flip.json").get_parsed_content("flip_transforms")]
    assert axes == [0, 1, 2]


def test_flips_move_image_and_label_together():
    """With ``flip_prob`` 1 the volume is reversed on all three axes, image and label alike (exact: no resampling,
    so a one-voxel vessel keeps its voxels)."""
    flips = _parser("flip.json", flip_prob=1.0).get_parsed_content("flip_transforms")
    image = torch.rand(1, 6, 5, 4)
    label = (image > 0.7).float()
    sample = {"image": image.clone(), "label": label.clone()}
    for flip in flips:
        sample = flip(sample)
    assert torch.equal(torch.as_tensor(sample["image"]), image.flip(1, 2, 3))
    assert torch.equal(torch.as_tensor(sample["label"]), label.flip(1, 2, 3))
    assert torch.equal(torch.as_tensor(sample["label"]), (torch.as_tensor(sample["image"]) > 0.7).float())


def test_flips_are_random_and_follow_the_seed():
    """``flip_prob`` 0.5: some draws flip and some do not; a seeded random state (as MONAI's DataLoader sets from
    the bundle's seed) makes the draws repeatable."""
    volume = torch.arange(8.0).reshape(1, 2, 2, 2)
    seen = []
    for _ in range(2):
        flips = Compose(_parser("flip.json").get_parsed_content("flip_transforms")).set_random_state(seed=3)
        seen.append([tuple(torch.as_tensor(flips({"image": volume, "label": volume})["image"]).flatten().tolist())
                     for _ in range(16)])
    assert seen[0] == seen[1]
    assert 2 < len(set(seen[0])) <= 8  # several of the 8 flip combinations, not always the same one
