"""The paper's comparison (Yu et al. 2019, Table 1, 3, 4): 2D, thickened 2D and 3D baselines, trained and
evaluated side by side through the hepatic_vessel bundle.

Command: ``python -m t2d_monai benchmark`` (``--help`` for the arguments). Paper:
https://arxiv.org/abs/1904.01150.

Every method is a stack of bundle configs (``train.json``, ``cpu_small.json`` on CPU, then the overlays
of ``configs/baselines/``) driven with :class:`monai.bundle.ConfigWorkflow`; the benchmark only adds
the same budget overrides to all of them (the same number of iterations, batch and validation
schedule, so the budget is *iterations*, not wall-clock time). Then, in one process and one method
after another, each method's best-validation checkpoint segments the same held-out cases; the command
writes ``comparison.md``, ``comparison.csv`` (one row per method), ``comparison_per_case.csv`` and
``comparison.png`` (Dice against latency) into ``out_dir``, and with ``docs_dir`` also ``results.md``
and ``images/comparison.png`` there.

Resuming: each finished training writes ``<out_dir>/<method>/train_result.json`` atomically and is
never repeated; an interrupted training continues from its ``models/checkpoint.pt`` (the bundle's
``resume``). Evaluation and latency are always measured again, all in the same process.
"""

from __future__ import annotations

import io
import json
import os
import platform
import re
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t2d_monai.benchmarks.machine import cpu_name
from t2d_monai.utils.files import write_atomic, write_csv_atomic

__all__ = ["METHODS", "PRESETS", "Method", "benchmark", "resolve_method"]

BUNDLE_DIR = Path(__file__).resolve().parents[2] / "bundles" / "hepatic_vessel"
VIEWS_3 = ("axial", "coronal", "sagittal")


@dataclass(frozen=True)
class Method:
    """One row of the comparison: bundle overlays (file names under ``configs/baselines``) and overrides.

    Args:
        name: row name (also the folder under ``out_dir``).
        label: what the row is, in words.
        overlays: config files after ``train.json`` (and ``cpu_small.json``), relative to ``configs/``.
        overrides: extra config values (e.g. ``{"num_slices": 9}`` for the slab-thickness ablation).
        kind: ``"2d"`` (thick-slice inferer along one view) or ``"3d"`` (patches, sliding window).
        three_views: train the axial, coronal and sagittal models and fuse them by majority vote
            (``inference_three_views.json``).
    """

    name: str
    label: str
    overlays: tuple[str, ...] = ()
    overrides: dict[str, Any] = field(default_factory=dict)
    kind: str = "2d"
    three_views: bool = False


_B = "baselines/"
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("deeplab_k1", "DeepLabV3+ on single slices (2D)", (_B + "deeplab_k1.json",)),
        Method("deeplab_k3", "DeepLabV3+ on 3 slices (early fusion)", (_B + "deeplab_k3.json",)),
        Method("deeplab_k12", "DeepLabV3+ on 12 slices (early fusion)", (_B + "deeplab_k12.json",)),
        Method("esm", "T2DNet ESM, no attention", (_B + "esm.json",)),
        Method("esm_concat", "T2DNet ESM + concat", (_B + "esm_concat.json",)),
        Method("esm_dot", "T2DNet ESM + dot", (_B + "esm_dot.json",)),
        Method("t2d", "T2DNet ESM + SSA (ours, single view)"),
        Method("unet3d", "MONAI 3D UNet, patches + sliding window", (_B + "patch3d.json", _B + "unet3d.json"), kind="3d"),
        Method("vnet", "MONAI VNet, patches + sliding window", (_B + "patch3d.json", _B + "vnet.json"), kind="3d"),
        Method("ahnet", "MONAI AHNet, patches + sliding window", (_B + "patch3d.json", _B + "ahnet.json"), kind="3d"),
    )
}


