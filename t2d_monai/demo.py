"""The one-command demo: synthetic data -> train -> evaluate -> infer -> preview, through the MONAI bundle runner.

Every step runs the hepatic_vessel bundle exactly as a user would (``python -m monai.bundle run ...``) with
the CPU overlay ``cpu_small.json``, so the demo also proves that the bundle works as written.
"""

from __future__ import annotations

import csv
import functools
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from t2d_monai.data.layouts import case_name

__all__ = ["demo", "run_demo"]


def _read_metric(csv_path: Path) -> list[tuple[str, float]]:
    with csv_path.open() as f:
        rows = list(csv.reader(f))
    return [(case_name(r[0]), float(r[-1])) for r in rows[1:] if r]


def run_demo(
    out: str = "demo_output",
    num_cases: int = 36,
    num_test: int = 1,
    seed: int = 0,
    shape: Sequence[int] = (128, 128, 64),
    num_iterations: int | None = None,
    view: str = "coronal",
    bundle: str = "hepatic_vessel",
    bundle_dir: str | None = None,
    overwrite: bool = False,
    report: str | None = None,
    overrides: dict | None = None,
    overlays: str | Sequence[str] = (),
) -> dict:
    """Synthesise data, train, evaluate and infer with a target bundle (hepatic_vessel) on CPU, then draw a preview.

    Steps (each one a real ``python -m monai.bundle run`` of the bundle with ``cpu_small.json``):

    1. ``python -m t2d_monai synth`` writes ``num_cases`` labelled and ``num_test`` unlabelled cases to
       ``<out>/data`` in the bundle's data layout (hepatic_vessel: MSD Task08; see the bundle's
       ``target.json`` ``synthetic_layout``); an existing synthetic set there is reused.
    2. ``run training`` trains T2DNet (the CPU overlay: resnet18 without layer4, 6-slice slabs, ESM + SSA,
       full-resolution decoder) into ``<out>/bundle/models``.
    3. ``run evaluating`` (``evaluate.json``) writes per-case and mean Dice and inter-slice similarity
       CSVs on the held-out split to ``<out>/bundle/eval``.
    4. ``run`` (``inference.json``) writes NIfTI predictions of the held-out cases in their input space.
    5. A preview PNG of the first held-out case (MIPs and slices, TP/FP/FN colours) to ``<out>/preview.png``.

    Args:
        out: output folder (created). Nothing outside it is written.
        num_cases: labelled synthetic cases (split into train/validation/test by the bundle: 24/3/9 at the
            default; 16 training volumes lifted the validation Dice over 8, and 24 over 16,
            docs/experiments/demo_recipe). Default 36.
        num_test: unlabelled cases in imagesTs. Default 1.
        seed: data seed. Default 0.
        shape: synthetic volume size X,Y,Z. Default 128,128,64.
        num_iterations: training iterations; default: the CPU overlay's value.
        view: slicing view to train (axial, coronal or sagittal). Default coronal, as the paper.
        bundle: the target bundle of this checkout (``bundles/<bundle>``, docs/bundles.md). Default hepatic_vessel.
        bundle_dir: the bundle folder, instead of ``bundle`` (its synthetic data: the MSD layout unless it has a
            ``target.json``).
        overwrite: start again: retrain (and replace the data if it was made with other settings).
        report: also write the summary as Markdown to this path (e.g. docs/demo.md), atomically.
        overrides: extra bundle config overrides for every step, e.g. ``{"num_slices": 9}``.
        overlays: training-only config files of the bundle's ``configs/`` (augmentation or schedule: ``flip.json``,
            ``augment.json``, ``step_lr.json``), put after ``cpu_small.json`` for the training step only; a comma-
            separated string or a list. What the evaluation and inference must also see (the network's settings)
            belongs in ``overrides``. Default none.

    Returns:
        a summary dict: mean Dice, per-case Dice, inter-slice similarity, output paths, step times.
    """
    import nibabel as nib
    import numpy as np

    from t2d_monai.benchmarks.machine import cpu_yardstick_s
    from t2d_monai.benchmarks.threshold_baseline import best_global_threshold
    from t2d_monai.bundle import paths
    from t2d_monai.bundle.bundle_run import run_bundle as _bundle_run
    from t2d_monai.bundle.layout import parse_configs
    from t2d_monai.bundle.recipe import synthetic_layout
    from t2d_monai.data.synthetic_layouts import synth, synthetic_dataset_exists
    from t2d_monai.visualize import save_preview

    bundle_path = paths.bundle_dir(bundle, bundle_dir)
    configs = bundle_path / "configs"
    layout = synthetic_layout(bundle_path)
    extra = [part.strip() for name in ([overlays] if isinstance(overlays, str) else overlays)
             for part in str(name).split(",") if part.strip()]
    missing = [name for name in extra if not (configs / name).is_file()]
    if missing:  # before any work
        raise FileNotFoundError(f"demo overlays {missing} are not in {configs}; choose from "
                                f"{sorted(p.name for p in configs.glob('*.json'))}.")
    train_files = [configs / "train.json", configs / "cpu_small.json", *[configs / name for name in extra]]
    out_dir = Path(out).resolve()
    data_dir, run_dir = out_dir / "data", out_dir / "bundle"
    times: dict[str, float] = {}
    yardstick = cpu_yardstick_s()  # before any work: the machine's speed, to compare the step times across machines

    start = time.perf_counter()
    if synthetic_dataset_exists(str(data_dir), layout) and not overwrite:
        print(f"=== 1/5 reusing the synthetic data set in {data_dir}")
    else:
        print(f"=== 1/5 synthesising {num_cases} + {num_test} cases of shape {tuple(shape)} ({layout} layout) into "
              f"{data_dir}", flush=True)
        synth(str(data_dir), num_cases, num_test, seed, tuple(shape), overwrite=overwrite, layout=layout)
    times["synth"] = time.perf_counter() - start

    common = {**(overrides or {}), "bundle_root": str(run_dir), "dataset_dir": str(data_dir), "view": view}
    if (run_dir / "models" / "checkpoint.pt").is_file() and not overwrite:
        print("\n=== 2/5 a finished or interrupted training run exists: resuming it (use --overwrite to retrain)")
        common_train = {**common, "resume": True}
    else:
        common_train = common
    if num_iterations is not None:
        common_train = {**common_train, "num_iterations": int(num_iterations)}
    times["train"] = _bundle_run("training", train_files, "2/5 training", **common_train)
    times["evaluate"] = _bundle_run(
        "evaluating", [configs / "train.json", configs / "evaluate.json", configs / "cpu_small.json"],
        "3/5 evaluating on the held-out cases", **common,
    )
    # the held-out cases as the evaluation saw them (the overrides may set split_file, num_test, ...)
    probe = parse_configs([configs / "train.json", configs / "cpu_small.json"], run_dir, common)
    split, data_layout = probe.get_parsed_content("datasplit"), probe.get_parsed_content("data_layout")
    held_out = split["test"] or split["validation"]
    infer_list = [{"image": item["image"]} for item in held_out]
    times["infer"] = _bundle_run(
        "run", [configs / "inference.json", configs / "cpu_small.json"], "4/5 inference on the held-out cases",
        **common, datalist=infer_list,
    )

    print("\n=== 5/5 preview picture", flush=True)
    case = held_out[0]
    image_nii = nib.as_closest_canonical(nib.load(case["image"]))
    label = np.asarray(nib.as_closest_canonical(nib.load(case["label"])).dataobj)
    name = os.path.basename(case["image"]).replace(".nii.gz", "")
    # a subject-folder layout keeps the subject folder in the output (every CT there is ct.nii.gz)
    subject = "" if data_layout == "msd" else os.path.relpath(os.path.dirname(case["image"]), data_dir)
    pred_path = run_dir / "eval" / subject / f"{name}_seg.nii.gz"
    label = np.isin(label, probe.get_parsed_content("foreground_labels")).astype(np.uint8)
    prediction = np.asarray(nib.as_closest_canonical(nib.load(str(pred_path))).dataobj)
    preview = save_preview(
        np.asarray(image_nii.dataobj), label, prediction, str(out_dir / "preview.png"),
        spacing=image_nii.header.get_zooms()[:3], title=f"{name}: T2DNet ({view}) vs ground truth",
    )

    eval_dir = run_dir / "eval"
    dice = _read_metric(eval_dir / "val_mean_dice_raw.csv")
    threshold = best_global_threshold(held_out, probe.get_parsed_content("foreground_labels"))
    similarity = _read_metric(eval_dir / "val_inter_slice_similarity_raw.csv")
    summary = {
        "mean_dice": float(np.mean([d for _, d in dice])),
        "dice_per_case": dict(dice),
        "mean_inter_slice_similarity": float(np.mean([s for _, s in similarity])),
        "threshold_hu": threshold["hu"],
        "threshold_mean_dice": threshold["mean_dice"],
        "threshold_dice_per_case": threshold["per_case_dice"],
        "predictions": str(eval_dir),
        "checkpoint": str(run_dir / "models" / "model.pt"),
        "preview": preview,
        "seconds": {k: round(v, 1) for k, v in times.items()},
        "cpu_yardstick_s": round(yardstick, 3),
    }
    print("\n=== demo finished")
    for name, value in dice:
        print(f"  {name}: Dice {value:.3f} (best global HU threshold "
              f"{summary['threshold_dice_per_case'].get(name, float('nan')):.3f})")
    print(f"  mean Dice {summary['mean_dice']:.3f}, inter-slice similarity {summary['mean_inter_slice_similarity']:.3f}")
    print(f"  best single global HU threshold on the same held-out cases (>= {summary['threshold_hu']} HU, chosen on "
          f"them): mean Dice {summary['threshold_mean_dice']:.3f}")
    print(f"  predictions: {eval_dir}\n  preview:     {preview}\n  model:       {summary['checkpoint']}")
    print(f"  time (s): {summary['seconds']}; CPU yardstick {summary['cpu_yardstick_s']} s (lower is faster)")
    if report:
        _write_report(report, summary, num_cases, num_test, seed, shape, view, bundle_path.name, extra)
        print(f"  report:      {report}")
    return summary


