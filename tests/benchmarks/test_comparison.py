"""The comparison benchmark: method names, bad arguments, and the tiny path end to end (with resuming)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from t2d_monai.benchmarks.comparison import METHODS, PRESETS, benchmark, resolve_method

BUNDLE_CONFIGS = Path(__file__).resolve().parents[2] / "bundles" / "hepatic_vessel" / "configs"
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize(
    "name, kind, three, overrides",
    [
        ("deeplab_k1", "2d", False, {}),
        ("unet3d", "3d", False, {}),
        ("t2d_k9", "2d", False, {"num_slices": 9}),
        ("early_k6", "2d", False, {"fusion": "early", "attention": None, "num_slices": 6}),
        ("esm_dot_3views", "2d", True, {}),
        ("t2d_k21_3views", "2d", True, {"num_slices": 21}),
    ],
)
def test_resolve_method(name, kind, three, overrides):
    method = resolve_method(name)
    assert (method.name, method.kind, method.three_views, method.overrides) == (name, kind, three, overrides)


def test_every_method_overlay_exists():
    for method in METHODS.values():
        for overlay in method.overlays:
            assert (BUNDLE_CONFIGS / overlay).is_file(), overlay
    for preset in PRESETS.values():
        for name in preset["methods"]:
            resolve_method(name)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"methods": "deeplab_k7"}, ValueError, "unknown method 'deeplab_k7'; valid: deeplab_k1"),
        ({"methods": "unet3d_3views"}, ValueError, "three-view fusion is for 2D methods only"),
        ({"methods": "t2d_k0"}, ValueError, "slab thickness must be >= 1"),
        ({"preset": "huge"}, ValueError, "preset must be one of"),
        ({"num_iterations": 0}, ValueError, "num_iterations must be >= 1"),
        ({"thickness": "3,x"}, ValueError, "thickness must be a comma-separated list"),
        ({"dataset_dir": "/no/such/folder"}, FileNotFoundError, "does not exist"),
        ({"seeds": "0,x"}, ValueError, "seeds must be a comma-separated list"),
        ({"learning_rates": "0.01,-1"}, ValueError, "learning_rates must be positive"),
        ({"learning_rates": "0.01", "learning_rates_from": "x"}, ValueError,
         "either learning_rates .* or learning_rates_from"),
        ({"methods": "deeplab_k1", "learning_rates_from": "/no/such/run"}, FileNotFoundError,
         "deeplab_k1/learning_rate.json does not exist; run the benchmark in /no/such/run with a --learning_rates"),
    ],
)
def test_ill_arg(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        benchmark(out_dir=str(tmp_path / "out"), tiny=True, **kwargs)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("comparison")
    docs = out / "docs"
    notes = out / "notes.md"
    notes.write_text("## Reading\n\nhand-written text\n")
    md = benchmark(out_dir=str(out / "run"), tiny=True, docs_dir=str(docs), notes=str(notes), threads=2)
    return out, Path(md)


@pytest.mark.slow
def test_tiny_benchmark_writes_a_well_formed_table(tiny_run):
    out, md = tiny_run
    run = out / "run"
    rows = list(csv.DictReader((run / "comparison.csv").open()))
    assert [r["method"] for r in rows] == PRESETS["tiny"]["methods"]
    for row in rows:
        assert 0.0 <= float(row["dice_mean"]) <= 1.0
        assert float(row["inter_slice_similarity"]) >= 0.0
        assert float(row["latency_s"]) > 0.0 and float(row["train_time_s"]) > 0.0
        assert float(row["params_m"]) > 0.0 and int(row["iterations"]) == 2
        assert 0.0 <= float(row["pred_fg_pct"]) <= 100.0 and 0.0 < float(row["label_fg_pct"]) < 100.0
        assert len(row["dice_per_case"].split()) == 1  # one held-out case
        assert 0.0 <= float(row["dice_train_cases"]) <= 1.0
        # vessel metrics: clDice and surface Dice in [0, 1]; HD95 in mm, or n/a when every prediction was empty
        assert 0.0 <= float(row["cldice"]) <= 1.0 and 0.0 <= float(row["surface_dice"]) <= 1.0
        assert row["hd95_mm"] == "n/a" or float(row["hd95_mm"]) >= 0.0
        assert [float(v) for v in row["cldice_per_seed"].split()] == [pytest.approx(float(row["cldice"]), abs=1e-3)]
    ceilings = {r["method"]: r["stride4_ceiling"] for r in rows}
    assert ceilings["unet3d"] == "n/a" and 0.0 < float(ceilings["deeplab_k1"]) == float(ceilings["t2d"]) <= 1.0
    assert (run / "t2d" / "seed0" / "eval_training_cases.json").is_file()
    # the training time is also kept on disk at every epoch (runner.TrainingClock), for a resumed run to go on from
    clock = json.loads((run / "t2d" / "seed0" / "train_time.json").read_text())
    record = json.loads((run / "t2d" / "seed0" / "train_result.json").read_text())
    assert clock["iteration"] == 2 and 0.0 < clock["train_time_s"] <= record["train_time_s"]
    per_case = list(csv.DictReader((run / "comparison_per_case.csv").open()))
    assert len(per_case) == len(rows)
    assert {"case", "dice", "latency_s", "load_1min", "hd95_mm", "surface_dice", "cldice"} <= set(per_case[0])
    fit = json.loads((run / "t2d" / "seed0" / "eval_training_cases.json").read_text())
    assert "cldice" not in fit["cases"][0]  # training cases: Dice only
    # the evaluation kept with the run is its quality only: the latency is measured again by every report
    kept = json.loads((run / "t2d" / "seed0" / "eval_result.json").read_text())
    assert kept["options"] == {"ceiling": True, "vessel_metrics": True} and "latency_s" not in kept["cases"][0]
    text = md.read_text()
    assert text.count("\n| ") == len(rows) + 1  # header + one line per method
    assert "Load average" in text and "hand-written text" in text and "deeplab_k1" in text
    assert (run / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG" and (out / "docs" / "images" / "curves.png").is_file()
    assert "one seed, no spread measured, no call" in text  # one seed: nothing is called a win
    # the HU-threshold floor is computed on the same held-out case and checked as a target
    info = json.loads((run / "comparison_info.json").read_text())
    assert 0.0 < info["threshold_dice"] <= 1.0 and f"mean Dice of {info['threshold_dice']:.4f}" in text
    assert info["timed_untrained"] == 0 and info["timed_runs"] == len(rows)
    assert info["train_machines"] == [info["machine"]] and f"- Training: on {info['machine']};" in text
    assert f"above the best global HU threshold ({info['threshold_dice']:.4f})" in text
    assert all(int(r["seeds"]) == 1 and r["learning_rate"] == "config" for r in rows)
    assert (out / "docs" / "images" / "comparison.png").is_file()
    assert "images/comparison.png" in (out / "docs" / "results.md").read_text()
    # the overlay's slab thickness wins over the preset's (deeplab_k1 is k=1, t2d takes the preset's k=6)
    import torch

    for method, k in (("deeplab_k1", 1), ("t2d", 6)):
        assert torch.load(run / method / "seed0" / "models" / "model.pt", weights_only=True)["signature"]["num_slices"] == k
    # cpu_small.json's 2D rows use ResNet-18 without layer4 (encoder_depth 4, about 2.9 M parameters, ESM + SSA adding
    # a little), fewer than the 3D row's UNet 16..256 (4.8 M)
    params = {r["method"]: float(r["params_m"]) for r in rows}
    assert params["deeplab_k1"] < params["t2d"] < params["unet3d"]


@pytest.mark.slow
def test_tiny_benchmark_resumes_without_retraining(tiny_run):
    out, _ = tiny_run
    run = out / "run"
    record = run / "deeplab_k1" / "seed0" / "train_result.json"
    before = record.read_text()
    mtime = (run / "deeplab_k1" / "seed0" / "models" / "model.pt").stat().st_mtime_ns
    benchmark(out_dir=str(run), tiny=True, methods="deeplab_k1", threads=2)
    assert record.read_text() == before
    assert (run / "deeplab_k1" / "seed0" / "models" / "model.pt").stat().st_mtime_ns == mtime
    rows = list(csv.DictReader((run / "comparison.csv").open()))
    assert [r["method"] for r in rows] == ["deeplab_k1"]
    assert json.loads(before)["iterations"] == 2


@pytest.mark.slow
def test_kept_trainings_are_reused_only_under_the_same_settings(tiny_run, tmp_path):
    """Run again into the same out_dir with another budget: a clear error that names the setting, nothing retrained
    or reported. A row's folder copied into another out_dir (another bundle_root) is reused there."""
    out, _ = tiny_run
    run = out / "run"
    record = run / "deeplab_k1" / "seed0" / "train_result.json"
    before = record.read_text()
    assert json.loads((run / "deeplab_k1" / "seed0" / "settings.json").read_text())["overrides"]["num_iterations"] == 2
    with pytest.raises(ValueError, match="other settings than this command's .*num_iterations: 2 there, 4 now") as err:
        benchmark(out_dir=str(run), tiny=True, methods="deeplab_k1", num_iterations=4, threads=2)
    assert "Give another --out_dir" in str(err.value) and record.read_text() == before

    copied = tmp_path / "copied"
    shutil.copytree(run / "deeplab_k1", copied / "deeplab_k1")
    benchmark(out_dir=str(copied), tiny=True, methods="deeplab_k1", dataset_dir=str(run / "data"),
              spatial_size=[-1, -1], threads=2)
    assert (copied / "deeplab_k1" / "seed0" / "train_result.json").read_text() == before  # kept, not retrained
    with pytest.raises(ValueError, match="spatial_size: \\[-1, -1\\] there, None now"):
        benchmark(out_dir=str(copied), tiny=True, methods="deeplab_k1", dataset_dir=str(run / "data"), threads=2)


