"""How hard is a data set for intensity alone? Dice of the best single global HU threshold.

If vessels were simply the brightest voxels, ``image >= t`` would segment them and no network would
need neighbouring slices. This module measures, over the labelled cases of a data set, the Dice of the
best global threshold (one ``t`` for all cases, chosen to maximise the mean per-case Dice; every integer
HU is tried, exactly, from per-case histograms). As a reference for what 3D context adds even without
learning, it also reports the same threshold followed by a *continuity filter* that keeps only the 3D
connected components spanning at least ``min_slices`` slices: vessels continue from slice to slice,
calcifications, nodules and bowel loops do not.

Command line::

    python -m t2d_monai threshold_baseline --dataset_dir data/synth \
        --out_md docs/synthetic_threshold_baseline.md --preview docs/images/threshold_baseline_case.png
"""

from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np
from scipy import ndimage

from t2d_monai.data.layouts import case_name
from t2d_monai.utils.files import write_atomic

__all__ = ["best_global_threshold", "continuity_filter", "threshold_baseline", "threshold_dice_curve"]

_HU_MIN, _HU_BINS = -1024, 4096 + 1024  # int16 CT values, clipped into [-1024, 4095]


def threshold_dice_curve(image: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Dice of ``image >= t`` against ``target`` for every integer ``t`` in [-1024, 4095].

    Args:
        image: CT in HU, any shape.
        target: bool mask, same shape.

    Returns:
        float64 array of length 5120; entry ``k`` is the Dice at ``t = k - 1024``
        (1.0 where both prediction and target are empty).
    """
    values = np.clip(np.rint(np.asarray(image)).astype(np.int64), _HU_MIN, _HU_MIN + _HU_BINS - 1) - _HU_MIN
    target = np.asarray(target, bool)
    tp = np.bincount(values[target], minlength=_HU_BINS)[::-1].cumsum()[::-1]
    pred = np.bincount(values.ravel(), minlength=_HU_BINS)[::-1].cumsum()[::-1]
    denom = pred + target.sum()
    return np.where(denom > 0, 2.0 * tp / np.maximum(denom, 1), 1.0)


def best_global_threshold(cases: Sequence[dict], foreground: int | Sequence[int] = 1) -> dict:
    """The one HU threshold with the best mean per-case Dice over ``cases`` (``{"image", "label"}`` NIfTI paths),
    chosen on these very cases: an upper bound for any single global threshold on them. ``foreground``: the label
    value(s) of the target (a bundle's ``foreground_labels``).

    Returns:
        ``{"hu": int, "mean_dice": float, "per_case_dice": {case name: Dice}}`` (names by
        :func:`~t2d_monai.data.layouts.case_name`).

    Raises:
        ValueError: when ``cases`` is empty.
    """
    if not cases:
        raise ValueError("best_global_threshold needs at least one labelled case.")
    labels = np.atleast_1d(np.asarray(foreground))
    curves = np.asarray([threshold_dice_curve(_read(c["image"])[0], np.isin(_read(c["label"])[0], labels))
                         for c in cases])
    best = int(np.argmax(curves.mean(0)))
    names = [case_name(str(c["image"])) for c in cases]
    return {"hu": best + _HU_MIN, "mean_dice": float(curves[:, best].mean()),
            "per_case_dice": {n: float(d) for n, d in zip(names, curves[:, best])}}


def continuity_filter(image: np.ndarray, threshold: float, min_slices: int) -> np.ndarray:
    """``image >= threshold``, keeping only 26-connected 3D components spanning ``min_slices`` slices.

    Args:
        image: CT in HU, ``(X, Y, Z)``, slices along the last axis.
        threshold: HU threshold.
        min_slices: smallest number of slices (along Z) a kept component spans.

    Returns:
        bool mask of ``image``'s shape.
    """
    mask = np.asarray(image) >= threshold
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    keep = np.zeros(n + 1, bool)
    for k, box in enumerate(ndimage.find_objects(labels)):
        keep[k + 1] = box is not None and box[2].stop - box[2].start >= min_slices
    return keep[labels]


def _dice(pred: np.ndarray, target: np.ndarray) -> float:
    denom = pred.sum() + target.sum()
    return float(2.0 * (pred & target).sum() / denom) if denom else 1.0


def _load_cases(dataset_dir: str, max_cases: int | None) -> tuple[list[dict], dict]:
    from monai.data import load_decathlon_datalist

    path = os.path.join(dataset_dir, "dataset.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"dataset_dir={dataset_dir!r} has no dataset.json; run `python -m t2d_monai synth` first.")
    with open(path) as f:
        meta = json.load(f)
    cases = load_decathlon_datalist(path, True, "training", base_dir=dataset_dir)
    if max_cases is not None:
        if int(max_cases) < 1:
            raise ValueError(f"max_cases must be positive or None, got {max_cases}.")
        cases = cases[: int(max_cases)]
    return cases, meta


def _read(path: str) -> tuple[np.ndarray, tuple]:
    import nibabel as nib

    nii = nib.as_closest_canonical(nib.load(path))
    return np.asanyarray(nii.dataobj), tuple(float(z) for z in nii.header.get_zooms()[:3])


def _markdown(result: dict) -> str:
    t, c = result["threshold"], result["continuity"]
    lines = [
        "| method | uses neighbouring slices | threshold (HU) | mean Dice (per case) | std | pooled Dice |",
        "|---|---|---|---|---|---|",
        f"| best single global HU threshold | no | {t['hu']} | {t['mean_dice']:.3f} | {t['std_dice']:.3f} "
        f"| {t['pooled_dice']:.3f} |",
        f"| same, then keep 3D components spanning >= {c['min_slices']} slices | yes | {c['hu']:g} "
        f"| {c['mean_dice']:.3f} | {c['std_dice']:.3f} | {c['pooled_dice']:.3f} |",
        "",
        f"Data: `{result['dataset']}`, {result['num_cases']} labelled cases, label {result['foreground']} "
        f"({result['label_name']}).",
    ]
    if result.get("synth"):
        lines.append(f"Generator arguments: `{json.dumps(result['synth'])}`.")
    lines.append("Written by `python -m t2d_monai threshold_baseline`.")
    return "\n".join(lines) + "\n"


def threshold_baseline(
    dataset_dir: str,
    out_md: str | None = None,
    out_json: str | None = None,
    preview: str | None = None,
    foreground: int = 1,
    min_slices: int = 4,
    continuity_thresholds: Sequence[float] = tuple(range(100, 330, 10)),
    max_cases: int | None = None,
) -> str:
    """Dice of the best single global HU threshold over a data set's labelled cases.

    Args:
        dataset_dir: folder with an MSD ``dataset.json`` (synthetic or real Task08).
        out_md: write the result table as markdown here. Default: not written.
        out_json: write the numbers as JSON here. Default: not written.
        preview: write a preview PNG of the first case with the best threshold as prediction
            (TP/FP/FN colours) here. Default: not written.
        foreground: label value that is the target. Default 1 (Vessel).
        min_slices: the continuity reference keeps 3D components spanning at least this many
            slices. Default 4.
        continuity_thresholds: thresholds tried for the continuity reference (it labels components
            per threshold, so it uses a grid). Default 100, 110, ..., 320.
        max_cases: use only the first cases. Default: all.

    Returns:
        the markdown table (fire prints it).

    Raises:
        FileNotFoundError: no ``dataset.json`` in ``dataset_dir``.
        ValueError: bad ``min_slices`` or ``max_cases``, or no labelled case.
    """
    if isinstance(min_slices, bool) or int(min_slices) < 1:
        raise ValueError(f"min_slices must be a positive integer, got {min_slices!r}.")
    shown = str(dataset_dir)
    dataset_dir = os.path.abspath(os.path.expanduser(shown))
    cases, meta = _load_cases(dataset_dir, max_cases)
    if not cases:
        raise ValueError(f"dataset_dir={dataset_dir!r} lists no labelled (training) case.")
    grid = [float(t) for t in continuity_thresholds]
    curves, cont, volumes = [], [], []
    for case in cases:
        image, spacing = _read(case["image"])
        target = _read(case["label"])[0] == foreground
        curves.append(threshold_dice_curve(image, target))
        cont.append([_dice(continuity_filter(image, t, int(min_slices)), target) for t in grid])
        volumes.append((image, target, spacing))
    curves, cont = np.asarray(curves), np.asarray(cont)
    best = int(np.argmax(curves.mean(0)))
    best_c = int(np.argmax(cont.mean(0)))
    t_hu, c_hu = best + _HU_MIN, grid[best_c]

    def pooled(pred_fn) -> float:
        inter = sum(int((pred_fn(img) & tgt).sum()) for img, tgt, _ in volumes)
        total = sum(int(pred_fn(img).sum() + tgt.sum()) for img, tgt, _ in volumes)
        return 2.0 * inter / total if total else 1.0

    result = {
        "dataset": shown,
        "num_cases": len(cases),
        "foreground": int(foreground),
        "label_name": meta.get("labels", {}).get(str(foreground), "?"),
        "synth": meta.get("t2d_monai.synth"),
        "threshold": {
            "hu": int(t_hu),
            "mean_dice": float(curves[:, best].mean()),
            "std_dice": float(curves[:, best].std()),
            "pooled_dice": pooled(lambda img: img >= t_hu),
            "per_case_dice": [round(float(d), 4) for d in curves[:, best]],
        },
        "continuity": {
            "min_slices": int(min_slices),
            "hu": c_hu,
            "mean_dice": float(cont[:, best_c].mean()),
            "std_dice": float(cont[:, best_c].std()),
            "pooled_dice": pooled(lambda img: continuity_filter(img, c_hu, int(min_slices))),
            "per_case_dice": [round(float(d), 4) for d in cont[:, best_c]],
        },
    }
    table = _markdown(result)
    if out_md:
        write_atomic(str(out_md), table)
    if out_json:
        write_atomic(str(out_json), json.dumps(result, indent=2) + "\n")
    if preview:
        from t2d_monai.visualize import save_preview

        image, target, spacing = volumes[0]
        title = (
            f"{os.path.basename(cases[0]['image'])}: best global threshold (>= {t_hu} HU), "
            f"Dice {curves[0, best]:.2f}"
        )
        save_preview(image, target, image >= t_hu, str(preview), spacing, foreground=1, title=title)
    return table
