"""Evaluating one trained comparison row: its quality on held-out cases (kept with the run, so that a run folder
holds its result without its model) and its latency (measured again by every report, in one process).

A row's network, inferer and post-processing are the bundle's validation ones (:class:`~t2d_monai.benchmarks.runner.
MethodRun`), with the three-view inferer of ``inference_three_views.json`` for three-view rows.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from t2d_monai.benchmarks.runner import MethodRun, load_average, log
from t2d_monai.bundle.paths import checkpoint_filename
from t2d_monai.data.layouts import case_name
from t2d_monai.transforms.view_permute import VIEWS

__all__ = ["Pipeline", "evaluate", "load_checkpoint", "measure_latency", "pipeline"]


def load_checkpoint(path: str, signature, network: torch.nn.Module, device: str) -> None:
    """Load a bundle checkpoint (``{"model": state dict, "signature": ...}``) into ``network`` and ``signature``."""
    state = torch.load(path, map_location=device, weights_only=True)
    signature.load_state_dict(state["signature"])
    network.load_state_dict(state["model"])


@dataclass
class Pipeline:
    """A row's validation pipeline: ``parser`` (its training configs; axial order for three-view rows), the network
    in eval mode, its inferer, pre- and post-processing, and ``trained`` (whether the run's checkpoints were loaded;
    without them the network keeps its initial weights, which cost the same time to run)."""

    parser: Any
    network: torch.nn.Module
    inferer: Any
    preprocessing: Any
    postprocessing: Any
    trained: bool


def pipeline(run: MethodRun, require_weights: bool = True) -> Pipeline:
    """``run``'s validation pipeline with its best-validation checkpoint(s) loaded; where they are missing, raise
    ``FileNotFoundError`` (``require_weights``) or keep the network's initial weights."""
    if run.method.three_views:
        parser = run.parser(run.train_files, view="axial")  # RAS order in: the layout MultiViewInferer expects
        inf = run.parser(
            [str(run.configs / "inference.json")]
            + [f for f in run.train_files[1:] if f.endswith("cpu_small.json")]
            + [str(run.configs / f) for f in run.method.overlays]
            + [str(run.configs / "inference_three_views.json")]
        )
        network, inferer = inf.get_parsed_content("network"), inf.get_parsed_content("inferer")
        # per view: its checkpoint, its network, and the training config that holds its signature
        checkpoints = [(run.root / "models" / checkpoint_filename(view), network[view],
                        run.parser(run.train_files, view=view)) for view in VIEWS]
    else:
        parser = run.parser(run.train_files)
        network, inferer = parser.get_parsed_content("network"), parser.get_parsed_content("validate#inferer")
        checkpoints = [(Path(parser.get_parsed_content("ckpt_file")), network, parser)]
    missing = [str(path) for path, _, _ in checkpoints if not path.is_file()]
    if missing and require_weights:
        raise FileNotFoundError(f"{run.method.name} seed {run.seed}: no trained model {missing} in {run.root} and no "
                                "kept evaluation (eval_result.json); delete the folder to train the row again.")
    if not missing:
        for path, net, config in checkpoints:
            load_checkpoint(str(path), config.get_parsed_content("signature"), net, run.device)
    network.eval()
    return Pipeline(parser, network, inferer, parser.get_parsed_content("validate#preprocessing"),
                    parser.get_parsed_content("validate#postprocessing"), trained=not missing)


def _predictions(pipe: Pipeline, cases: list[dict], device: str, warmup: bool = False):
    """Yield ``(case name, post-processed item, seconds of inferer + post-processing)`` per case, in order; with
    ``warmup`` the first case is run once untimed before (the first call of a shape pays one-off kernel set-up)."""
    from monai.data import DataLoader, Dataset, decollate_batch

    loader = DataLoader(Dataset(cases, transform=pipe.preprocessing), batch_size=1, num_workers=0)
    with torch.no_grad():
        for i, batch in enumerate(loader):
            image = batch["image"].to(device)
            if i == 0 and warmup:
                pipe.inferer(image, pipe.network)
            start = time.perf_counter()
            batch["pred"] = pipe.inferer(image, pipe.network)
            item = pipe.postprocessing(decollate_batch(batch)[0])
            yield case_name(str(cases[i]["image"])), item, time.perf_counter() - start