@pytest.mark.slow
def test_a_run_folder_kept_without_its_models_reports_its_kept_evaluation(tiny_run, tmp_path):
    """A run folder's JSON records without its models (what outlives the machine it was trained on): its Dice is
    the evaluation made after its training, its latency is measured with the network's initial weights and the page
    says so; without the evaluation either, a clear error instead of a training or a traceback."""
    out, _ = tiny_run
    run = out / "run"
    kept = tmp_path / "kept"
    shutil.copytree(run / "deeplab_k1", kept / "deeplab_k1", ignore=shutil.ignore_patterns("*.pt"))
    again = {"tiny": True, "methods": "deeplab_k1", "dataset_dir": str(run / "data"), "spatial_size": [-1, -1],
             "threads": 2}
    text = Path(benchmark(out_dir=str(kept), **again)).read_text()
    (row,) = list(csv.DictReader((kept / "comparison.csv").open()))
    evaluation = json.loads((run / "deeplab_k1" / "seed0" / "eval_result.json").read_text())
    dice = [c["dice"] for c in evaluation["cases"]]
    assert float(row["dice_mean"]) == pytest.approx(sum(dice) / len(dice), abs=1e-4)
    assert float(row["latency_s"]) > 0.0 and "1 of the 1 timed runs had no model on disk" in text
    assert not list(kept.rglob("*.pt"))  # nothing was trained again
    (kept / "deeplab_k1" / "seed0" / "eval_result.json").unlink()
    with pytest.raises(FileNotFoundError, match="no trained model .* and no kept evaluation"):
        benchmark(out_dir=str(kept), **again)


