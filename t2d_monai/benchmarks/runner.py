"""Training one comparison row through the bundle (:class:`monai.bundle.ConfigWorkflow`).

Every row is a stack of bundle configs (``train.json``, ``cpu_small.json`` on CPU, the row's overlays, then the
benchmark's extra overlays) with
the benchmark's budget overrides; training resumes from the bundle's own ``models/checkpoint.pt``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t2d_monai.benchmarks.methods import Method
from t2d_monai.benchmarks.report import machine_description
from t2d_monai.bundle.layout import parse_configs
from t2d_monai.bundle.paths import DEFAULT_VIEW, checkpoint_filename
from t2d_monai.transforms.view_permute import VIEWS
from t2d_monai.utils.files import write_atomic

__all__ = ["MethodRun", "TrainingClock", "log", "load_average", "prepare_data", "train", "write_case_split",
           "write_json"]


#: override keys that name where a run lives, not how it is trained: a run folder copied elsewhere is still reused
RELOCATABLE_KEYS = ("bundle_root",)


def _without_location(overrides: dict) -> dict:
    """``overrides`` but the :data:`RELOCATABLE_KEYS`."""
    return {k: v for k, v in overrides.items() if k not in RELOCATABLE_KEYS}


def log(msg: str) -> None:
    print(f"[benchmark {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (empty where the OS has none)."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else []


def write_json(path: Path, data: Any) -> None:
    write_atomic(str(path), json.dumps(data, indent=2, sort_keys=True) + "\n")


class MethodRun:
    """Config stacks of one method (training per view, evaluation) under the benchmark's overrides."""

    def __init__(
        self,
        method: Method,
        root: Path,
        dataset_dir: str,
        overrides: dict,
        device: str,
        bundle_dir: Path,
        seed: int = 0,
        learning_rate: float | None = None,
        extra_overlays: tuple[str, ...] = (),
    ):
        self.method, self.root, self.dataset_dir, self.device = method, root, dataset_dir, device
        self.seed, self.learning_rate = int(seed), learning_rate
        self.configs = bundle_dir / "configs"
        base = ["train.json"] + (["cpu_small.json"] if device == "cpu" else [])
        # extra overlays (the same for every row, e.g. augment.json) come last: they change training only
        self.train_files = [str(self.configs / f) for f in base + list(method.overlays) + list(extra_overlays)]
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
            "seed": self.seed,
            **({} if learning_rate is None else {"learning_rate": learning_rate}),
        }
        if method.kind == "3d":
            self.overrides.pop("num_slices", None)
        self.views: tuple[str | None, ...] = VIEWS if method.three_views else (None,)

    @property
    def settings(self) -> dict[str, Any]:
        """What this run is trained with, as JSON would give it back: its overrides (but the folder it lives in)
        and the names of its config stack. A kept or interrupted training is only reused under equal settings."""
        return json.loads(json.dumps({"overrides": _without_location(self.overrides),
                                      "configs": [Path(f).name for f in self.train_files]}))

    def check_settings(self) -> None:
        """Record this run's :attr:`settings` in ``<root>/settings.json`` before it trains; where a training was
        started there already (a model or checkpoint saved: its ``settings.json``, or for runs made before that file,
        the overrides in its ``train_result.json``), raise ``ValueError`` naming every setting that differs, so that
        a command run again with other options never reports or resumes a training made with the old ones."""
        wanted, path, record = self.settings, self.root / "settings.json", self.root / "train_result.json"
        started = record.is_file() or any((self.root / "models").glob("*.pt"))  # a model or a checkpoint exists
        if path.is_file() and started:
            given = json.loads(path.read_text())
        elif record.is_file():
            given = {"overrides": _without_location(json.loads(record.read_text()).get("overrides", {}))}
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            write_json(path, wanted)
            return
        there, now = given.get("overrides", {}), wanted["overrides"]
        differ = [f"{key}: {there.get(key)!r} there, {now.get(key)!r} now"
                  for key in sorted(set(there) | set(now)) if there.get(key) != now.get(key)]
        if "configs" in given and given["configs"] != wanted["configs"]:
            differ.append(f"configs: {given['configs']} there, {wanted['configs']} now")
        if differ:
            raise ValueError(f"{self.root} holds a training made with other settings than this command's ("
                             + "; ".join(differ) + "). Give another --out_dir, or delete that folder to train the "
                             "row again with these settings.")

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
        """A :class:`monai.bundle.ConfigParser` over ``files`` with this run's overrides (and ``extra``)."""
        return parse_configs(files, self.root, {**self.overrides, **extra})


