from __future__ import annotations

import csv

import pytest

from t2d_monai.benchmarks.inferers import inferer_benchmark, scaled_patch, scan_interval


def test_scaled_patch_matches_the_paper():
    assert scaled_patch((512, 512, 394)) == (128, 128, 64)
    assert scaled_patch((256, 256, 96)) == (64, 64, 16)
    assert scaled_patch((20, 20, 6)) == (8, 8, 6)


@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.75, 0.99, (0.5, 0.75, 0.25)])
def test_scan_interval_is_monais(overlap):
    """The step between patches that MONAI's sliding window takes (its private helper, compared as the reference)."""
    from monai.inferers.utils import _get_scan_interval
    from monai.utils import ensure_tuple_rep

    for image, roi in (((128, 128, 64), (32, 32, 32)), ((512, 512, 394), (128, 128, 64)), ((40, 32, 20), (40, 8, 8))):
        expected = _get_scan_interval(image, roi, 3, ensure_tuple_rep(overlap, 3))
        assert scan_interval(roi, overlap, image) == expected
    assert scan_interval((128, 128, 64), 0.75) == (32, 32, 16)  # the paper's stride


def test_runs_with_a_stand_in_and_writes_results(tmp_path, stand_in_esm):
    def factory(num_slices, fusion, attention, backbone):
        return stand_in_esm(num_slices=num_slices, group_size=min(3, num_slices))

    rows = inferer_benchmark(
        out_dir=str(tmp_path),
        size=(16, 12, 9),
        num_slices=5,
        batch_size=2,
        network_factory=factory,
        unet_channels=(4, 8),
    )
    assert [r["method"] for r in rows][0] == "3D sliding window" and rows[0]["time_vs_3d"] == 1.0
    with open(tmp_path / "inferer_benchmark.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
    text = (tmp_path / "inferer_benchmark.md").read_text()
    assert "max |cached - uncached|" in text and "thick-slice, f1 cache" in text
    assert "the cache can make inference at most" in text


def test_unet_decoder_of_the_default_factory(tmp_path):
    """The default factory builds real T2DNets with the full-resolution decoder; the cache stays exact."""
    rows = inferer_benchmark(out_dir=str(tmp_path), size=(32, 32, 8), num_slices=6, batch_size=2,
                             backbone="resnet18", unet_channels=(4, 8), decoder="unet", threads=2)
    assert {r["network"] for r in rows[1:]} == {"single-slice DeepLabV3+ (resnet18, unet decoder), SliceInferer",
                                                "T2DNet k=6 ESM+SSA (resnet18, unet decoder), stride 1"}
    text = (tmp_path / "inferer_benchmark.md").read_text()
    assert "max |cached - uncached| = " in text and "unet decoder" in text


def test_cpu_recipe_networks(tmp_path):
    """decoder_channels and norm reach the default factory's networks (the CPU overlay's T2DNet is timed as trained)."""
    rows = inferer_benchmark(out_dir=str(tmp_path), size=(32, 32, 8), num_slices=6, batch_size=2, backbone="resnet18",
                             unet_channels=(4, 8), decoder="unet", decoder_channels=16, norm="instance")
    assert rows[3]["network"] == "T2DNet k=6 ESM+SSA (resnet18, unet decoder width 16, instance norm), stride 1"
    small = rows[3]["parameters_M"]
    rows = inferer_benchmark(out_dir=str(tmp_path), size=(32, 32, 8), num_slices=6, batch_size=2, backbone="resnet18",
                             unet_channels=(4, 8), decoder="unet", decoder_channels=64)
    assert rows[3]["parameters_M"] > small
    rows = inferer_benchmark(out_dir=str(tmp_path), size=(32, 32, 8), num_slices=6, batch_size=2, backbone="resnet18",
                             unet_channels=(4, 8), decoder="unet", decoder_channels=16, norm="instance", encoder_depth=4)
    assert rows[3]["network"].endswith("instance norm, encoder depth 4), stride 1")
    assert rows[3]["parameters_M"] < small - 8  # resnet18's layer4 holds 8.4 M parameters


def test_aggregation_options(tmp_path, stand_in_esm):
    """weighting, pad_ends and the 3D blending reach the inferers and their labels; the cache stays exact."""
    def factory(num_slices, fusion, attention, backbone):
        return stand_in_esm(num_slices=num_slices, group_size=min(3, num_slices))

    args = dict(size=(16, 12, 9), num_slices=5, batch_size=2, network_factory=factory, unet_channels=(4, 8))
    rows = inferer_benchmark(out_dir=str(tmp_path), weighting="gaussian", pad_ends=True, sw_mode="gaussian", **args)
    assert rows[0]["network"].endswith("overlap 0.75, gaussian blending")
    assert rows[3]["network"].endswith("stride 1, gaussian weights, pad_ends")
    text = (tmp_path / "inferer_benchmark.md").read_text()
    assert "max |cached - uncached| = 0.00e+00" in text
    plain = inferer_benchmark(out_dir=str(tmp_path / "plain"), **args)
    assert plain[3]["network"].endswith("stride 1") and plain[0]["network"].endswith("overlap 0.75")


def test_sw_overlap(tmp_path, stand_in_esm):
    """A lower 3D overlap reaches the sliding window: its label, and the page's stride (MONAI's scan interval)."""
    def factory(num_slices, fusion, attention, backbone):
        return stand_in_esm(num_slices=num_slices, group_size=min(3, num_slices))

    args = dict(size=(32, 32, 16), num_slices=5, batch_size=2, network_factory=factory, unet_channels=(4, 8))
    assert scaled_patch(args["size"]) == (8, 8, 8)
    paper = inferer_benchmark(out_dir=str(tmp_path / "paper"), **args)
    half = inferer_benchmark(out_dir=str(tmp_path / "half"), sw_overlap=0.5, **args)
    assert paper[0]["network"].endswith("overlap 0.75") and half[0]["network"].endswith("overlap 0.5")
    pages = {name: (tmp_path / name / "inferer_benchmark.md").read_text() for name in ("paper", "half")}
    assert "with stride 2/2/2 (the paper's 128x128x64 / 32x32x16" in pages["paper"]
    assert "with stride 4/4/4 (overlap 0.5; at overlap 0.75, the paper's" in pages["half"]


def test_ill_arg(tmp_path):
    with pytest.raises(ValueError, match="weighting"):
        inferer_benchmark(out_dir=str(tmp_path), size=(8, 8, 8), weighting="triangle")
    with pytest.raises(ValueError, match="sw_mode"):
        inferer_benchmark(out_dir=str(tmp_path), size=(8, 8, 8), sw_mode="linear")
    for overlap in (1.0, -0.1, True, "0.5"):
        with pytest.raises(ValueError, match="sw_overlap"):
            inferer_benchmark(out_dir=str(tmp_path), size=(8, 8, 8), sw_overlap=overlap)
    with pytest.raises(ValueError, match="pad_ends"):
        inferer_benchmark(out_dir=str(tmp_path), size=(8, 8, 8), pad_ends="yes")
    with pytest.raises(ValueError, match="decoder"):
        inferer_benchmark(out_dir=str(tmp_path), size=(8, 8, 8), decoder="fpn")
    with pytest.raises(ValueError, match="size"):
        inferer_benchmark(out_dir=str(tmp_path), size=(8, 8))
    with pytest.raises(ValueError, match="network_factory"):
        inferer_benchmark(out_dir=str(tmp_path), size=(8, 8, 8), network_factory="nomodule")


def test_forward_split_counts_new_groups_per_window(stand_in_esm):
    """Depth 9, 5-slice windows at stride 1: 5 windows; groups at window offsets 0 and 2 -> 7 distinct groups."""
    import torch

    from t2d_monai.benchmarks.inferers import _forward_split
    from t2d_monai.inferers import ThickSliceInferer

    inferer = ThickSliceInferer(5, stride=1)
    split = _forward_split(stand_in_esm(num_slices=5, group_size=3), inferer, (16, 12, 9), 2, torch.device("cpu"))
    assert split["groups"] == 2 and split["new_groups_per_window"] == pytest.approx(7 / 5)
    assert 0 < split["f1_share"] < 1 and split["f1_group_s"] > 0 and split["rest_s"] > 0
    assert 1 < split["ceiling"] < 2 / 1.4  # between no gain and the f1-only bound G / n
    assert _forward_split(torch.nn.Conv2d(5, 5, 1), inferer, (16, 12, 9), 2, torch.device("cpu")) is None
