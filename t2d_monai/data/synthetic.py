"""Synthetic hepatic-vessel CT cases written in the Medical Segmentation Decathlon Task08 layout.

Each case is an abdomen-like CT volume (:mod:`t2d_monai.data.anatomy`) with contrast-enhanced vessel
trees (label 1, :mod:`t2d_monai.data.vessel_tree`) running mostly through-plane, hypodense tumours
(label 2), and unlabelled bright distractors (:mod:`t2d_monai.data.distractors`) that a single slice
cannot tell from a vessel cross-section. Partial-volume blur and noise finish the image. The target is
the one of Yu et al., "Thickened 2D Networks for Efficient 3D Medical Image Segmentation"
(https://arxiv.org/abs/1904.01150): thin vessels that one slice sees only as dots.

Command line (:func:`t2d_monai.data.synthetic_layouts.synth`)::

    python -m t2d_monai synth --out data/synth --num_cases 8 --seed 0
    python -m t2d_monai synth --out data/synth256 --num_cases 20 --shape 256,256,64 --overwrite
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
from typing import Any, Sequence

import nibabel as nib
import numpy as np
from scipy import ndimage

from t2d_monai.data.anatomy import make_anatomy
from t2d_monai.data.distractors import add_distractors
from t2d_monai.utils.files import write_atomic
from t2d_monai.data.vessel_tree import Centerlines, grow_tree, rasterize_tubes

__all__ = [
    "DEFAULT_RADIUS_RANGE",
    "DEFAULT_SHAPE",
    "DEFAULT_SPACING",
    "DEFAULT_VESSEL_DENSITY",
    "LABELS",
    "case_affine",
    "generate_case",
    "write_dataset",
]

#: default grid of the command line: CPU friendly (128 x 128 in-plane, 64 slices)
DEFAULT_SHAPE: tuple[int, int, int] = (128, 128, 64)
#: default voxel size in mm: abdominal CT, 0.8 mm in-plane, 2.5 mm between slices
DEFAULT_SPACING: tuple[float, float, float] = (0.8, 0.8, 2.5)
#: default expected number of vessel trees per 100 cm^2 of axial field of view
DEFAULT_VESSEL_DENSITY: float = 4.0
#: default (smallest, largest) vessel radius in mm
DEFAULT_RADIUS_RANGE: tuple[float, float] = (0.8, 3.0)
#: MSD Task08 labels
LABELS: dict[str, str] = {"0": "background", "1": "Vessel", "2": "Tumour"}
_MARKER = "t2d_monai.synth"
_NAME = re.compile(r"^hepaticvessel_\d{3,}\.nii\.gz$")
_SUBDIRS = ("imagesTr", "labelsTr", "imagesTs")


def _check_vector(name: str, value: Any, kind: type, positive: bool = True) -> tuple:
    if isinstance(value, str):
        value = [x for x in re.split(r"[,\sx]+", value.strip("()[] ")) if x]
    try:
        vec = tuple(kind(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be 3 numbers such as 128,128,64, got {value!r}.") from None
    if len(vec) != 3:
        raise ValueError(f"{name} must have 3 entries (X, Y, Z), got {value!r}.")
    if kind is int and any(float(v) != int(v) for v in value):
        raise ValueError(f"{name} must be whole numbers, got {value!r}.")
    if positive and any(v <= 0 for v in vec):
        raise ValueError(f"{name} must be positive in every axis, got {value!r}.")
    return vec


def case_affine(shape: Sequence[int], spacing: Sequence[float]) -> np.ndarray:
    """RAS affine of a case: axis-aligned voxel size ``spacing`` (mm), volume centred on the origin.

    Array axis 0 runs to the patient's right, 1 anterior, 2 superior (nibabel orientation ``RAS``).
    """
    aff = np.diag([float(s) for s in spacing] + [1.0])
    aff[:3, 3] = -(np.asarray(shape, float) - 1.0) / 2.0 * np.asarray(spacing, float)
    return aff


def _grow_vessels(anatomy, shape, spacing, rng, vessel_density, radius_range) -> Centerlines:
    extent = np.asarray(shape) * spacing
    area_cm2 = extent[0] * extent[1] / 100.0
    num_trees = max(1, int(rng.poisson(vessel_density * area_cm2 / 100.0)))
    liver_xy = np.argwhere(anatomy.liver.any(axis=2))
    inner_xy = np.argwhere(anatomy.inner.any(axis=2))
    trees = []
    for _ in range(num_trees):
        pool = liver_xy if liver_xy.size and rng.uniform() < 0.75 else inner_xy
        xy = (pool[rng.integers(len(pool))] + rng.uniform(-0.5, 0.5, 2)) * spacing[:2]
        radius = rng.uniform(0.6, 1.0) * radius_range[1]
        value = rng.uniform(135, 260)
        tilt, azimuth = np.deg2rad(rng.uniform(0, 35)), rng.uniform(0, 2 * np.pi)
        horizontal = np.array([np.cos(azimuth), np.sin(azimuth)]) * np.sin(tilt)
        if rng.uniform() < 0.6:  # enters through the top or bottom of the volume
            up = rng.uniform() < 0.5
            z = 0.0 if up else extent[2]
            starts = [(np.array([*xy, z]), np.array([*horizontal, np.cos(tilt) * (1 if up else -1)]))]
        else:  # a trunk inside the field that branches both ways
            z = rng.uniform(0.3, 0.7) * extent[2]
            d = np.array([*horizontal, np.cos(tilt)])
            starts = [(np.array([*xy, z]), d), (np.array([*xy, z]), -d)]
        for p, d in starts:
            trees.append(grow_tree(p, d, radius, value, extent, rng, min_radius=radius_range[0]))
    return Centerlines.concatenate(trees)


def _plausible(label: np.ndarray, shape: Sequence[int]) -> bool:
    vessel = label == 1
    n = int(vessel.sum())
    if n < max(50, 2e-3 * vessel.size) or n > 0.08 * vessel.size:
        return False
    z_span = np.flatnonzero(vessel.any(axis=(0, 1)))
    return z_span.size >= 0.5 * shape[2]


def _check_params(shape, spacing, vessel_density, radius_range) -> tuple[tuple, tuple, tuple]:
    shape = _check_vector("shape", shape, int)
    spacing = _check_vector("spacing", spacing, float)
    if min(shape) < 8:
        raise ValueError(f"shape must be at least 8 voxels in every axis, got {shape}.")
    try:
        r_min, r_max = (float(r) for r in radius_range)
    except (TypeError, ValueError):
        raise ValueError(f"radius_range must be two numbers (min, max) in mm, got {radius_range!r}.") from None
    if not 0 < r_min <= r_max:
        raise ValueError(f"radius_range must be (min, max) with 0 < min <= max mm, got {radius_range!r}.")
    if not vessel_density > 0:
        raise ValueError(f"vessel_density must be positive (trees per 100 cm^2), got {vessel_density}.")
    return shape, spacing, (r_min, r_max)


def generate_case(
    index: int,
    seed: int = 0,
    shape: Sequence[int] = DEFAULT_SHAPE,
    spacing: Sequence[float] = DEFAULT_SPACING,
    vessel_density: float = DEFAULT_VESSEL_DENSITY,
    radius_range: Sequence[float] = DEFAULT_RADIUS_RANGE,
    noise_range: Sequence[float] = (12.0, 22.0),
    max_attempts: int = 20,
) -> dict[str, Any]:
    """Generate one synthetic case, deterministic in ``(seed, index)``.

    Args:
        index: case number (0-based); case ``i`` depends only on ``seed`` and ``i``.
        seed: data set seed. Default 0.
        shape: grid ``(X, Y, Z)``, slices along Z. Default ``DEFAULT_SHAPE`` (128, 128, 64).
        spacing: voxel size in mm. Default ``DEFAULT_SPACING`` (0.8, 0.8, 2.5).
        vessel_density: expected number of vessel trees per 100 cm^2 of axial field of view. Default
            ``DEFAULT_VESSEL_DENSITY`` (4).
        radius_range: (smallest, largest) vessel radius in mm; leaves taper to the smallest (about
            one in-plane voxel), roots start at 60-100% of the largest. Default ``DEFAULT_RADIUS_RANGE``
            (0.8, 3.0).
        noise_range: range of the image noise standard deviation in HU. Default (12, 22).
        max_attempts: a case whose vessel label is empty or implausible (too few voxels, too many,
            spanning under half of the slices) is drawn again, up to this many times. Default 20.

    Returns:
        dict with ``image`` (int16 HU, ``(X, Y, Z)``), ``label`` (uint8: 0 background, 1 vessel,
        2 tumour), ``centerline`` (bool, voxels holding a vessel centerline), ``distractor`` (bool,
        unlabelled bright structures), ``affine`` (4 x 4 RAS) and ``attempt`` (0 if the first draw passed).

    Raises:
        ValueError: non-positive shape or spacing, bad radius range or density.
        RuntimeError: no plausible case within ``max_attempts`` (the grid is too small for vessels).

    Example::

        >>> case = generate_case(0, seed=0, shape=(64, 64, 32))
        >>> case["image"].dtype, case["label"].max()
        (dtype('int16'), 2)
    """
    shape, spacing, (r_min, r_max) = _check_params(shape, spacing, vessel_density, radius_range)
    spacing = np.asarray(spacing, float)
    for attempt in range(max_attempts):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), attempt]))
        anatomy = make_anatomy(shape, spacing, rng)
        lines = _grow_vessels(anatomy, shape, spacing, rng, vessel_density, (r_min, r_max))
        vessel, v_occ, v_val, centre = rasterize_tubes(lines, shape, spacing)
        vessel &= anatomy.inner
        v_occ *= anatomy.inner
        centre &= anatomy.inner
        label = np.where(anatomy.tumour, 2, 0).astype(np.uint8)
        label[vessel] = 1
        if not _plausible(label, shape):
            continue
        keep_out = ndimage.binary_dilation(vessel, iterations=2)
        target = int(vessel.sum() * rng.uniform(0.9, 1.4))
        d_mask, d_occ, d_val = add_distractors(
            shape, spacing, target, anatomy.inner, anatomy.liver, keep_out, rng
        )
        img = anatomy.image
        img = img * (1 - v_occ) + v_val * v_occ
        img = img * (1 - d_occ) + d_val * d_occ
        # partial volume: point spread of the scanner (in-plane) and slice profile (through-plane)
        img = ndimage.gaussian_filter(img, sigma=(0.6, 0.6, 0.35), mode="nearest")
        noise = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma=(0.6, 0.6, 0))
        noise *= rng.uniform(*noise_range) / max(float(noise.std()), 1e-6)
        img += np.where(anatomy.body, noise, 0.2 * noise)
        image = np.clip(np.rint(img), -1024, 3071).astype(np.int16)
        return {
            "image": image,
            "label": label,
            "centerline": centre,
            "distractor": d_mask & (label == 0),
            "affine": case_affine(shape, spacing),
            "attempt": attempt,
        }
    raise RuntimeError(
        f"no plausible case for seed={seed}, index={index} in {max_attempts} attempts; "
        f"the grid {shape} x {tuple(spacing)} mm is likely too small: use a larger shape or vessel_density."
    )


def _nifti_bytes(array: np.ndarray, affine: np.ndarray) -> bytes:
    img = nib.Nifti1Image(array, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    return gzip.compress(img.to_bytes(), compresslevel=6, mtime=0)  # mtime=0: same seed, same bytes


def _check_out_folder(out: str, overwrite: bool) -> None:
    if not os.path.exists(out):
        return
    if not os.path.isdir(out):
        raise ValueError(f"out={out!r} exists and is not a folder; choose another --out.")
    others, ours = [], []
    for entry in os.listdir(out):
        full = os.path.join(out, entry)
        if entry == "dataset.json" and os.path.isfile(full):
            ours.append(entry)
        elif entry in _SUBDIRS and os.path.isdir(full):
            for f in os.listdir(full):
                (ours if _NAME.match(f) else others).append(os.path.join(entry, f))
        else:
            others.append(entry)
    if others:
        raise ValueError(
            f"out={out!r} holds files that are not a synthetic data set ({sorted(others)[:5]}); "
            "choose an empty or new folder."
        )
    if "dataset.json" in ours:
        try:
            with open(os.path.join(out, "dataset.json")) as f:
                marker = json.load(f).get(_MARKER)
        except (OSError, ValueError):
            marker = None
        if marker is None:
            raise ValueError(
                f"out={out!r} holds a dataset.json not written by synth (real data?); it is never overwritten. "
                "Choose another --out."
            )
    if ours and not overwrite:
        raise FileExistsError(f"out={out!r} already holds a data set; pass --overwrite to replace it.")


def write_dataset(
    out: str,
    num_cases: int = 8,
    num_test: int = 2,
    seed: int = 0,
    shape: Sequence[int] = DEFAULT_SHAPE,
    spacing: Sequence[float] = DEFAULT_SPACING,
    vessel_density: float = DEFAULT_VESSEL_DENSITY,
    radius_range: Sequence[float] = DEFAULT_RADIUS_RANGE,
    overwrite: bool = False,
    verbose: bool = False,
) -> str:
    """Write a synthetic data set in the MSD Task08 layout and return the path of its ``dataset.json``.

    Layout: ``imagesTr/hepaticvessel_001.nii.gz ...`` (int16 HU) with ``labelsTr/`` (uint8) for the
    ``num_cases`` labelled cases, ``imagesTs/`` for ``num_test`` unlabelled cases numbered after them,
    and ``dataset.json`` with the MSD keys (``labels``, ``modality``, ``training``, ``test``,
    ``numTraining``, ``numTest``, ...) plus a ``t2d_monai.synth`` record of the arguments.
    Every file is written to a temporary name and renamed, ``dataset.json`` last.

    Args: see :func:`generate_case` and :func:`synth`.

    Raises:
        ValueError: bad sizes, or ``out`` holds files that are not a synthetic data set.
        FileExistsError: ``out`` holds a synthetic data set and ``overwrite`` is False.
    """
    for name, value in (("num_cases", num_cases), ("num_test", num_test), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be an integer, got {value!r}.")
    if num_cases <= 0:
        raise ValueError(f"num_cases must be positive, got {num_cases}.")
    if num_test < 0:
        raise ValueError(f"num_test must be zero or positive, got {num_test}.")
    shape, spacing, radius_range = _check_params(shape, spacing, vessel_density, radius_range)
    out = os.path.abspath(os.path.expanduser(str(out)))
    _check_out_folder(out, overwrite)
    if os.path.isdir(out):  # an earlier synthetic data set: clear it so no stale case survives
        for sub in _SUBDIRS:
            shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
        if os.path.exists(os.path.join(out, "dataset.json")):
            os.remove(os.path.join(out, "dataset.json"))
    for sub in _SUBDIRS:
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    training, test = [], []
    for i in range(num_cases + num_test):
        case = generate_case(i, seed, shape, spacing, vessel_density, radius_range)
        name = f"hepaticvessel_{i + 1:03d}.nii.gz"
        if i < num_cases:
            write_atomic(os.path.join(out, "imagesTr", name), _nifti_bytes(case["image"], case["affine"]))
            write_atomic(os.path.join(out, "labelsTr", name), _nifti_bytes(case["label"], case["affine"]))
            training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
        else:
            write_atomic(os.path.join(out, "imagesTs", name), _nifti_bytes(case["image"], case["affine"]))
            test.append(f"./imagesTs/{name}")
        if verbose:
            print(f"case {i + 1}/{num_cases + num_test}: {name} (attempt {case['attempt']})", flush=True)
    meta = {
        "name": "HepaticVessel (synthetic)",
        "description": "Synthetic hepatic vessel and tumour CT written by t2d_monai synth (Task08 layout)",
        "reference": "t2d_monai.data.synthetic",
        "licence": "CC-BY-SA 4.0",
        "release": "1.0",
        "tensorImageSize": "3D",
        "modality": {"0": "CT"},
        "labels": dict(LABELS),
        "numTraining": num_cases,
        "numTest": num_test,
        "training": training,
        "test": test,
        _MARKER: {
            "seed": int(seed),
            "shape": list(shape),
            "spacing": list(spacing),
            "vessel_density": float(vessel_density),
            "radius_range": list(radius_range),
        },
    }
    path = os.path.join(out, "dataset.json")
    write_atomic(path, (json.dumps(meta, indent=4) + "\n").encode())
    return path