def _write_report(path, summary, num_cases, num_test, seed, shape, view, bundle="hepatic_vessel", overlays=()) -> None:
    """The demo's figures as Markdown, with the command and the machine, written atomically."""
    import platform

    from t2d_monai.benchmarks.machine import cpu_name
    from t2d_monai.utils.files import write_atomic

    argv = " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("__main__.py") else "demo"
    lines = [
        "# Demo: synthetic data, CPU overlay",
        "",
        "Written by the command below (`t2d_monai.demo`); rerun it to reproduce.",
        "",
        "```bash",
        f"python -m t2d_monai {argv}",
        "```",
        "",
        f"- data: {num_cases} labelled + {num_test} unlabelled synthetic cases of shape {tuple(shape)}, seed {seed}",
        f"- bundle: {bundle}, {' + '.join(f'`{n}`' for n in ['train.json', 'cpu_small.json', *overlays])}, view {view}",
        f"- machine: {platform.machine()}, {cpu_name()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f} at the end; CPU yardstick {summary['cpu_yardstick_s']} s before the "
        "first step (`t2d_monai.benchmarks.machine.cpu_yardstick_s`: one fixed convolution workload, lower is faster; "
        "step times from machines with different yardsticks are not comparable)",
        "",
        f"| held-out case | Dice (T2DNet) | best global HU threshold (>= {summary['threshold_hu']} HU) |",
        "|---|---|---|",
        *[f"| {name} | {value:.3f} | {summary['threshold_dice_per_case'].get(name, float('nan')):.3f} |"
          for name, value in summary["dice_per_case"].items()],
        f"| **mean** | **{summary['mean_dice']:.3f}** | **{summary['threshold_mean_dice']:.3f}** |",
        "",
        "The threshold column is one HU threshold for all held-out cases, chosen on those very cases to maximise "
        "their mean Dice (`t2d_monai.benchmarks.threshold_baseline.best_global_threshold`): an upper bound for any "
        "single global threshold, the least a network should beat.",
        "",
        f"Inter-slice similarity (L2 distance to the ground truth's neighbour-slice Dice profile, lower is better): "
        f"{summary['mean_inter_slice_similarity']:.3f}",
        "",
        "What this shows: the bundle trains, evaluates and infers end to end on a CPU in minutes. It is not a "
        "measure of the method: the CPU overlay trains a small network from random weights for a tiny fraction "
        "of the paper's budget. Compare the Dice with the best global HU threshold on the same generator "
        "([synthetic_threshold_baseline.md](synthetic_threshold_baseline.md)) before reading anything into it.",
        "",
        "| step | seconds |",
        "|---|---|",
        *[f"| {step} | {sec} |" for step, sec in summary["seconds"].items()],
        f"| **total** | **{sum(summary['seconds'].values()):.1f}** |",
        "",
    ]
    if os.path.isfile(summary["preview"]):
        images = Path(path).resolve().parent / "images"
        images.mkdir(parents=True, exist_ok=True)
        target = images / "demo_preview.png"
        write_atomic(str(target), Path(summary["preview"]).read_bytes())
        lines += ["![demo preview](images/demo_preview.png)", ""]
    write_atomic(str(path), "\n".join(lines).encode())


@functools.wraps(run_demo)
def demo(*args, **kwargs) -> None:
    """Command-line entry (``python -m t2d_monai demo``): :func:`run_demo`, printing its summary only once."""
    run_demo(*args, **kwargs)