def evaluate(run: MethodRun, cases: list[dict], ceiling: bool = True, vessel_metrics: bool = True,
             pipe: Pipeline | None = None) -> dict:
    """
    Segment ``cases`` with the trained method (its checkpoint must be there; ``pipe``: its :func:`pipeline`, when
    built already): Dice and InterSliceSimilarity per case;
    with ``vessel_metrics`` also HD95 (mm), normalised surface Dice (at ``evaluate.json``'s ``surface_tolerance_mm``)
    and clDice; and (with ``ceiling``) for a single-view 2D method the Dice a perfect stride-4 prediction would reach
    in its view (:func:`~t2d_monai.benchmarks.resolution.stride_ceiling_dice`, on the label's stored axes).
    Returns ``{"cases": [...], "params": parameter count}``; no timing (:func:`measure_latency`).
    """
    from monai.metrics import compute_dice

    from t2d_monai.benchmarks.resolution import stride_ceiling_dice
    from t2d_monai.metrics.inter_slice_similarity import compute_inter_slice_similarity

    pipe = pipe or pipeline(run)
    single_view_2d = run.method.kind == "2d" and not run.method.three_views
    view = pipe.parser.get_parsed_content("view") if ceiling and single_view_2d else None
    tolerance_mm = float(json.loads((run.configs / "evaluate.json").read_text())["surface_tolerance_mm"])
    rows = []
    for name, item, _ in _predictions(pipe, cases, run.device):
        pred, label = item["pred"][None].float().cpu(), item["label"][None].float().cpu()
        if pred.shape != label.shape:
            raise RuntimeError(f"{run.method.name}: prediction {tuple(pred.shape)} vs label {tuple(label.shape)}.")
        rows.append({
            "case": name,
            "dice": float(compute_dice(pred, label, include_background=True).nanmean()),
            "inter_slice_similarity": float(compute_inter_slice_similarity(pred, label).mean()),
            **(_vessel_metrics(pred, label, tolerance_mm) if vessel_metrics else {}),
            "pred_foreground": round(float(pred.mean()), 5),
            "label_foreground": round(float(label.mean()), 5),
            "stride4_ceiling": round(stride_ceiling_dice(label[0], view), 4) if view else float("nan"),
        })
        log(f"  {run.method.name} seed {run.seed}: {name} dice {rows[-1]['dice']:.3f}")
    return {"cases": rows, "params": sum(p.numel() for p in pipe.network.parameters())}


def measure_latency(run: MethodRun, cases: list[dict], warmup: bool = True) -> dict:
    """Seconds of the validation inferer + post-processing per case (data loading excluded), after one untimed
    warm-up run on the first case, with the run's trained network or, where its model is gone (a run folder kept
    without models), its initial weights: the same computation. Returns ``{"cases": [{"case", "latency_s",
    "load_1min"}], "trained_weights": bool}``."""
    pipe = pipeline(run, require_weights=False)
    rows = []
    for name, _, seconds in _predictions(pipe, cases, run.device, warmup):
        load = load_average()
        rows.append({"case": name, "latency_s": round(seconds, 3), "load_1min": load[0] if load else float("nan")})
        log(f"  {run.method.name} seed {run.seed}: {name} latency {seconds:.2f} s")
    return {"cases": rows, "trained_weights": pipe.trained}


def _vessel_metrics(pred: torch.Tensor, label: torch.Tensor, tolerance_mm: float) -> dict:
    """HD95 (mm, nan when prediction or label is empty), surface Dice at ``tolerance_mm`` and clDice of one
    ``(1, 1, X, Y, Z)`` case (MetaTensors: the spacing comes from their affine)."""
    from t2d_monai.metrics import HausdorffDistance95, NormalizedSurfaceDice, compute_centerline_dice

    with warnings.catch_warnings():  # MONAI warns about empty masks (the nan) and its own deprecated argument
        warnings.simplefilter("ignore")
        hd95 = float(HausdorffDistance95()(pred, label).mean())
        nsd = float(NormalizedSurfaceDice(tolerance_mm)(pred, label).mean())
    return {"hd95_mm": round(hd95, 3), "surface_dice": round(nsd, 4),
            "cldice": round(float(compute_centerline_dice(pred, label).mean()), 4)}
