"""The paper's comparison (Yu et al. 2019, Table 1, 3, 4): 2D, thickened 2D and 3D baselines, trained and
evaluated side by side through the hepatic_vessel bundle.

Command: ``python -m t2d_monai benchmark`` (``--help`` for the arguments). Paper:
https://arxiv.org/abs/1904.01150.

The rows and presets are in :mod:`~t2d_monai.benchmarks.methods`, training of one row in
:mod:`~t2d_monai.benchmarks.runner`, its evaluation and latency in :mod:`~t2d_monai.benchmarks.evaluation`, the
outputs in :mod:`~t2d_monai.benchmarks.report`. Every method gets the same budget overrides (the same number of
iterations, batch and validation schedule, so the budget is *iterations*, not wall-clock time). Each training's
best-validation checkpoint segments the same held-out cases right after it; then, in one process and one method
after another, every row is timed on them. The command writes ``comparison.md``,
``comparison.csv`` (one row per method), ``comparison_per_case.csv`` and ``comparison.png`` (Dice against
latency) into ``out_dir``, and with ``docs_dir`` also ``results.md`` and ``images/comparison.png`` there.

Resuming: each finished training writes ``<out_dir>/<method>/[lr<lr>/]seed<s>/train_result.json`` atomically and is
never repeated; an interrupted training continues from its ``models/checkpoint.pt`` (the bundle's
``resume``). Each finished training is evaluated at once and its evaluation kept (``eval_result.json``,
``eval_training_cases.json``), so that a run folder keeps its result without its model; latency is always measured
again, all methods in the same process.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from t2d_monai.benchmarks.evaluation import evaluate, measure_latency, pipeline
from t2d_monai.benchmarks.methods import METHODS, PRESETS, Method, resolve_method
from t2d_monai.benchmarks.report import COLUMNS, machine_description, markdown, plot, plot_curves, summary
from t2d_monai.benchmarks.runner import MethodRun, load_average, log, prepare_data, train, write_case_split, write_json
from t2d_monai.benchmarks.threshold_baseline import best_global_threshold
from t2d_monai.bundle.layout import parse_configs
from t2d_monai.bundle.paths import DEFAULT_BUNDLE, bundle_dir
from t2d_monai.bundle.recipe import synthetic_layout
from t2d_monai.data.layouts import case_name
from t2d_monai.utils.files import write_atomic, write_csv_atomic

__all__ = ["METHODS", "PRESETS", "Method", "benchmark", "resolve_method"]


def _parse_list(value: Any, name: str, cast=str) -> list:

    if value is None:
        return []
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    elif isinstance(value, (int, float)):  # fire passes "--seeds 0" as the number 0
        value = [value]
    try:
        return [cast(v.strip()) if isinstance(v, str) else cast(v) for v in value]
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a comma-separated list, got {value!r}.") from e


def benchmark(
    out_dir: str = "benchmark_output/comparison",
    methods: str | Sequence[str] | None = None,
    dataset_dir: str | None = None,
    quick: bool = False,
    tiny: bool = False,
    preset: str | None = None,
    num_iterations: int | None = None,
    thickness: str | Sequence[int] | None = None,
    docs_dir: str | None = None,
    notes: str | None = None,
    device: str = "cpu",
    threads: int | None = None,
    seed: int = 0,
    seeds: str | Sequence[int] | None = None,
    learning_rates: str | Sequence[float] | None = None,
    learning_rates_from: str | None = None,
    overlays: str | Sequence[str] | None = None,
    warmup: bool = True,
    bundle: str = DEFAULT_BUNDLE,
    **overrides: Any,
) -> str:
    """Train and evaluate 2D, thickened 2D and 3D methods through a target bundle (hepatic_vessel), side by side.

    Each method is trained on the same training cases with the same number of iterations, its best
    validation checkpoint segments the same held-out test cases, and one table (Markdown + CSV) reports
    Dice (mean and per case), InterSliceSimilarity, inference latency per volume (measured in this
    process, one method after another), parameter count and training time, with a PNG of Dice against
    latency. Progress goes to stdout. Run again with the same ``out_dir`` to resume: finished trainings
    are kept (``<out_dir>/<method>/[lr<lr>/]seed<s>/train_result.json``), an interrupted one continues from its
    checkpoint.

    Args:
        out_dir: working and output folder (models, per-method results, data when synthesised, the table).
            Default ``benchmark_output/comparison``.
        methods: comma-separated method names; default the preset's. Names: deeplab_k1, deeplab_k3,
            deeplab_k12, esm, esm_concat, esm_dot, t2d (ESM + SSA), unet3d, vnet, ahnet; ``t2d_k<K>`` for a
            slab thickness K (Table 4); any 2D name + ``_3views`` for three-view fusion (majority vote).
        dataset_dir: an MSD-layout folder (e.g. Task08_HepaticVessel). Default None: synthesise one into
            ``<out_dir>/data`` with the preset's shape and number of cases.
        quick: the ``quick`` preset (3 methods, 64x64x32 volumes, 40 iterations; ~10 minutes on 2 cores).
        tiny: the ``tiny`` preset (2 iterations on 32^3 volumes; for tests).
        preset: ``tiny``, ``quick``, ``cpu`` (default on CPU, docs/results.md: 10 rows, 32 volumes of 128x128x64,
            3200 iterations, 3 seeds, a learning-rate grid), ``cpu96`` (the earlier CPU comparison, 12 rows on
            96x96x48 volumes, 6000 iterations) or ``gpu`` (all methods, the bundle's paper-scale settings).
            Overrides ``quick``/``tiny``.
        num_iterations: training iterations for every method (default the preset's).
        thickness: comma-separated slab thicknesses K; adds ``t2d_k<K>`` methods (Table 4).
        docs_dir: also write ``results.md`` and ``images/comparison.png`` there (e.g. ``docs``).
        notes: a Markdown file whose text is appended to the table (the hand-written reading).
        device: ``cpu`` or ``cuda[:i]``. Default ``cpu``.
        threads: torch CPU threads (default: torch's).
        seed: seed of the synthetic data and of a split by seed (not of a preset's ``split_cases``). Default 0.
        seeds: comma-separated training seeds; every row is trained once per seed (``<out_dir>/<method>/seed<s>``)
            and reported as the mean and spread over seeds. Default: the preset's (``cpu``: 0,1,2).
        learning_rates: comma-separated grid; each row's learning rate is the one with the best validation Dice at
            the first seed (recorded in ``<out_dir>/<method>/learning_rate.json`` and the table). Default: the
            preset's (``cpu``: 0.001,0.002); empty: each row's config value.
        learning_rates_from: an earlier benchmark's ``out_dir``: each row takes the learning rate chosen there (its
            ``<method>/learning_rate.json``, copied beside the row with ``taken_from``) instead of a grid, e.g. a
            longer budget reusing the choice made at a shorter one. Excludes ``learning_rates``.
        overlays: comma-separated extra training overlays for every row, after the row's own, as names under the
            bundle's ``configs/`` (e.g. ``augment.json``: slab-consistent in-plane and intensity augmentation).
        warmup: run each method once, untimed, on the first test case before timing it. Default True.
        bundle: the target bundle every row runs through (``bundles/<bundle>``, docs/bundles.md); synthetic data is
            written in its layout (its ``target.json`` ``synthetic_layout``). Default hepatic_vessel.
        overrides: any further bundle config values for every method, e.g. ``--backbone resnet50``.

    Returns:
        path of the written ``comparison.md``.

    Raises:
        ValueError: unknown method or preset, or bad numbers.
        FileNotFoundError: ``dataset_dir`` does not exist.

    Example::

        python -m t2d_monai benchmark --quick --out_dir runs/quick
        python -m t2d_monai benchmark --out_dir runs/cpu --docs_dir docs --notes docs/results_reading.md
        python -m t2d_monai benchmark --preset gpu --device cuda --dataset_dir /data/Task08_HepaticVessel
    """
    command = "python -m t2d_monai benchmark " + shlex.join(sys.argv[2:]) if sys.argv[1:2] == ["benchmark"] else None
    device = str(device)
    name = preset or ("tiny" if tiny else "quick" if quick else ("cpu" if device == "cpu" else "gpu"))
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {list(PRESETS)}, got {preset!r}.")
    conf = PRESETS[name]
    names = _parse_list(methods, "methods") or list(conf["methods"])
    names += [f"t2d_k{k}" for k in _parse_list(thickness, "thickness", int)]
    run_methods = [resolve_method(n) for n in dict.fromkeys(names)]
    seed_list = _parse_list(seeds, "seeds", int) if seeds is not None else list(conf.get("seeds", [0]))
    grid = _parse_list(learning_rates, "learning_rates", float) if learning_rates is not None else \
        list(conf.get("learning_rates", []))
    if not seed_list:
        raise ValueError("seeds must name at least one training seed, e.g. --seeds 0,1,2.")
    if any(lr <= 0 for lr in grid):
        raise ValueError(f"learning_rates must be positive, got {grid}.")
    if learning_rates_from is not None:
        if learning_rates is not None and grid:
            raise ValueError("give either learning_rates (a grid to choose from) or learning_rates_from (the choices "
                             "of an earlier out_dir), not both.")
        grid = []  # not the preset's grid either
    budget = _budget(conf, overrides, num_iterations, seed, device, synthetic=dataset_dir is None)
    extra = tuple(_parse_list(overlays, "overlays"))
    root = bundle_dir(bundle)
    missing = [o for o in extra if not (root / "configs" / o).is_file()]
    if missing:
        raise FileNotFoundError(f"overlays {missing} are not in {root / 'configs'}; give file names there.")
    if threads is not None:
        torch.set_num_threads(int(threads))
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # read before data and training: a row without an earlier choice fails at once, not after the rows before it
    taken = {} if learning_rates_from is None else _take_learning_rates(
        [m for m in run_methods if m.reuse_from not in names], Path(learning_rates_from), out)
    load_start = load_average()
    log(f"preset {name}: methods {[m.name for m in run_methods]}, seeds {seed_list}, learning-rate grid {grid}, "
        f"output {out}, load {load_start}")
    data_note = "given folder"
    if dataset_dir is None:
        data_note = f"synthetic, `python -m t2d_monai synth --shape {','.join(map(str, conf['shape']))} --num_cases " \
                    f"{conf['num_cases']} --seed {seed}`"
    dataset = prepare_data(out, dataset_dir, conf, seed, synthetic_layout(root))
    if dataset_dir is None and "split_cases" in conf and "split_file" not in budget:  # the preset's held-out cases
        budget["split_file"] = write_case_split(out, dataset, conf["split_cases"], root)
        held = conf["split_cases"]
        data_note += f"; test cases {held['test']}, validation cases {held['validation']} by number (`split.json`)"

    probe = _split_probe(dataset, budget, root)
    split = probe.get_parsed_content("datasplit")
    cases = split["test"] or split["validation"]
    fit_cases = split["training"][: len(cases)]
    trained: dict[str, tuple[float | None, list[tuple[MethodRun, dict, dict, dict]]]] = {}
    for i, method in enumerate(run_methods, 1):
        log(f"[{i}/{len(run_methods)}] {method.name} ({method.label})")
        base = trained.get(method.reuse_from or "")
        if base is not None:
            lr = base[0]
        elif method.name in taken:
            lr = taken[method.name]
        else:
            lr = _choose_learning_rate(method, grid, seed_list[0], out, dataset, budget, device, extra, root)
        runs = []
        for s in seed_list:
            run = _make_run(method, out, dataset, budget, device, s, lr, extra, root)
            reuse = _make_run(resolve_method(method.reuse_from), out, dataset, budget, device, s, lr, extra, root).root \
                if method.reuse_from else None
            record = _train_once(run, reuse)
            runs.append((run, record, *_evaluate_once(run, cases, fit_cases)))
        trained[method.name] = (lr, runs)

    load_eval = load_average()
    log(f"timing {len(run_methods)} methods x {len(seed_list)} seeds on {len(cases)} held-out cases, one after "
        f"another (load {load_eval})")
    threshold = best_global_threshold(cases, probe.get_parsed_content("foreground_labels"))
    rows, per_case, untrained = [], [], 0
    for method in run_methods:
        lr, runs = trained[method.name]
        per_seed = []
        for run, record, evaluation, fit in runs:
            latency = measure_latency(run, cases, warmup)
            untrained += not latency["trained_weights"]
            timed = {c["case"]: c for c in latency["cases"]}
            evaluation = {**evaluation, "cases": [{**c, **timed[c["case"]]} for c in evaluation["cases"]]}
            per_seed.append((record, evaluation, fit))
            per_case += [{"method": method.name, "seed": run.seed, **c} for c in evaluation["cases"]]
        shown = lr if lr is not None else budget.get("learning_rate")  # a grid's choice, or --learning_rate
        rows.append({**summary(method.name, method.label, per_seed, shown), "kind": method.kind})
    info = {
        "command": command or f"python -m t2d_monai benchmark --preset {name} --out_dir {out_dir}",
        "machine": machine_description(device, torch.get_num_threads()),
        "load_start": load_start, "load_eval": load_eval, "load_end": load_average(),
        "dataset": str(dataset_dir) if dataset_dir is not None else "<out_dir>/data",  # as the command gives it
        "num_train": len(split["training"]), "num_val": len(split["validation"]), "num_test": len(cases),
        "num_fit": len(fit_cases),
        "data_note": data_note, "iterations": budget.get("num_iterations", "the config's"),
        "batch": f"{budget.get('volumes_per_batch', 'config')} volumes x {budget.get('slabs_per_volume', 'config')} "
                 "slabs or patches",
        "preset": name, "overrides": {k: v for k, v in budget.items() if k != "spatial_size"},
        "seeds": seed_list, "learning_rates": grid, "extra_overlays": list(extra),
        "learning_rate_rule": _learning_rate_rule(grid, learning_rates_from),
        "threshold_dice": threshold["mean_dice"], "threshold_hu": threshold["hu"],
        "timed_untrained": untrained, "timed_runs": sum(len(trained[m.name][1]) for m in run_methods),
        "train_machines": sorted({rec.get("machine", "not recorded") for _, runs in trained.values()
                                  for _, rec, _, _ in runs}),
    }
    curves = {m.name: [record for _, record, _, _ in trained[m.name][1]] for m in run_methods}
    return _write_outputs(out, rows, per_case, curves, info, notes, docs_dir)


def _budget(conf: dict, overrides: dict, num_iterations: int | None, seed: int = 0, device: str = "cpu",
            synthetic: bool = False) -> dict:
    """The overrides every method gets: the preset's, the command line's, a schedule scaled to the budget, the
    split (the preset's counts, ``seed``), the loader workers for ``device``, and for ``synthetic`` data the
    volumes' own in-plane size (a preset's ``split_cases`` file is added once the data are written)."""
    budget = {**conf["overrides"], **overrides}
    if synthetic:
        budget.setdefault("spatial_size", [-1, -1])
    for key, value in (("num_test", conf["num_test"]), ("num_validation", conf["num_validation"]),
                       ("split_seed", seed), ("num_workers", 0 if device == "cpu" else 4)):
        budget.setdefault(key, value)
    if num_iterations is not None:
        if int(num_iterations) < 1:
            raise ValueError(f"num_iterations must be >= 1, got {num_iterations}.")
        budget["num_iterations"] = int(num_iterations)
    if "num_iterations" in budget:
        n = budget["num_iterations"]
        budget.setdefault("iterations_per_epoch", min(n, budget.get("iterations_per_epoch", n)))
        budget.setdefault("lr_milestones", [max(1, int(0.7 * n)), max(1, int(0.9 * n))])
        if n % budget["iterations_per_epoch"]:
            budget["iterations_per_epoch"] = n
    return budget


def _make_run(method: Method, out: Path, dataset: str, budget: dict, device: str, seed: int,
              lr: float | None, extra: tuple[str, ...], bundle: Path) -> MethodRun:
    """A run folder per method, learning rate (when chosen from a grid) and seed: ``<out>/<method>/[lr<lr>/]seed<s>``."""
    root = out / method.name / ("" if lr is None else f"lr{lr:g}") / f"seed{seed}"
    return MethodRun(method, root, dataset, budget, device, bundle, seed=seed, learning_rate=lr,
                     extra_overlays=extra)


def _train_once(run: MethodRun, reuse: Path | None = None) -> dict:
    """Train ``run`` unless its ``train_result.json`` exists (then that record is returned); either way only under
    the settings it was started with (:meth:`MethodRun.check_settings`)."""
    run.check_settings()
    record = run.root / "train_result.json"
    if record.is_file():
        log(f"  {run.method.name} seed {run.seed}: trained earlier, kept ({record})")
        return json.loads(record.read_text())
    log(f"  training {run.method.name}, seed {run.seed}" + ("" if run.learning_rate is None else f", lr {run.learning_rate:g}"))
    result = {**train(run, reuse), "method": run.method.name, "overrides": run.overrides}
    write_json(record, result)
    log(f"  {run.method.name} seed {run.seed}: trained in {result['train_time_s']:.1f} s, best validation Dice "
        f"{result['best_val_dice']:.4f}")
    return result


def _evaluate_once(run: MethodRun, cases: list[dict], fit_cases: list[dict]) -> tuple[dict, dict]:
    """``run``'s evaluation on the held-out ``cases`` (all metrics) and on ``fit_cases`` (training cases, Dice only),
    made right after its training and kept in ``eval_result.json`` / ``eval_training_cases.json``, so that a run folder
    holds its result without its model; a kept one made on other cases or with other options is made again."""
    results, pipe = [], None  # the network is built and loaded once, for both lists
    for name, wanted, options in (("eval_result.json", cases, {"ceiling": True, "vessel_metrics": True}),
                                  ("eval_training_cases.json", fit_cases, {"ceiling": False, "vessel_metrics": False})):
        path = run.root / name
        kept = json.loads(path.read_text()) if path.is_file() else {}
        if [c.get("case") for c in kept.get("cases", [])] != [case_name(str(c["image"])) for c in wanted] \
                or kept.get("options") != options:
            pipe = pipe or pipeline(run)
            kept = {**evaluate(run, wanted, pipe=pipe, **options), "options": options}
            write_json(path, kept)
        results.append(kept)
    return results[0], results[1]


def _choose_learning_rate(method: Method, grid: list[float], seed: int, out: Path, dataset: str, budget: dict,
                          device: str, extra: tuple[str, ...], bundle: Path) -> float | None:
    """The learning rate with the best validation Dice for ``method`` at ``seed`` among ``grid`` and the row's own
    config value (so that no row loses the rate its recipe was made with: the 3D row's is far above the 2D rows'),
    None without a grid; the choice and every candidate's score are written to ``<out>/<method>/learning_rate.json``."""
    if not grid:
        return None
    probe = _make_run(method, out, dataset, budget, device, seed, None, extra, bundle)
    own = float(probe.parser(probe.train_files).get_parsed_content("learning_rate"))
    candidates = sorted({*grid, own})
    scores = {lr: _train_once(_make_run(method, out, dataset, budget, device, seed, lr, extra, bundle))["best_val_dice"]
              for lr in candidates}
    best = max(candidates, key=lambda lr: (scores[lr], -lr))  # ties: the smaller rate
    write_json(out / method.name / "learning_rate.json",
               {"grid": grid, "config_value": own, "candidates": candidates,
                "best_val_dice": {f"{lr:g}": scores[lr] for lr in candidates}, "chosen": best, "seed": seed})
    log(f"  {method.name}: learning rate {best:g} chosen from {candidates} (validation Dice {scores})")
    return best


def _take_learning_rates(methods: list[Method], earlier: Path, out: Path) -> dict[str, float]:
    """Each method's learning rate chosen in the ``earlier`` out_dir (its ``<method>/learning_rate.json``), recorded
    again under ``out`` with the file it was taken from.

    Raises:
        FileNotFoundError: ``earlier`` holds no choice for one of ``methods`` (checked for all before any is copied).
    """
    paths = {m.name: earlier / m.name / "learning_rate.json" for m in methods}
    for name, path in paths.items():
        if not path.is_file():
            raise FileNotFoundError(f"learning_rates_from: {path} does not exist; run the benchmark in {earlier} with "
                                    f"a --learning_rates grid for {name} first, or choose its rate here with a grid.")
    rates = {}
    for name, path in paths.items():
        choice = json.loads(path.read_text())
        if (out / name / "learning_rate.json").resolve() != path.resolve():
            write_json(out / name / "learning_rate.json", {**choice, "taken_from": str(path.resolve())})
        log(f"  {name}: learning rate {choice['chosen']:g} taken from {path}")
        rates[name] = float(choice["chosen"])
    return rates


def _learning_rate_rule(grid: list[float], earlier: str | None) -> str:
    """The page's sentence on how each row's learning rate was set."""
    how = (f"taken per row from the choice made in `{earlier}` (its `<method>/learning_rate.json`: the best "
           "validation Dice at that run's first seed among its grid and the row's own config value; copied beside "
           "each row here with `taken_from`)") if earlier is not None else (
        f"chosen per row from the grid {grid} plus the row's own config value by the best validation Dice at the "
        "first seed (an empty grid: each row keeps its config value, or the `--learning_rate` given to every row)")
    return how + ", the same way for every row; three-view rows use their single-view row's choice."


def _split_probe(dataset: str, budget: dict, bundle: Path):
    """The bundle's ``train.json`` parsed for ``dataset`` under the benchmark's split settings: its ``datasplit``
    (train/validation/test) and its target's ``foreground_labels``."""
    split_settings = {k: v for k, v in budget.items() if k in ("num_test", "num_validation", "split_seed", "split_file")}
    return parse_configs([bundle / "configs" / "train.json"], bundle, {**split_settings, "dataset_dir": dataset})


def _write_outputs(out: Path, rows: list[dict], per_case: list[dict], curves: dict[str, list[dict]], info: dict,
                   notes: str | None, docs_dir: str | None) -> str:
    """The table (Markdown, CSV), per-case CSV, Dice-vs-latency and learning-curve PNGs; also into ``docs_dir``."""
    write_csv_atomic(str(out / "comparison.csv"), rows, COLUMNS)
    write_csv_atomic(str(out / "comparison_per_case.csv"), per_case, list(per_case[0]))
    plot(rows, out / "comparison.png")
    plot_curves(curves, out / "curves.png")
    note_text = Path(notes).read_text() if notes else None
    md = out / "comparison.md"
    write_atomic(str(md), markdown(rows, info, "comparison.png", "curves.png", note_text))
    write_json(out / "comparison_info.json", info)
    if docs_dir is not None:
        docs = Path(docs_dir)
        (docs / "images").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "comparison.png", docs / "images" / "comparison.png")
        shutil.copyfile(out / "curves.png", docs / "images" / "curves.png")
        write_atomic(str(docs / "results.md"),
                     markdown(rows, info, "images/comparison.png", "images/curves.png", note_text))
        write_csv_atomic(str(docs / "results.csv"), rows, COLUMNS)
    log(f"wrote {md}")
    return str(md)