@pytest.mark.slow
def test_three_views_reuse_the_single_view_row_for_its_view(tmp_path):
    """With --view axial the t2d row's model is the axial one: t2d_3views reuses it for axial, trains the others.
    A --learning_rate given to every row (no grid) is what the rows train with and what the table shows."""
    run = tmp_path / "run"
    benchmark(out_dir=str(run), tiny=True, methods="t2d,t2d_3views", view="axial", learning_rate=0.004, threads=2)
    rows = list(csv.DictReader((run / "comparison.csv").open()))
    assert [r["learning_rate"] for r in rows] == ["0.004", "0.004"]
    assert json.loads((run / "t2d" / "seed0" / "train_result.json").read_text())["overrides"]["learning_rate"] == 0.004
    assert (run / "t2d" / "seed0" / "models" / "model_axial.pt").is_file()
    record = json.loads((run / "t2d_3views" / "seed0" / "train_result.json").read_text())
    assert sorted(v["view"] for v in record["views"]) == ["axial", "coronal", "sagittal"]
    assert [v["view"] for v in record["views"] if "reused_from" in v] == ["axial"]
    reused = (run / "t2d_3views" / "seed0" / "models" / "model_axial.pt").read_bytes()
    assert reused == (run / "t2d" / "seed0" / "models" / "model_axial.pt").read_bytes()


