"""The paper's comparison (Yu et al. 2019, Table 1, 3, 4): 2D, thickened 2D and 3D baselines, trained and
evaluated side by side through the hepatic_vessel bundle.

Command: ``python -m t2d_monai benchmark`` (``--help`` for the arguments). Paper:
https://arxiv.org/abs/1904.01150.

The rows and presets are in :mod:`~t2d_monai.benchmarks.methods`, training and evaluation of one row in
:mod:`~t2d_monai.benchmarks.runner`, the outputs in :mod:`~t2d_monai.benchmarks.report`. Every method gets
the same budget overrides (the same number of iterations, batch and validation schedule, so the budget is
*iterations*, not wall-clock time). Then, in one process and one method after another, each method's
best-validation checkpoint segments the same held-out cases; the command writes ``comparison.md``,
``comparison.csv`` (one row per method), ``comparison_per_case.csv`` and ``comparison.png`` (Dice against
latency) into ``out_dir``, and with ``docs_dir`` also ``results.md`` and ``images/comparison.png`` there.

Resuming: each finished training writes ``<out_dir>/<method>/train_result.json`` atomically and is
never repeated; an interrupted training continues from its ``models/checkpoint.pt`` (the bundle's
``resume``). Evaluation and latency are always measured again, all in the same process.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from t2d_monai.benchmarks.methods import METHODS, PRESETS, Method, resolve_method
from t2d_monai.benchmarks.report import COLUMNS, machine_description, markdown, plot, summary
from t2d_monai.benchmarks.runner import MethodRun, evaluate, load_average, log, prepare_data, train, write_json
from t2d_monai.bundle.paths import bundle_dir
from t2d_monai.utils.files import write_atomic, write_csv_atomic

__all__ = ["METHODS", "PRESETS", "Method", "benchmark", "resolve_method"]


def _parse_list(value: Any, name: str, cast=str) -> list:

    if value is None:
        return []
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
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
    warmup: bool = True,
    **overrides: Any,
) -> str:
    """Train and evaluate 2D, thickened 2D and 3D methods through the hepatic_vessel bundle, side by side.

    Each method is trained on the same training cases with the same number of iterations, its best
    validation checkpoint segments the same held-out test cases, and one table (Markdown + CSV) reports
    Dice (mean and per case), InterSliceSimilarity, inference latency per volume (measured in this
    process, one method after another), parameter count and training time, with a PNG of Dice against
    latency. Progress goes to stdout. Run again with the same ``out_dir`` to resume: finished trainings
    are kept (``<out_dir>/<method>/train_result.json``), an interrupted one continues from its checkpoint.

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
        preset: ``tiny``, ``quick``, ``cpu`` (default on CPU: 7 methods, 96x96x48 volumes, 300 iterations)
            or ``gpu`` (all methods, the bundle's paper-scale settings). Overrides ``quick``/``tiny``.
        num_iterations: training iterations for every method (default the preset's).
        thickness: comma-separated slab thicknesses K; adds ``t2d_k<K>`` methods (Table 4).
        docs_dir: also write ``results.md`` and ``images/comparison.png`` there (e.g. ``docs``).
        notes: a Markdown file whose text is appended to the table (the hand-written reading).
        device: ``cpu`` or ``cuda[:i]``. Default ``cpu``.
        threads: torch CPU threads (default: torch's).
        seed: seed of the synthetic data and of the split. Default 0.
        warmup: run each method once, untimed, on the first test case before timing it. Default True.
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
    command = "python -m t2d_monai benchmark " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["benchmark"] else None
    name = preset or ("tiny" if tiny else "quick" if quick else ("cpu" if device == "cpu" else "gpu"))
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {list(PRESETS)}, got {preset!r}.")
    conf = PRESETS[name]
    names = _parse_list(methods, "methods") or list(conf["methods"])
    names += [f"t2d_k{k}" for k in _parse_list(thickness, "thickness", int)]
    run_methods = [resolve_method(n) for n in dict.fromkeys(names)]
    budget = {**conf["overrides"], **overrides}
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
    if threads is not None:
        torch.set_num_threads(int(threads))
    device = str(device)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    load_start = load_average()
    log(f"preset {name}: methods {[m.name for m in run_methods]}, output {out}, load {load_start}")
    data_note = "given folder"
    if dataset_dir is None:
        data_note = f"synthetic, `python -m t2d_monai synth --shape {','.join(map(str, conf['shape']))} --num_cases " \
                    f"{conf['num_cases']} --seed {seed}`"
        budget.setdefault("spatial_size", [-1, -1])  # keep the synthetic volumes' in-plane size
    dataset = prepare_data(out, dataset_dir, conf, seed)
    budget.setdefault("num_test", conf["num_test"])
    budget.setdefault("num_validation", conf["num_validation"])
    budget.setdefault("split_seed", seed)
    budget.setdefault("num_workers", 0 if device == "cpu" else 4)

    results = {}
    for i, method in enumerate(run_methods, 1):
        run = MethodRun(method, out / method.name, dataset, budget, device, bundle_dir())
        record = out / method.name / "train_result.json"
        if record.is_file():
            log(f"[{i}/{len(run_methods)}] {method.name}: trained earlier, kept ({record})")
            results[method.name] = (run, json.loads(record.read_text()))
            continue
        log(f"[{i}/{len(run_methods)}] training {method.name} ({method.label})")
        train_record = train(run, out)
        write_json(record, {**train_record, "method": method.name, "overrides": run.overrides})
        results[method.name] = (run, train_record)
        log(f"  {method.name}: trained in {train_record['train_time_s']:.1f} s")

    from monai.bundle import ConfigParser

    probe = ConfigParser()
    probe.read_config([str(bundle_dir() / "configs" / "train.json")])
    probe.update({k: v for k, v in budget.items() if k in ("num_test", "num_validation", "split_seed")})
    probe.update({"dataset_dir": dataset})
    split = probe.get_parsed_content("datasplit")
    cases = split["test"] or split["validation"]
    load_eval = load_average()
    log(f"evaluating {len(run_methods)} methods on {len(cases)} held-out cases, one after another (load {load_eval})")
    rows, per_case = [], []
    fit_cases = split["training"][: len(cases)]
    for method in run_methods:
        run, train_record = results[method.name]
        evaluation = evaluate(run, cases, warmup)
        write_json(out / method.name / "eval_result.json", evaluation)
        fit = evaluate(run, fit_cases, warmup=False, ceiling=False)  # only the Dice is used
        write_json(out / method.name / "eval_training_cases.json", fit)
        row = summary(method.name, method.label, train_record, evaluation, fit)
        rows.append(row)
        per_case += [{"method": method.name, **c} for c in evaluation["cases"]]
    info = {
        "command": command or f"python -m t2d_monai benchmark --preset {name} --out_dir {out_dir}",
        "machine": machine_description(device, torch.get_num_threads()),
        "load_start": load_start, "load_eval": load_eval, "load_end": load_average(),
        "dataset": dataset if dataset_dir else "<out_dir>/data",
        "num_train": len(split["training"]), "num_val": len(split["validation"]), "num_test": len(cases),
        "num_fit": len(fit_cases),
        "data_note": data_note, "iterations": budget.get("num_iterations", "the config's"),
        "batch": f"{budget.get('volumes_per_batch', 'config')} volumes x {budget.get('slabs_per_volume', 'config')} "
                 "slabs or patches",
        "preset": name, "overrides": {k: v for k, v in budget.items() if k != "spatial_size"},
    }
    table_rows = [{**r, "kind": results[r["method"]][0].method.kind} for r in rows]
    write_csv_atomic(str(out / "comparison.csv"), rows, COLUMNS)
    write_csv_atomic(str(out / "comparison_per_case.csv"), per_case, list(per_case[0]))
    plot(table_rows, out / "comparison.png")
    note_text = Path(notes).read_text() if notes else None
    md = out / "comparison.md"
    write_atomic(str(md), markdown(table_rows, info, "comparison.png", note_text))
    write_json(out / "comparison_info.json", info)
    if docs_dir is not None:
        docs = Path(docs_dir)
        (docs / "images").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "comparison.png", docs / "images" / "comparison.png")
        write_atomic(str(docs / "results.md"), markdown(table_rows, info, "images/comparison.png", note_text))
        write_csv_atomic(str(docs / "results.csv"), rows, COLUMNS)
    log(f"wrote {md}")
    return str(md)