def resolve_method(name: str) -> Method:
    """A :data:`METHODS` entry, ``t2d_k<K>`` (ESM + SSA on K-slice slabs, Table 4), or any 2D one + ``_3views``.

    Raises:
        ValueError: for an unknown name (the message lists the valid ones), or ``_3views`` of a 3D method.
    """
    name = str(name).strip()
    base, three = (name[: -len("_3views")], True) if name.endswith("_3views") else (name, False)
    match = re.fullmatch(r"t2d_k(\d+)", base)
    if match:
        k = int(match.group(1))
        if k < 1:
            raise ValueError(f"method {name!r}: the slab thickness must be >= 1.")
        method = Method(base, f"T2DNet ESM + SSA, k={k}", overrides={"num_slices": k})
    elif base in METHODS:
        method = METHODS[base]
    else:
        raise ValueError(
            f"unknown method {name!r}; valid: {', '.join(METHODS)}, t2d_k<K> (slab thickness K), "
            "and any 2D one with the suffix _3views (three-view fusion)."
        )
    if three:
        if method.kind != "2d":
            raise ValueError(f"method {name!r}: three-view fusion is for 2D methods only, {base!r} is 3D.")
        method = Method(name, method.label + ", three views (vote)", method.overlays, method.overrides, "2d", True)
    return method


#: budgets and sizes. ``tiny`` is for tests, ``quick`` checks that everything works (~10 min on 2 cores),
#: ``cpu`` is the full CPU comparison (about an hour on 2 cores), ``gpu`` the paper-scale settings.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "methods": ["deeplab_k1", "t2d", "unet3d"],
        "shape": [32, 32, 32], "num_cases": 4, "num_test": 1, "num_validation": 1,
        "overrides": {"num_slices": 6, "num_iterations": 2, "iterations_per_epoch": 2, "val_interval": 1,
                      "volumes_per_batch": 1, "slabs_per_volume": 1, "patch_size": [16, 16, 32]},
    },
    "quick": {
        "methods": ["deeplab_k1", "t2d", "unet3d"],
        "shape": [64, 64, 32], "num_cases": 6, "num_test": 2, "num_validation": 1,
        "overrides": {"num_slices": 6, "num_iterations": 40, "iterations_per_epoch": 20, "val_interval": 2,
                      "volumes_per_batch": 2, "slabs_per_volume": 2, "patch_size": [32, 32, 32]},
    },
    "cpu": {
        "methods": ["deeplab_k1", "t2d", "unet3d", "deeplab_k12", "esm", "deeplab_k3", "t2d_3views"],
        "shape": [96, 96, 48], "num_cases": 12, "num_test": 3, "num_validation": 1,
        "overrides": {"num_slices": 15, "num_iterations": 200, "iterations_per_epoch": 100, "val_interval": 1,
                      "volumes_per_batch": 1, "slabs_per_volume": 2, "patch_size": [32, 32, 32]},
    },
    "gpu": {
        "methods": ["deeplab_k1", "deeplab_k3", "deeplab_k12", "esm", "esm_concat", "esm_dot", "t2d", "t2d_3views",
                    "unet3d", "vnet", "ahnet"],
        "shape": [256, 256, 96], "num_cases": 40, "num_test": 10, "num_validation": 3,
        "overrides": {},
    },
}