@pytest.mark.slow
def test_seeds_learning_rate_grid_and_curves(tmp_path):
    """Per-method learning rate from a grid at the first seed, several seeds, learning curves, reproducible seeds."""
    import torch

    run = tmp_path / "run"
    benchmark(out_dir=str(run), tiny=True, methods="deeplab_k1", seeds="0,1", learning_rates="0.002,0.003",
              threads=2)
    choice = json.loads((run / "deeplab_k1" / "learning_rate.json").read_text())
    # the row's own config value (cpu_small.json's) is a candidate besides the grid
    assert choice["grid"] == [0.002, 0.003] and choice["config_value"] == 0.001 and choice["seed"] == 0
    assert choice["candidates"] == [0.001, 0.002, 0.003] and choice["chosen"] in choice["candidates"]
    assert all((run / "deeplab_k1" / f"lr{lr:g}" / "seed0" / "train_result.json").is_file() for lr in choice["candidates"])
    chosen = run / "deeplab_k1" / f"lr{choice['chosen']:g}"
    (row,) = list(csv.DictReader((run / "comparison.csv").open()))
    assert int(row["seeds"]) == 2 and float(row["learning_rate"]) == choice["chosen"]
    assert len(row["dice_per_seed"].split()) == 2 and float(row["dice_seed_range"]) >= 0.0
    curve = json.loads((chosen / "seed1" / "curve.json").read_text())
    assert [it for it, _ in curve] == [2] and 0.0 <= curve[0][1] <= 1.0  # one validation after 2 iterations
    weights = {s: torch.load(chosen / f"seed{s}" / "models" / "model.pt", weights_only=True)["model"] for s in (0, 1)}
    assert any(not torch.equal(weights[0][k], weights[1][k]) for k in weights[0])  # different seeds differ
    again = tmp_path / "again"
    benchmark(out_dir=str(again), tiny=True, methods="deeplab_k1", seeds="1", learning_rates=str(choice["chosen"]),
              threads=2)
    repeat = torch.load(again / "deeplab_k1" / f"lr{choice['chosen']:g}" / "seed1" / "models" / "model.pt",
                        weights_only=True)["model"]
    assert all(torch.equal(repeat[k], weights[1][k]) for k in repeat)  # the same seed gives the same model
    first = json.loads((chosen / "seed1" / "eval_result.json").read_text())["cases"]
    second = json.loads((again / "deeplab_k1" / f"lr{choice['chosen']:g}" / "seed1" / "eval_result.json").read_text())
    assert [c["dice"] for c in first] == [c["dice"] for c in second["cases"]]
    # a longer budget can take each row's choice from this run instead of a grid (no grid: only the chosen rate)
    longer = tmp_path / "longer"
    benchmark(out_dir=str(longer), tiny=True, methods="deeplab_k1", seeds="0", learning_rates_from=str(run),
              num_iterations=4, threads=2)
    assert [p.name for p in (longer / "deeplab_k1").glob("lr*")] == [f"lr{choice['chosen']:g}"]
    taken = json.loads((longer / "deeplab_k1" / "learning_rate.json").read_text())
    assert taken["chosen"] == choice["chosen"]
    assert taken["taken_from"] == str((run / "deeplab_k1" / "learning_rate.json").resolve())
    (row,) = list(csv.DictReader((longer / "comparison.csv").open()))
    assert float(row["learning_rate"]) == choice["chosen"]
    assert f"taken per row from the choice made in `{run}`" in (longer / "comparison.md").read_text()


def test_budget_scales_the_preset_schedule_to_a_new_budget():
    """A --num_iterations budget moves the learning-rate milestones with it unless they are given too."""
    from t2d_monai.benchmarks.comparison import _budget

    conf = PRESETS["cpu"]
    assert _budget(conf, {}, None)["lr_milestones"] == [2240, 2880]
    assert _budget(conf, {}, 4500)["lr_milestones"] == [3150, 4050]
    assert _budget(conf, {"lr_milestones": [100]}, 4500)["lr_milestones"] == [100]


