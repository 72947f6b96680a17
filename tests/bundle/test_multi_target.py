"""``python -m t2d_monai merge_targets``: two target bundles (copies of hepatic_vessel with their own target name,
threshold and checkpoint) run on one CT through the bundle runner, merged into one label map."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from t2d_monai.__main__ import main
from t2d_monai.bundle.multi_target import bundle_target, bundle_threshold, run_merge_targets

#: a flipped, shifted, anisotropic affine (LAS): the outputs must come back in it
AFFINE = np.array([[-0.8, 0, 0, 12.0], [0, 0.8, 0, -4.0], [0, 0, 2.5, 30.0], [0, 0, 0, 1]])
SHAPE = (40, 36, 14)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _target_bundle(source: Path, dest: Path, checkpoint: Path, label: str | None, threshold: float, seed: int) -> Path:
    """A copy of ``source`` whose metadata names its target ``label``, whose inference.json has ``threshold``, and
    whose models/model.pt is ``checkpoint`` with weights re-drawn from ``seed`` (0: as is)."""
    shutil.copytree(source, dest)
    meta_path, infer_path = dest / "configs" / "metadata.json", dest / "configs" / "inference.json"
    if label is not None:
        meta = json.loads(meta_path.read_text())
        meta["segmentation_labels"] = {label: 1}
        meta_path.write_text(json.dumps(meta, indent=4))
    config = json.loads(infer_path.read_text())
    config["threshold"] = threshold
    infer_path.write_text(json.dumps(config, indent=4))
    state = torch.load(checkpoint, weights_only=True)
    if seed:
        gen = torch.Generator().manual_seed(seed)
        state["model"] = {k: (v + 0.2 * torch.randn(v.shape, generator=gen) * v.std() if v.is_floating_point()
                              and v.numel() > 1 else v) for k, v in state["model"].items()}
    (dest / "models").mkdir()
    torch.save(state, dest / "models" / "model.pt")
    return dest


@pytest.fixture(scope="module")
def case(bundle, checkpoint, tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("multi_target")
    image = work / "ct" / "case.nii.gz"
    image.parent.mkdir()
    ct = np.random.default_rng(0).normal(150.0, 200.0, SHAPE).astype(np.int16)
    nib.save(nib.Nifti1Image(ct, AFFINE), str(image))
    first = _target_bundle(bundle, work / "hepatic_vessel", checkpoint, None, 0.5, 0)
    second = _target_bundle(bundle, work / "other_vessel", checkpoint, "portal_vein", 0.45, 1)
    return {"work": work, "image": image, "bundles": [first, second]}


@pytest.fixture(scope="module")
def merged(case, small) -> dict:
    """The command line, as a user runs it (CPU overlay and the checkpoint's small settings)."""
    before = _md5(case["image"])
    out = case["work"] / "out"
    overrides = {k: v for k, v in small.items() if k != "spatial_size"}
    main(["merge_targets", "--image", str(case["image"]), "--bundles", ",".join(map(str, case["bundles"])),
          "--out_dir", str(out), "--overlays", "cpu_small.json", "--overrides", json.dumps(overrides)])
    assert _md5(case["image"]) == before
    return {"out": out, "overrides": overrides}


def test_targets_and_thresholds_come_from_the_bundles(case):
    first, second = case["bundles"]
    assert [bundle_target(b) for b in case["bundles"]] == ["vessel", "portal_vein"]
    assert bundle_threshold(first) == 0.5 and bundle_threshold(second, overrides={"threshold": 0.3}) == 0.3
    meta_path = second / "configs" / "metadata.json"
    original = meta_path.read_text()
    meta = json.loads(original)
    del meta["segmentation_labels"]  # no label 1 named: the folder's name
    meta_path.write_text(json.dumps(meta))
    try:
        assert bundle_target(second) == "other_vessel"
    finally:
        meta_path.write_text(original)


def test_merged_map_of_two_bundles(case, merged):
    out = merged["out"]
    assert sorted(p.name for p in out.iterdir()) == ["case_merged.nii.gz", "case_merged_legend.json", "portal_vein",
                                                     "vessel"]
    assert json.loads((out / "case_merged_legend.json").read_text()) == {"0": "background", "1": "vessel",
                                                                           "2": "portal_vein"}
    labels_nii = nib.load(out / "case_merged.nii.gz")
    assert labels_nii.shape == SHAPE and labels_nii.get_data_dtype() == np.uint8
    np.testing.assert_allclose(labels_nii.affine, AFFINE, atol=1e-5)
    p1, p2 = (np.asarray(nib.load(out / name / "case_prob.nii.gz").dataobj) for name in ("vessel", "portal_vein"))
    assert p1.shape == p2.shape == SHAPE and not np.array_equal(p1, p2)
    above1, above2 = p1 >= np.float32(0.5), p2 >= np.float32(0.45)  # each bundle's own threshold
    expected = np.where(above1 & (~above2 | (p1 >= p2)), 1, np.where(above2, 2, 0))
    np.testing.assert_array_equal(np.asarray(labels_nii.dataobj), expected)


def test_merge_written_probabilities_and_overwrite(case, merged, capsys):
    out = merged["out"]
    maps = {name: out / name / "case_prob.nii.gz" for name in ("vessel", "portal_vein")}
    p1, p2 = (np.asarray(nib.load(p).dataobj) for p in maps.values())
    t1, t2 = float(np.float32(np.median(p1))), float(np.float32(np.median(p2)))  # both targets present
    again = case["work"] / "again"
    spec = ",".join(f"{n}={p}" for n, p in maps.items())
    main(["merge_targets", "--probabilities", spec, "--thresholds", f"{t1},{t2}", "--out_dir", str(again)])
    assert "merging 2 target(s)" in capsys.readouterr().out
    labels = np.asarray(nib.load(again / "case_merged.nii.gz").dataobj)  # named after the first map, less "_prob"
    assert set(np.unique(labels).tolist()) == {0, 1, 2}
    expected = np.where((p1 >= t1) & ((p2 < t2) | (p1 >= p2)), 1, np.where(p2 >= t2, 2, 0))
    np.testing.assert_array_equal(labels, expected)
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        run_merge_targets(probabilities=spec, thresholds=[t1, t2], out_dir=str(again))
    result = run_merge_targets(probabilities={"portal_vein": maps["portal_vein"], "vessel": maps["vessel"]},
                               thresholds=0.5, out_dir=str(again), image=str(case["image"]), overwrite=True)
    assert result["targets"]["portal_vein"]["threshold"] == 0.5
    assert json.loads(Path(result["legend"]).read_text())["1"] == "portal_vein"  # order given: portal_vein first


def test_ill_arg(case, merged, tmp_path):
    image, first = str(case["image"]), case["bundles"][0]
    prob = merged["out"] / "vessel" / "case_prob.nii.gz"
    with pytest.raises(ValueError, match="either --bundles.*or --probabilities"):
        run_merge_targets(image=image, out_dir=str(tmp_path))
    with pytest.raises(ValueError, match="either --bundles"):
        run_merge_targets(image=image, bundles=str(first), probabilities=f"a={prob}", out_dir=str(tmp_path))
    with pytest.raises(ValueError, match="--out_dir"):
        run_merge_targets(image=image, bundles=str(first))
    with pytest.raises(ValueError, match="name their targets.*'vessel'.*--names"):  # before anything runs
        run_merge_targets(image=image, bundles=f"{first},{first}", out_dir=str(tmp_path / "dup"))
    assert not (tmp_path / "dup").exists()
    with pytest.raises(ValueError, match="needs --thresholds"):
        run_merge_targets(probabilities=f"a={prob}", out_dir=str(tmp_path))
    with pytest.raises(ValueError, match="not name=path"):
        run_merge_targets(probabilities=str(prob), thresholds=0.5, out_dir=str(tmp_path))
    with pytest.raises(ValueError, match="threshold of target 'b'"):
        run_merge_targets(probabilities=f"a={prob},b={prob}", thresholds="0.5,1.5", out_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_merge_targets(probabilities=f"a={tmp_path / 'nope.nii.gz'}", thresholds=0.5, out_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no configs/inference.json"):
        run_merge_targets(image=image, bundles=str(tmp_path), out_dir=str(tmp_path))
    shifted = tmp_path / "shifted_prob.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(SHAPE, np.float32), np.eye(4)), str(shifted))
    with pytest.raises(ValueError, match="'b'.*is not in the space of"):
        run_merge_targets(probabilities=f"a={prob},b={shifted}", thresholds=0.5, out_dir=str(tmp_path))
    named_like_output = tmp_path / "case_merged.nii.gz"
    shutil.copy(prob, named_like_output)
    with pytest.raises(ValueError, match="would overwrite an input"):
        run_merge_targets(probabilities=f"a={named_like_output}", thresholds=0.5, out_dir=str(tmp_path), image=image)