def _log(msg: str) -> None:
    print(f"[benchmark {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else []


def _write_json(path: Path, data: Any) -> None:
    write_atomic(str(path), json.dumps(data, indent=2, sort_keys=True) + "\n")


def _parse_list(value: Any, name: str, cast=str) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    try:
        return [cast(v.strip()) if isinstance(v, str) else cast(v) for v in value]
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a comma-separated list, got {value!r}.") from e


class _Run:
    """Config stacks of one method (training per view, evaluation) under the benchmark's overrides."""

    def __init__(self, method: Method, root: Path, dataset_dir: str, overrides: dict, device: str, bundle_dir: Path):
        self.method, self.root, self.dataset_dir, self.device = method, root, dataset_dir, device
        self.configs = bundle_dir / "configs"
        base = ["train.json"] + (["cpu_small.json"] if device == "cpu" else [])
        self.train_files = [str(self.configs / f) for f in base + list(method.overlays)]
        # what the method's own (last) overlay sets defines it (deeplab_k1 is k=1): the budget does not override
        # it; shared recipes before it (patch3d.json's paper patch size) are scaled by the budget as usual
        defined = set(json.loads((self.configs / method.overlays[-1]).read_text())) if method.overlays else set()
        self.overrides = {
            **{k: v for k, v in overrides.items() if k not in defined},
            **method.overrides,
            "bundle_root": str(root),
            "dataset_dir": dataset_dir,
            "device": f"$torch.device({device!r})",
            "amp": device.startswith("cuda"),
        }
        if method.kind == "3d":
            self.overrides.pop("num_slices", None)
        self.views = VIEWS_3 if method.three_views else (None,)

    def workflow(self, workflow_type: str, files: list[str], **extra):
        from monai.bundle import ConfigWorkflow

        return ConfigWorkflow(
            config_file=files,
            meta_file=str(self.configs / "metadata.json"),
            logging_file=str(self.configs / "logging.conf"),
            workflow_type=workflow_type,
            **{**self.overrides, **extra},
        )

    def parser(self, files: list[str], **extra):
        from monai.bundle import ConfigParser

        parser = ConfigParser()
        parser.read_config(files)
        parser.update({**self.overrides, **extra})
        return parser


def _train(run: _Run) -> dict:
    """Train every view of a method (resuming an interrupted one); returns the training record."""
    from ignite.engine import Events

    total, iterations, views = 0.0, 0, []
    for view in run.views:
        extra = {} if view is None else {"view": view}
        paths = run.parser(run.train_files, **extra)
        resumed = Path(paths.get_parsed_content("resume_file")).is_file()
        ckpt_path = Path(paths.get_parsed_content("ckpt_file"))
        # an interrupted run continues from its last checkpoint instead of starting again
        wf = run.workflow("train", run.train_files, resume=resumed, **extra)
        wf.initialize()
        trainer = wf.parser.get_parsed_content("train#trainer")
        n_iter = wf.parser.get_parsed_content("num_iterations")
        trainer.add_event_handler(
            Events.EPOCH_COMPLETED,
            lambda e, v=view: _log(f"  {run.method.name}{'' if v is None else ' ' + v}: iteration "
                                   f"{e.state.iteration}/{n_iter}, loss {float(e.state.output[0]['loss']):.4f}"),
        )
        start = time.perf_counter()
        wf.run()
        wf.finalize()
        total += time.perf_counter() - start
        iterations = trainer.state.iteration
        if not ckpt_path.is_file():
            raise RuntimeError(f"training {run.method.name} wrote no best-validation checkpoint {ckpt_path}.")
        views.append({"view": view, "resumed": resumed, "iterations": iterations})
    return {"train_time_s": round(total, 2), "iterations": iterations, "views": views, "load_after": _load()}


def _load_checkpoint(path: str, signature, network: torch.nn.Module, device: str) -> None:
    state = torch.load(path, map_location=device, weights_only=True)
    signature.load_state_dict(state["signature"])
    network.load_state_dict(state["model"])


def _evaluate(run: _Run, cases: list[dict], warmup: bool = True, ceiling: bool = True) -> dict:
    """
    Segment ``cases`` with the trained method; Dice, InterSliceSimilarity, latency per case, and (with
    ``ceiling``) for a single-view 2D method the Dice a perfect stride-4 prediction would reach in its view
    (:func:`~t2d_monai.benchmarks.resolution.stride_ceiling_dice`, on the label's stored axes).
    """
    from monai.data import DataLoader, Dataset, decollate_batch
    from monai.metrics import compute_dice

    from t2d_monai.benchmarks.resolution import stride_ceiling_dice
    from t2d_monai.metrics.inter_slice_similarity import compute_inter_slice_similarity

    if run.method.three_views:
        parser = run.parser(run.train_files, view="axial")  # RAS order in: the layout MultiViewInferer expects
        inf = run.parser(
            [str(run.configs / "inference.json")]
            + [f for f in run.train_files[1:] if f.endswith("cpu_small.json")]
            + [str(run.configs / f) for f in run.method.overlays]
            + [str(run.configs / "inference_three_views.json")]
        )
        network, inferer = inf.get_parsed_content("network"), inf.get_parsed_content("inferer")
        from t2d_monai.bundle import checkpoint_filename

        for view in VIEWS_3:
            sig = run.parser(run.train_files, view=view).get_parsed_content("signature")
            _load_checkpoint(str(run.root / "models" / checkpoint_filename(view)), sig, network[view], run.device)
    else:
        parser = run.parser(run.train_files)
        network, inferer = parser.get_parsed_content("network"), parser.get_parsed_content("validate#inferer")
        _load_checkpoint(parser.get_parsed_content("ckpt_file"), parser.get_parsed_content("signature"), network, run.device)
    single_view_2d = run.method.kind == "2d" and not run.method.three_views
    view = parser.get_parsed_content("view") if ceiling and single_view_2d else None
    preprocessing = parser.get_parsed_content("validate#preprocessing")
    postprocessing = parser.get_parsed_content("validate#postprocessing")
    network.eval()
    rows = []
    loader = DataLoader(Dataset(cases, transform=preprocessing), batch_size=1, num_workers=0)
    with torch.no_grad():
        for i, batch in enumerate(loader):
            image = batch["image"].to(run.device)
            if i == 0 and warmup:
                inferer(image, network)  # untimed: the first call of a shape pays one-off kernel set-up
            load = _load()
            start = time.perf_counter()
            batch["pred"] = inferer(image, network)
            item = postprocessing(decollate_batch(batch)[0])
            latency = time.perf_counter() - start
            pred, label = item["pred"][None].float().cpu(), item["label"][None].float().cpu()
            if pred.shape != label.shape:
                raise RuntimeError(f"{run.method.name}: prediction {tuple(pred.shape)} vs label {tuple(label.shape)}.")
            rows.append({
                "case": os.path.basename(str(item["label"].meta.get("filename_or_obj", ""))) or f"case{len(rows)}",
                "dice": float(compute_dice(pred, label, include_background=True).nanmean()),
                "inter_slice_similarity": float(compute_inter_slice_similarity(pred, label).mean()),
                "latency_s": round(latency, 3),
                "pred_foreground": round(float(pred.mean()), 5),
                "label_foreground": round(float(label.mean()), 5),
                "stride4_ceiling": round(stride_ceiling_dice(label[0], view), 4) if view else float("nan"),
                "load_1min": load[0] if load else float("nan"),
            })
            _log(f"  {run.method.name}: {rows[-1]['case']} dice {rows[-1]['dice']:.3f} latency {latency:.2f} s")
    params = sum(p.numel() for p in network.parameters())
    return {"cases": rows, "params": params}


def _machine(device: str, threads: int) -> str:
    cpu = cpu_name()
    dev = device if not device.startswith("cuda") else torch.cuda.get_device_name(torch.device(device))
    return (f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} logical CPUs, torch threads {threads}, "
            f"device {dev}, torch {torch.__version__}, Python {platform.python_version()}")


