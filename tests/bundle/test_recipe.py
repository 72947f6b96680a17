"""One recipe, many target bundles: the committed bundles are their rendering, their shared ids agree, and a
target.json that misses, adds or mistypes something is refused with the problem and the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from t2d_monai.bundle.recipe import RECIPE, TARGET_IDS, read_target, render_bundle, render_bundles, target_bundles

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"
TARGETS = ("hepatic_vessel", "pancreas", "duodenum", "portal_splenic_vein", "superior_mesenteric_artery", "celiac_artery")


def _configs(bundle: Path) -> dict[str, dict]:
    return {p.relative_to(bundle / "configs").as_posix(): json.loads(p.read_text())
            for p in sorted((bundle / "configs").rglob("*.json")) if p.name != "metadata.json"}


def test_every_paper_target_is_a_bundle():
    assert [b.name for b in target_bundles()] == sorted(TARGETS)


def test_committed_bundles_are_their_rendering():
    """Fails when a bundle file was edited by hand, or the recipe changed without `render_bundles`."""
    assert render_bundles(check=True) == []


def test_shared_ids_agree_across_bundles():
    """Read from the committed files, not the renderer: every config id other than the target ids is the same in
    every bundle, and every target states the target ids in train.json."""
    reference = _configs(BUNDLES / TARGETS[0])
    for name in TARGETS[1:]:
        configs = _configs(BUNDLES / name)
        assert sorted(configs) == sorted(reference), name
        for file, config in configs.items():
            assert sorted(config) == sorted(reference[file]), (name, file)
            for key, value in config.items():
                if key not in TARGET_IDS:
                    assert value == reference[file][key], f"{name}/configs/{file}: {key} drifted from {TARGETS[0]}"
    for name in TARGETS:
        train = json.loads((BUNDLES / name / "configs" / "train.json").read_text())
        assert all(train[k] == read_target(BUNDLES / name)["config"][k] for k in TARGET_IDS)


def test_targets_differ_where_they_should():
    windows = {n: read_target(BUNDLES / n)["config"]["hu_window"] for n in TARGETS}
    assert windows["pancreas"] == windows["duodenum"] == [-100, 240]
    assert windows["hepatic_vessel"] == windows["portal_splenic_vein"] == [-100, 400]
    pancreas = json.loads((BUNDLES / "pancreas" / "configs" / "train.json").read_text())
    assert pancreas["foreground_labels"] == [1, 2] and pancreas["data_layout"] == "msd"
    sma = json.loads((BUNDLES / "superior_mesenteric_artery" / "configs" / "train.json").read_text())
    assert (sma["data_layout"], sma["target_label"]) == ("pants", "superior_mesenteric_artery")
    meta = json.loads((BUNDLES / "duodenum" / "configs" / "metadata.json").read_text())
    assert meta["segmentation_labels"] == {"duodenum": 1}
    assert meta["network_data_format"]["outputs"]["pred"]["channel_def"]["0"].startswith("duodenum logit of slice 0")
    assert "{{" not in json.dumps(meta) and "{{" not in (BUNDLES / "duodenum" / "docs" / "README.md").read_text()
    assert "non-commercial" in (BUNDLES / "celiac_artery" / "docs" / "README.md").read_text()
    assert "bundles/celiac_artery/configs" in (BUNDLES / "celiac_artery" / "docs" / "README.md").read_text()


@pytest.fixture
def tree(tmp_path) -> Path:
    """A copy of bundles/ (recipe and two targets) that a test may change."""
    root = tmp_path / "bundles"
    shutil.copytree(BUNDLES / RECIPE, root / RECIPE)
    for name in ("hepatic_vessel", "duodenum"):
        shutil.copytree(BUNDLES / name, root / name, ignore=shutil.ignore_patterns("models", "eval"))
    return root


def test_hand_edit_is_found_and_rendering_restores_it(tree):
    train = tree / "duodenum" / "configs" / "train.json"
    config = json.loads(train.read_text())
    config["learning_rate"] = 0.1
    train.write_text(json.dumps(config, indent=4) + "\n")
    with pytest.raises(SystemExit, match=r"duodenum/configs/train.json.*python -m t2d_monai render_bundles"):
        render_bundles(check=True, root=str(tree))
    assert render_bundles(root=str(tree)) == ["duodenum/configs/train.json"]
    assert json.loads(train.read_text())["learning_rate"] == 0.005
    assert render_bundles(check=True, root=str(tree)) == []


def test_recipe_change_reaches_every_target(tree):
    recipe = tree / RECIPE / "configs" / "train.json"
    config = json.loads(recipe.read_text())
    config["momentum"] = 0.95
    recipe.write_text(json.dumps(config, indent=4) + "\n")
    assert sorted(render_bundles(root=str(tree))) == ["duodenum/configs/train.json", "hepatic_vessel/configs/train.json"]
    for name in ("hepatic_vessel", "duodenum"):
        assert json.loads((tree / name / "configs" / "train.json").read_text())["momentum"] == 0.95


def _edit_target(tree: Path, change) -> Path:
    path = tree / "duodenum" / "target.json"
    target = json.loads(path.read_text())
    change(target)
    path.write_text(json.dumps(target))
    return tree / "duodenum"


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda t: t["config"].pop("hu_window"), r"missing \['hu_window'\]"),
        (lambda t: t["config"].update(learning_rate=0.1), r"not a target id \['learning_rate'\].*bundles/_recipe"),
        (lambda t: t["config"].update(data_layout="nifti_dir"), r"data_layout 'nifti_dir' is not one of"),
        (lambda t: t["config"].update(target_label=None), r"needs target_label"),
        (lambda t: t["config"].update(hu_window=[400, -100]), r"hu_window must be \[low, high\]"),
        (lambda t: t["config"].update(foreground_labels=[]), r"foreground_labels must be"),
        (lambda t: t.update(synthetic_layout="nope"), r"synthetic_layout 'nope' is not one of"),
        (lambda t: t.pop("card"), r"missing \['card'\]"),
        (lambda t: t["metadata"].update(segmentation_labels={"a": 1, "b": 2}), r"segmentation_labels must name"),
        (lambda t: t["metadata"].update(monai_version="0.1"), r"\['monai_version'\] are the recipe's"),
        (lambda t: t["metadata"].pop("task"), r"metadata fields \['task'\] are left to each target"),
        (lambda t: t["card"].pop("title"), r"no value for \{\{title\}\}"),
    ],
)
def test_bad_target_file_is_refused_clearly(tree, change, match):
    with pytest.raises(ValueError, match=match):
        render_bundle(_edit_target(tree, change), tree / RECIPE)


def test_unknown_target_name(tree):
    with pytest.raises(ValueError, match=r"unknown target bundle.*\['duodenum', 'hepatic_vessel'\]"):
        render_bundles(bundles="liver", root=str(tree))
