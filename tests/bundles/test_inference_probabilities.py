"""inference_probabilities.json: the bundle's inference writes the foreground probability map (float32, in the
input's space) instead of the mask, and thresholding that map gives exactly the bundle's own mask."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser

from t2d_monai.bundle.bundle_run import TINY, Context
from t2d_monai.transforms import merge_targets

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "hepatic_vessel"
CONFIGS = BUNDLE / "configs"
#: a flipped, shifted, anisotropic affine (LAS): the bundle reorients to RAS and must write back in this space
AFFINE = np.array([[-0.8, 0, 0, 12.0], [0, 0.8, 0, -4.0], [0, 0, 2.5, 30.0], [0, 0, 0, 1]])
SHAPE = (40, 36, 14)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Context:
    return Context(tmp_path_factory.mktemp("probabilities"), BUNDLE)


@pytest.fixture(scope="module")
def checkpoint(context) -> Path:
    """An untrained, signed checkpoint of cpu_small.json with the tiny settings (its outputs spread around 0.5)."""
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "inference.json"), str(CONFIGS / "cpu_small.json")])
    parser.update(TINY)
    torch.manual_seed(0)
    path = context.fresh("ckpt") / "model.pt"
    torch.save({"signature": parser.get_parsed_content("signature").state_dict(),
                "model": parser.get_parsed_content("network_def").state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def image(context) -> Path:
    ct = np.random.default_rng(0).normal(150.0, 200.0, SHAPE).astype(np.int16)
    return context.nifti("case", ct, AFFINE)


def test_probability_map_thresholds_to_the_bundle_mask(context, checkpoint, image):
    files = ["inference.json", "cpu_small.json"]
    probs = context.run("infer", files + ["inference_probabilities.json"], out=context.fresh("prob"),
                        dataset_dir=str(image), ckpt_file=str(checkpoint))
    assert probs.error is None, probs.error
    assert [p.name for p in probs.outputs] == ["case_prob.nii.gz"]
    written = nib.load(probs.outputs[0])
    assert written.shape == SHAPE and written.get_data_dtype() == np.float32
    np.testing.assert_allclose(written.affine, AFFINE, atol=1e-5)
    prob = np.asarray(written.dataobj)
    assert prob.dtype == np.float32 and 0.0 <= prob.min() and prob.max() <= 1.0

    # a threshold inside the map's range, so that the mask has both values (an untrained model: near 0.5)
    threshold = float(np.float32(np.median(prob)))
    mask = context.run("infer", files, out=context.fresh("mask"), dataset_dir=str(image), ckpt_file=str(checkpoint),
                       threshold=threshold)
    assert mask.error is None, mask.error
    own = np.asarray(nib.load(mask.outputs[0]).dataobj)
    assert set(np.unique(own).tolist()) == {0, 1}
    np.testing.assert_array_equal(own, (prob >= threshold).astype(own.dtype))
    np.testing.assert_array_equal(own, merge_targets([prob], ["vessel"], threshold))  # one target merged alone