def test_cpu_preset_is_the_recipe_of_the_results_page(tmp_path):
    """``benchmark`` on CPU (the ``cpu`` preset) trains what docs/results.md reports: its rows in its order, its
    seeds and learning-rate grid, every row with the settings its records there were trained with, on the same
    synthetic cases (case i depends only on the data seed and i) split the same way."""
    from t2d_monai.benchmarks.comparison import _budget
    from t2d_monai.benchmarks.runner import MethodRun, write_case_split
    from t2d_monai.data.synthetic import DEFAULT_SHAPE

    conf, rows = PRESETS["cpu"], list(csv.DictReader((DOCS / "results.csv").open()))
    assert conf["methods"] == [row["method"] for row in rows]
    assert all(int(row["seeds"]) == len(conf["seeds"]) for row in rows)
    records = DOCS / "experiments" / "step29_affine" / "records"  # the page's trainings
    norm = json.loads((BUNDLE_CONFIGS / "cpu_small.json").read_text())["norm"]
    budget = _budget(conf, {}, None, seed=0, device="cpu", synthetic=True)  # data and split are checked below
    located = {"dataset_dir", "split_file"}
    for row in rows:
        choice = json.loads((records / row["method"] / "learning_rate.json").read_text())
        assert choice["grid"] == conf["learning_rates"] and choice["chosen"] == float(row["learning_rate"])
        seed0 = records / row["method"] / f"lr{choice['chosen']:g}" / "seed0"
        given = json.loads((seed0 / "settings.json").read_text())
        run = MethodRun(resolve_method(row["method"]), tmp_path, "data", budget, "cpu", BUNDLE_CONFIGS.parent,
                        seed=0, learning_rate=choice["chosen"])
        now, there = run.settings["overrides"], given["overrides"]
        assert run.settings["configs"] == given["configs"]
        assert there.pop("norm") == norm  # given on the command line then, cpu_small.json's value since
        assert {k for k in set(now) | set(there) if now.get(k) != there.get(k)} <= located, row["method"]

    page_split = json.loads((DOCS / "experiments" / "demo_recipe" / "split_demo24.json").read_text())
    assert conf["num_cases"] == sum(len(page_split[k]) for k in ("training", "validation", "test"))
    assert tuple(conf["shape"]) == DEFAULT_SHAPE  # the page's data: synth --num_cases 32, default shape, seed 0
    names = [f"hepaticvessel_{i:03d}.nii.gz" for i in range(1, conf["num_cases"] + 1)]
    meta = {"labels": {"0": "background", "1": "Vessel", "2": "Tumour"},
            "training": [{"image": f"./imagesTr/{n}", "label": f"./labelsTr/{n}"} for n in names]}
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    written = json.loads(Path(write_case_split(tmp_path, str(tmp_path), conf["split_cases"],
                                               BUNDLE_CONFIGS.parent)).read_text())
    assert all(written[k] == page_split[k] for k in ("training", "validation", "test"))


@pytest.mark.slow
def test_benchmark_runs_through_another_target_bundle(tmp_path, monkeypatch):
    """``--bundle``: data synthesised in the target's layout (TotalSegmentator subject folders), its label read
    through its configs, cases named apart by their subject; a preset's ``split_cases`` hold out the same case
    numbers in that layout."""
    monkeypatch.setitem(PRESETS, "tiny", {**PRESETS["tiny"], "split_cases": {"test": [3], "validation": [1]}})
    run = tmp_path / "run"
    benchmark(out_dir=str(run), tiny=True, methods="t2d", bundle="duodenum", threads=2)
    assert (run / "data" / "meta.csv").is_file() and list((run / "data").glob("*/segmentations/duodenum.nii.gz"))
    rows = list(csv.DictReader((run / "comparison_per_case.csv").open()))
    assert [r["case"] for r in rows] == ["s0003/ct.nii.gz"]
    assert 0.0 <= float(rows[0]["dice"]) <= 1.0
    split = json.loads((run / "split.json").read_text())
    assert [c["image"] for c in split["training"]] == ["s0002/ct.nii.gz", "s0004/ct.nii.gz"]
    assert "test cases [3], validation cases [1] by number" in (run / "comparison.md").read_text()


def test_evaluation_split_follows_the_split_file(small_dataset, tmp_path):
    """``--split_file``: the held-out cases that every row is evaluated on are the file's test cases (the rows are
    trained with the same file), not a split by seed of the whole folder."""
    from t2d_monai.benchmarks.comparison import _split_probe
    from t2d_monai.bundle.paths import bundle_dir

    names = sorted(p.name for p in (small_dataset / "imagesTr").glob("*.nii.gz"))
    case = lambda n: {"image": f"./imagesTr/{n}", "label": f"./labelsTr/{n}"}  # noqa: E731
    split = {"training": [case(names[0])], "validation": [case(names[1])], "test": [case(names[2])]}
    path = tmp_path / "split.json"
    path.write_text(json.dumps(split))
    budget = {"num_test": 1, "num_validation": 1, "split_seed": 5, "split_file": str(path)}
    got = _split_probe(str(small_dataset), budget, bundle_dir()).get_parsed_content("datasplit")
    assert [Path(c["image"]).name for c in got["test"]] == [names[2]]
    assert [Path(c["image"]).name for c in got["training"]] == [names[0]]