def _ensure_data(out: Path, dataset_dir: str | None, preset: dict, seed: int) -> str:
    if dataset_dir is not None:
        if not os.path.isdir(str(dataset_dir)):
            raise FileNotFoundError(f"dataset_dir={dataset_dir!r} does not exist; give an MSD-layout folder or omit it.")
        return os.path.abspath(str(dataset_dir))
    data = out / "data"
    if not (data / "dataset.json").is_file():
        from t2d_monai.data.synthetic import write_dataset

        _log(f"synthesising {preset['num_cases']} cases of {preset['shape']} into {data}")
        write_dataset(str(data), num_cases=preset["num_cases"], num_test=0, seed=seed, shape=preset["shape"])
    return str(data)


def _summary(name: str, label: str, train: dict, evaluation: dict, fit: dict) -> dict:
    dice = np.array([c["dice"] for c in evaluation["cases"]])
    ceiling = [c["stride4_ceiling"] for c in evaluation["cases"]]
    iss = np.array([c["inter_slice_similarity"] for c in evaluation["cases"]])
    lat = np.array([c["latency_s"] for c in evaluation["cases"]])
    return {
        "method": name,
        "what": label,
        "dice_mean": round(float(dice.mean()), 4),
        "dice_std": round(float(dice.std()), 4),
        "dice_per_case": " ".join(f"{d:.3f}" for d in dice),
        "dice_train_cases": round(float(np.mean([c["dice"] for c in fit["cases"]])), 4),
        "stride4_ceiling": "n/a" if np.isnan(ceiling).any() else round(float(np.mean(ceiling)), 4),
        "inter_slice_similarity": round(float(iss.mean()), 4),
        "latency_s": round(float(lat.mean()), 3),
        "pred_fg_pct": round(100 * float(np.mean([c["pred_foreground"] for c in evaluation["cases"]])), 3),
        "label_fg_pct": round(100 * float(np.mean([c["label_foreground"] for c in evaluation["cases"]])), 3),
        "params_m": round(evaluation["params"] / 1e6, 3),
        "train_time_s": train["train_time_s"],
        "iterations": train["iterations"],
    }