def _view_file(run: MethodRun, view: str | None, name: str) -> Path:
    """A run's per-view record ``<name>.json`` (``<name>_<view>.json`` for the views of a three-view row)."""
    return run.root / (f"{name}.json" if view is None else f"{name}_{view}.json")


class TrainingClock:
    """Training time of one view across interruptions: the seconds trained so far are written to ``path`` at every
    completed epoch (after the bundle's resumable checkpoint of that epoch), and a resumed run starts from them, so
    that a run interrupted and resumed reports the time of all its epochs, not only of the last stretch.

    Args:
        path: the JSON file that keeps ``{"train_time_s": seconds, "iteration": trainer iteration}``.
        resumed: whether the training resumes from a checkpoint (otherwise an old file is ignored).
    """

    def __init__(self, path: Path, resumed: bool) -> None:
        self.path = Path(path)
        self.before = float(json.loads(self.path.read_text())["train_time_s"]) if resumed and self.path.is_file() else 0.0
        self.start: float | None = None

    def attach(self, trainer) -> None:
        """Start counting now and save the count at each of ``trainer``'s (an ignite Engine) completed epochs."""
        from ignite.engine import Events

        self.start = time.perf_counter()
        trainer.add_event_handler(
            Events.EPOCH_COMPLETED,
            lambda e: write_json(self.path, {"train_time_s": round(self.elapsed(), 3), "iteration": e.state.iteration}))

    def elapsed(self) -> float:
        """Seconds trained: before the last resume plus since :meth:`attach`."""
        return self.before + (0.0 if self.start is None else time.perf_counter() - self.start)


def _train_views(run: MethodRun) -> dict:
    """Train every view of a method (resuming an interrupted one); returns the training record, with the
    validation curve (``[iteration, validation Dice]`` per validation) and the training time (:class:`TrainingClock`),
    both kept on disk across resumes, and its best."""
    from ignite.engine import Events

    total, iterations, views = 0.0, 0, []
    for view in run.views:
        extra = {} if view is None else {"view": view}
        paths = run.parser(run.train_files, **extra)
        resumed = Path(paths.get_parsed_content("resume_file")).is_file()
        ckpt_path = Path(paths.get_parsed_content("ckpt_file"))
        curve_path = _view_file(run, view, "curve")
        curve = json.loads(curve_path.read_text()) if resumed and curve_path.is_file() else []
        # an interrupted run continues from its last checkpoint instead of starting again
        wf = run.workflow("train", run.train_files, resume=resumed, **extra)
        wf.initialize()
        trainer = wf.parser.get_parsed_content("train#trainer")
        evaluator = wf.parser.get_parsed_content("validate#evaluator")
        n_iter = wf.parser.get_parsed_content("num_iterations")
        trainer.add_event_handler(
            Events.EPOCH_COMPLETED,
            lambda e, v=view: log(f"  {run.method.name}{'' if v is None else ' ' + v}: iteration "
                                   f"{e.state.iteration}/{n_iter}, loss {float(e.state.output[0]['loss']):.4f}"),
        )

        def record(engine, path=curve_path) -> None:
            curve.append([int(trainer.state.iteration), float(engine.state.metrics[engine.state.key_metric_name])])
            write_json(path, curve)

        evaluator.add_event_handler(Events.COMPLETED, record)
        clock = TrainingClock(_view_file(run, view, "train_time"), resumed)
        clock.attach(trainer)
        wf.run()
        wf.finalize()
        total += clock.elapsed()
        iterations = trainer.state.iteration
        if not ckpt_path.is_file():
            raise RuntimeError(f"training {run.method.name} wrote no best-validation checkpoint {ckpt_path}.")
        best = max((d for _, d in curve), default=float("nan"))
        views.append({"view": view, "resumed": resumed, "iterations": iterations, "curve": curve, "best_val_dice": best})
    return {
        "train_time_s": round(total, 2),
        "iterations": iterations,
        "views": views,
        "best_val_dice": float(np.mean([v["best_val_dice"] for v in views])),
        "seed": run.seed,
        "learning_rate": run.learning_rate,
        "load_after": load_average(),
        # a run folder may be reported on another machine than the one it was trained on
        "machine": machine_description(run.device, torch.get_num_threads()),
    }


