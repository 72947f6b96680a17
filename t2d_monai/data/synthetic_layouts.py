"""The synthetic cases of :mod:`t2d_monai.data.synthetic` written in the layouts of the public data sets that
label the paper's other targets (issue 13), so that every target's bundle trains and evaluates end to end on CPU.

- ``totalsegmentator``: ``s0001/ct.nii.gz``, ``s0001/segmentations/<class>.nii.gz``, ``meta.csv``
  (``image_id;split``, ``train`` / ``test``, no ``val``: as newer releases);
- ``pants``: ``ImageTr/PanTS_00000001/ct.nii.gz``, ``LabelTr/PanTS_00000001/segmentations/<class>.nii.gz``;
- ``abdomenatlas``: ``BDMAP_00000001/ct.nii.gz``, ``BDMAP_00000001/segmentations/<class>.nii.gz``;
- ``msd_pancreas``: MSD Task07 (``imagesTr/pancreas_001.nii.gz``, ``labelsTr/``, ``dataset.json``; label 1
  pancreas, 2 tumour inside it).

``python -m t2d_monai synth`` (:func:`synth`) writes any of them, or the MSD Task08 hepatic-vessel layout.

Vessel classes are the vessel tree of the case (label 1 of the generator); organ classes (pancreas, duodenum)
a blob of enhancing tissue (:func:`t2d_monai.data.organ.add_organ`). Case ``i`` is the same case in every
layout for the same seed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

from t2d_monai.data.layouts import LAYOUTS
from t2d_monai.data.organ import add_organ
from t2d_monai.data.synthetic import (
    DEFAULT_RADIUS_RANGE,
    DEFAULT_SHAPE,
    DEFAULT_SPACING,
    DEFAULT_VESSEL_DENSITY,
    _check_params,
    _nifti_bytes,
    generate_case,
    write_dataset,
)
from t2d_monai.utils.files import write_atomic

__all__ = ["LAYOUT_CLASSES", "SYNTH_LAYOUTS", "synth", "synthetic_dataset_exists", "write_layout_dataset"]

#: class files each subject-folder layout gets: class name -> "vessel" or "organ"
LAYOUT_CLASSES: dict[str, dict[str, str]] = {
    "totalsegmentator": {"duodenum": "organ", "portal_vein_and_splenic_vein": "vessel"},
    "pants": {"pancreas": "organ", "superior_mesenteric_artery": "vessel", "celiac_artery": "vessel"},
    "abdomenatlas": {"celiac_trunk": "vessel"},
}
_SUBJECT = {"totalsegmentator": "s{:04d}", "pants": "PanTS_{:08d}", "abdomenatlas": "BDMAP_{:08d}"}
#: layouts ``synth --layout`` writes besides ``msd`` (hepatic vessel, :func:`~t2d_monai.data.write_dataset`)
SYNTH_LAYOUTS = (*LAYOUT_CLASSES, "msd_pancreas")
_MARKER = ".t2d_monai_synth.json"


def _check_out(out: str, overwrite: bool) -> None:
    if not os.path.exists(out) or not os.listdir(out):
        return
    if not os.path.isfile(os.path.join(out, _MARKER)):
        raise ValueError(f"out={out!r} is not empty and was not written by synth; nothing in it is overwritten. "
                         "Choose an empty or new folder.")
    if not overwrite:
        raise FileExistsError(f"out={out!r} already holds a synthetic data set; pass --overwrite to replace it.")


def synthetic_dataset_exists(out: str, layout: str = "msd") -> bool:
    """Whether ``out`` holds a finished synthetic data set in ``layout`` (to reuse it rather than write it again)."""
    if layout == "msd":
        return os.path.isfile(os.path.join(out, "dataset.json"))
    marker = os.path.join(out, _MARKER)
    if not os.path.isfile(marker):
        return False
    with open(marker) as f:
        return json.load(f).get("layout") == layout


def _with_organ(case: dict, seed: int, index: int, spacing: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 1_000_003]))
    return add_organ(case["image"], spacing, rng)


def write_layout_dataset(
    out: str,
    layout: str,
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
    """Write ``num_cases`` labelled synthetic cases in ``layout`` (one of :data:`SYNTH_LAYOUTS`); returns ``out``.

    ``num_test`` of them are the split file's ``test`` cases for ``totalsegmentator`` (the rest ``train``);
    for the other layouts every case is labelled training data, split by seed like real data. Files are
    written atomically; a folder that synth did not write is never overwritten. The other arguments are those
    of :func:`~t2d_monai.data.synthetic.generate_case`.

    Raises:
        ValueError: unknown layout, bad counts, or ``out`` holds other files.
        FileExistsError: ``out`` holds a synthetic data set and ``overwrite`` is False.
    """
    if layout not in SYNTH_LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose msd or one of {list(SYNTH_LAYOUTS)}.")
    if not 0 <= int(num_test) < int(num_cases):
        raise ValueError(f"need 0 <= num_test < num_cases, got num_test={num_test}, num_cases={num_cases}.")
    shape, spacing, radius_range = _check_params(shape, spacing, vessel_density, radius_range)
    out = os.path.abspath(os.path.expanduser(str(out)))
    _check_out(out, overwrite)
    os.makedirs(out, exist_ok=True)
    classes = LAYOUT_CLASSES.get(layout, {})
    needs_organ = layout == "msd_pancreas" or "organ" in classes.values()
    rows, training = [], []
    for i in range(int(num_cases)):
        case = generate_case(i, seed, shape, spacing, vessel_density, radius_range)
        vessel = (case["label"] == 1).astype(np.uint8)
        image, organ = _with_organ(case, seed, i, spacing) if needs_organ else (case["image"], None)
        if layout == "msd_pancreas":
            name = f"pancreas_{i + 1:03d}.nii.gz"
            label = organ.astype(np.uint8)
            label[organ & (case["label"] == 2)] = 2  # the generator's tumours, where they fall inside the organ
            write_atomic(os.path.join(out, "imagesTr", name), _nifti_bytes(image, case["affine"]))
            write_atomic(os.path.join(out, "labelsTr", name), _nifti_bytes(label, case["affine"]))
            training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
        else:
            spec, subject = LAYOUTS[layout], _SUBJECT[layout].format(i + 1)
            write_atomic(os.path.join(out, spec.image.format(subject=subject)), _nifti_bytes(image, case["affine"]))
            for cls, kind in classes.items():
                mask = organ.astype(np.uint8) if kind == "organ" else vessel
                path = os.path.join(out, spec.label.format(subject=subject, label=cls))
                write_atomic(path, _nifti_bytes(mask, case["affine"]))
            rows.append(f"{subject};{'test' if i >= num_cases - num_test else 'train'}")
        if verbose:
            print(f"case {i + 1}/{num_cases} ({layout})", flush=True)
    if layout == "totalsegmentator":
        write_atomic(os.path.join(out, "meta.csv"), ("image_id;split\n" + "\n".join(rows) + "\n").encode())
    if layout == "msd_pancreas":
        meta = {"name": "Pancreas (synthetic)", "description": "Synthetic stand-in for MSD Task07, t2d_monai synth",
                "modality": {"0": "CT"}, "labels": {"0": "background", "1": "pancreas", "2": "cancer"},
                "numTraining": int(num_cases), "numTest": 0, "training": training, "test": []}
        write_atomic(os.path.join(out, "dataset.json"), (json.dumps(meta, indent=4) + "\n").encode())
    record = {"layout": layout, "num_cases": int(num_cases), "num_test": int(num_test), "seed": int(seed),
              "shape": list(shape), "spacing": list(spacing), "classes": classes}
    write_atomic(os.path.join(out, _MARKER), (json.dumps(record, indent=2) + "\n").encode())
    return out


def synth(
    out: str,
    num_cases: int = 8,
    num_test: int = 2,
    seed: int = 0,
    shape: Sequence[int] = DEFAULT_SHAPE,
    spacing: Sequence[float] = DEFAULT_SPACING,
    vessel_density: float = DEFAULT_VESSEL_DENSITY,
    radius_range: Sequence[float] = DEFAULT_RADIUS_RANGE,
    overwrite: bool = False,
    layout: str = "msd",
) -> str:
    """Write a synthetic hepatic-vessel CT data set in the MSD Task08 layout (or another data set's layout).

    Args:
        out: output folder (created; must be new, empty, or an earlier synthetic data set with --overwrite).
        num_cases: labelled cases in imagesTr/labelsTr. Default 8.
        num_test: unlabelled cases in imagesTs (the MSD "test" list). Default 2.
        seed: data set seed; case i depends only on (seed, i). Default 0.
        shape: grid X,Y,Z with slices along Z. Default 128,128,64 (CPU friendly; 256,256,64 or
            512,512,Z for GPU-sized runs).
        spacing: voxel size in mm. Default 0.8,0.8,2.5 (abdominal CT).
        vessel_density: vessel trees per 100 cm^2 of axial field of view. Default 4.
        radius_range: smallest,largest vessel radius in mm. Default 0.8,3.0.
        overwrite: replace an earlier synthetic data set in out. Default False.
        layout: msd (Task08 hepatic vessel), or the same cases as totalsegmentator, pants, abdomenatlas or
            msd_pancreas for the other targets (:mod:`t2d_monai.data.synthetic_layouts`). Default msd.

    Returns:
        path of the written dataset.json (msd), or of the data set folder.

    Example::

        python -m t2d_monai synth --out data/synth --num_cases 8 --seed 0 --shape 128,128,64
    """
    if layout != "msd":
        return write_layout_dataset(out, layout, num_cases, num_test, seed, shape, spacing, vessel_density,
                                    radius_range, overwrite, verbose=True)
    return write_dataset(
        out, num_cases, num_test, seed, shape, spacing, vessel_density, radius_range, overwrite, verbose=True
    )