def _plot(rows: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    for row in rows:
        marker = "s" if row["kind"] == "3d" else ("^" if row["method"].endswith("_3views") else "o")
        ax.scatter(row["latency_s"], row["dice_mean"], marker=marker, s=45)
        ax.annotate(row["method"], (row["latency_s"], row["dice_mean"]), textcoords="offset points", xytext=(5, 4),
                    fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("inference latency per volume (s, log scale)")
    ax.set_ylabel("mean Dice on held-out cases")
    ax.set_title("Dice vs latency (o 2D / thickened 2D, ^ three views, s 3D)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(str(path), buf.getvalue())


_COLUMNS = ["method", "what", "dice_mean", "dice_std", "dice_per_case", "dice_train_cases", "stride4_ceiling",
            "inter_slice_similarity", "latency_s", "params_m", "train_time_s", "iterations", "pred_fg_pct",
            "label_fg_pct"]


def _markdown(rows, info, image: str, notes: str | None) -> str:
    head = ["method", "what", "Dice mean", "Dice std", "Dice per case", "Dice on training cases",
            "stride-4 ceiling", "InterSliceSim. (lower better)",
            "latency / volume (s)", "params (M)", "train time (s)", "iterations", "predicted vessel %",
            "true vessel %"]
    lines = ["# Comparison: 2D, thickened 2D and 3D baselines", "",
             "Written by `python -m t2d_monai benchmark` (t2d_monai/benchmarks/comparison.py); do not edit the "
             "figures by hand, run the command again.", "",
             "Command:", "", "```bash", info["command"], "```", "",
             f"- Machine: {info['machine']}.",
             f"- Load average (1, 5, 15 min) at start {info['load_start']}, at evaluation start "
             f"{info['load_eval']}, at end {info['load_end']}. The machine is shared, so latencies are noisy; "
             "each case's 1-minute load at its measurement is in the per-case CSV.",
             f"- Data: `{info['dataset']}`; {info['num_train']} training, {info['num_val']} validation, "
             f"{info['num_test']} held-out test cases ({info['data_note']}).",
             f"- Budget: the same {info['iterations']} training iterations for every method (per view for three-view "
             f"rows), the same batch ({info['batch']}) and validation schedule; the checkpoint with the best "
             "validation Dice is evaluated.",
             f"- Settings: preset `{info['preset']}`, overrides {json.dumps(info['overrides'])}.",
             "- Latency: the bundle's validation inferer + post-processing (inversion, threshold) per volume, "
             "measured in one process, one method after another, after one untimed warm-up run on the first case; "
             "data loading excluded.",
             "- Predicted / true vessel %: the share of voxels segmented as vessel, a check that a low Dice is not "
             "an empty or an all-vessel prediction.",
             f"- Dice on training cases: the same evaluation on {info.get('num_fit', 'some')} of the training cases "
             "(a low value there means the method has not fitted its training data: under-training, not "
             "over-fitting).",
             "- Stride-4 ceiling (single-view 2D rows): the Dice of the true mask of the held-out cases after average "
             "pooling each slice of the row's view by 4 and upsampling it back bilinearly (best threshold), an "
             "estimate of what a perfect prediction at DeepLabV3+'s output stride 4 could reach "
             "(`t2d_monai/benchmarks/resolution.py`); 3D rows predict at full resolution.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        lines.append("| " + " | ".join(str(row[c]) for c in _COLUMNS) + " |")
    lines += ["", f"![Dice vs latency]({image})", ""]
    by = {r["method"]: r for r in rows}
    ref = by.get("deeplab_k1")
    if ref:
        lines += ["Differences to the single-slice baseline `deeplab_k1` (computed by the command):", ""]
        for r in rows:
            if r["method"] != "deeplab_k1":
                ratio = r["latency_s"] / ref["latency_s"] if ref["latency_s"] > 0 else float("nan")
                lines.append(f"- `{r['method']}`: Dice {r['dice_mean'] - ref['dice_mean']:+.4f}, "
                             f"InterSliceSimilarity {r['inter_slice_similarity'] - ref['inter_slice_similarity']:+.4f}, "
                             f"latency x{ratio:.2f}")
        lines.append("")
    if notes:
        lines += [notes.rstrip(), ""]
    return "\n".join(lines)


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
    load_start = _load()
    _log(f"preset {name}: methods {[m.name for m in run_methods]}, output {out}, load {load_start}")
    data_note = "given folder"
    if dataset_dir is None:
        data_note = f"synthetic, `python -m t2d_monai synth --shape {','.join(map(str, conf['shape']))} --num_cases " \
                    f"{conf['num_cases']} --seed {seed}`"
        budget.setdefault("spatial_size", [-1, -1])  # keep the synthetic volumes' in-plane size
    dataset = _ensure_data(out, dataset_dir, conf, seed)
    budget.setdefault("num_test", conf["num_test"])
    budget.setdefault("num_validation", conf["num_validation"])
    budget.setdefault("split_seed", seed)
    budget.setdefault("num_workers", 0 if device == "cpu" else 4)

    results = {}
    for i, method in enumerate(run_methods, 1):
        run = _Run(method, out / method.name, dataset, budget, device, BUNDLE_DIR)
        record = out / method.name / "train_result.json"
        if record.is_file():
            _log(f"[{i}/{len(run_methods)}] {method.name}: trained earlier, kept ({record})")
            results[method.name] = (run, json.loads(record.read_text()))
            continue
        _log(f"[{i}/{len(run_methods)}] training {method.name} ({method.label})")
        coronal_t2d = out / "t2d" / "models" / "model.pt"  # the single-view row's model when its view is coronal
        if method.three_views and (out / "t2d" / "train_result.json").is_file() and method.name == "t2d_3views" \
                and coronal_t2d.is_file():
            # the single-view t2d row is the coronal model of this one: reuse it instead of training it again
            (out / method.name / "models").mkdir(parents=True, exist_ok=True)
            if not (out / method.name / "models" / "model.pt").is_file():
                shutil.copy2(out / "t2d" / "models" / "model.pt", out / method.name / "models" / "model.pt")
        train = _train_reusing(run, out)
        _write_json(record, {**train, "method": method.name, "overrides": run.overrides})
        results[method.name] = (run, train)
        _log(f"  {method.name}: trained in {train['train_time_s']:.1f} s")

    from monai.bundle import ConfigParser

    probe = ConfigParser()
    probe.read_config([str(BUNDLE_DIR / "configs" / "train.json")])
    probe.update({k: v for k, v in budget.items() if k in ("num_test", "num_validation", "split_seed")})
    probe.update({"dataset_dir": dataset})
    split = probe.get_parsed_content("datasplit")
    cases = split["test"] or split["validation"]
    load_eval = _load()
    _log(f"evaluating {len(run_methods)} methods on {len(cases)} held-out cases, one after another (load {load_eval})")
    rows, per_case = [], []
    fit_cases = split["training"][: len(cases)]
    for method in run_methods:
        run, train = results[method.name]
        evaluation = _evaluate(run, cases, warmup)
        _write_json(out / method.name / "eval_result.json", evaluation)
        fit = _evaluate(run, fit_cases, warmup=False, ceiling=False)  # only the Dice is used
        _write_json(out / method.name / "eval_training_cases.json", fit)
        row = _summary(method.name, method.label, train, evaluation, fit)
        rows.append(row)
        per_case += [{"method": method.name, **c} for c in evaluation["cases"]]
    info = {
        "command": command or f"python -m t2d_monai benchmark --preset {name} --out_dir {out_dir}",
        "machine": _machine(device, torch.get_num_threads()),
        "load_start": load_start, "load_eval": load_eval, "load_end": _load(),
        "dataset": dataset if dataset_dir else "<out_dir>/data",
        "num_train": len(split["training"]), "num_val": len(split["validation"]), "num_test": len(cases),
        "num_fit": len(fit_cases),
        "data_note": data_note, "iterations": budget.get("num_iterations", "the config's"),
        "batch": f"{budget.get('volumes_per_batch', 'config')} volumes x {budget.get('slabs_per_volume', 'config')} "
                 "slabs or patches",
        "preset": name, "overrides": {k: v for k, v in budget.items() if k != "spatial_size"},
    }
    table_rows = [{**r, "kind": results[r["method"]][0].method.kind} for r in rows]
    write_csv_atomic(str(out / "comparison.csv"), rows, _COLUMNS)
    write_csv_atomic(str(out / "comparison_per_case.csv"), per_case, list(per_case[0]))
    _plot(table_rows, out / "comparison.png")
    note_text = Path(notes).read_text() if notes else None
    md = out / "comparison.md"
    write_atomic(str(md), _markdown(table_rows, info, "comparison.png", note_text))
    _write_json(out / "comparison_info.json", info)
    if docs_dir is not None:
        docs = Path(docs_dir)
        (docs / "images").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "comparison.png", docs / "images" / "comparison.png")
        write_atomic(str(docs / "results.md"), _markdown(table_rows, info, "images/comparison.png", note_text))
        write_csv_atomic(str(docs / "results.csv"), rows, _COLUMNS)
    _log(f"wrote {md}")
    return str(md)


def _train_reusing(run: _Run, out: Path) -> dict:
    if run.method.three_views and (run.root / "models" / "model.pt").is_file() and not (
        run.root / "models" / "checkpoint.pt"
    ).is_file():
        # coronal model copied from the single-view row: train only the other two views
        reused = json.loads((out / "t2d" / "train_result.json").read_text())
        other = _Run(run.method, run.root, run.dataset_dir, {}, run.device, BUNDLE_DIR)
        other.overrides, other.train_files = run.overrides, run.train_files
        other.views = ("axial", "sagittal")
        train = _train(other)
        train["train_time_s"] = round(train["train_time_s"] + reused["train_time_s"], 2)
        train["views"].append({"view": "coronal", "reused_from": "t2d", "iterations": reused["iterations"]})
        return train
    return _train(run)