def prepare_data(out: Path, dataset_dir: str | None, preset: dict, seed: int, layout: str = "msd") -> str:
    """``dataset_dir``, or a synthetic data set in ``layout`` (``synth --layout``) in ``<out>/data``, kept if there."""
    if dataset_dir is not None:
        if not os.path.isdir(str(dataset_dir)):
            raise FileNotFoundError(f"dataset_dir={dataset_dir!r} does not exist; give the bundle's data set folder "
                                    "or omit it.")
        return os.path.abspath(str(dataset_dir))
    data = out / "data"
    from t2d_monai.data.synthetic_layouts import synth, synthetic_dataset_exists

    if not synthetic_dataset_exists(str(data), layout):
        log(f"synthesising {preset['num_cases']} cases of {preset['shape']} ({layout} layout) into {data}")
        synth(str(data), num_cases=preset["num_cases"], num_test=0, seed=seed, shape=preset["shape"], layout=layout)
    return str(data)


def write_case_split(out: Path, dataset: str, split_cases: dict[str, list[int]], bundle: Path) -> str:
    """``<out>/split.json``: a preset's held-out cases of its synthetic data (``{"test": [...], "validation":
    [...]}``, case numbers, :func:`~t2d_monai.data.datalist.split_by_number`) in the bundle's data layout; its path."""
    from t2d_monai.data.datalist import save_split, split_by_number

    conf = parse_configs([bundle / "configs" / "train.json"], bundle)
    parts = split_by_number(dataset, split_cases["test"], split_cases["validation"], conf["data_layout"],
                            conf["target_label"])
    return save_split(parts, str(out / "split.json"))


def train(run: MethodRun, reuse_root: Path | None = None) -> dict:
    """Train every view of ``run``'s method. With ``reuse_root`` (the folder of the same seed and learning rate
    of the row named by ``run.method.reuse_from``, trained already), that row's model is copied for its view and
    only the other views are trained. Returns the training record."""
    record = reuse_root / "train_result.json" if reuse_root is not None else None
    if record is None or not record.is_file():
        return _train_views(run)
    reused = json.loads(record.read_text())
    view = str(reused.get("overrides", {}).get("view", DEFAULT_VIEW))
    source, target = reuse_root / "models" / checkpoint_filename(view), run.root / "models" / checkpoint_filename(view)
    if not source.is_file() or view not in run.views:
        return _train_views(run)
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    views = run.views
    run.views = tuple(v for v in views if v != view)
    try:
        result = _train_views(run)
    finally:
        run.views = views
    result["train_time_s"] = round(result["train_time_s"] + reused["train_time_s"], 2)
    kept = reused["views"][0]
    result["views"].append({**kept, "view": view, "reused_from": str(reuse_root)})
    result["best_val_dice"] = float(np.mean([v["best_val_dice"] for v in result["views"]]))
    return result
