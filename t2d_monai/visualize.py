"""Preview pictures of a segmentation: projections and slices with true/false positive overlays.

People judge vessel segmentations by looking at them. :func:`save_preview` draws, for one case:

- row 1: maximum-intensity projections (MIPs) of the CT in a vessel window, in the three views;
- row 2: MIPs of the ground truth and the prediction in the three views, coloured by agreement:
  true positive (green), false negative (blue, missed), false positive (red);
- row 3: a few axial slices in a CT window with the same colours overlaid, zoomed onto the masks.

Without a prediction, row 2 shows the ground truth alone and row 3 outlines it. Arrays are
``(X, Y, Z)`` in RAS orientation (as :class:`monai.transforms.LoadImage` gives them after
``Orientation("RAS")``); pictures follow the radiological convention (patient's right on the left,
anterior up, superior up).

Command line::

    python -m t2d_monai preview --image imagesTr/hepaticvessel_001.nii.gz \
        --label labelsTr/hepaticvessel_001.nii.gz --out case.png
"""

from __future__ import annotations

import io
import os
from typing import Sequence

import numpy as np

from t2d_monai.transforms.view_permute import VIEWS
from t2d_monai.utils.files import write_atomic

__all__ = ["COLORS", "preview", "save_preview"]

#: overlay colours (RGB in [0, 1])
COLORS: dict[str, tuple[float, float, float]] = {
    "tp": (0.15, 0.85, 0.3),
    "fn": (0.2, 0.55, 1.0),
    "fp": (1.0, 0.25, 0.2),
    "gt": (1.0, 0.85, 0.1),
}


def _mask(array: np.ndarray, name: str, foreground: int | None, shape: tuple | None) -> np.ndarray:
    a = np.asarray(array)
    a = np.squeeze(a) if a.ndim > 3 else a
    if a.ndim != 3:
        raise ValueError(f"{name} must be a 3D array (X, Y, Z), got shape {np.asarray(array).shape}.")
    if shape is not None and a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape} but image has shape {shape}; pass arrays of one case.")
    return a > 0 if foreground is None else a == foreground


def _views(volume: np.ndarray, reduce) -> list[np.ndarray]:
    """Axial, coronal, sagittal projections as display arrays (rows top to bottom)."""
    ax = reduce(volume, 2)[::-1, :].T[::-1]  # rows: anterior up, cols: patient's right on the left
    co = reduce(volume, 1)[::-1, :].T[::-1]  # rows: superior up
    sa = reduce(volume, 0)[::-1, :].T[::-1]  # rows: superior up, cols: anterior on the left
    return [ax, co, sa]


def _aspects(spacing: Sequence[float]) -> list[float]:
    sx, sy, sz = spacing
    return [sy / sx, sz / sx, sz / sy]


def _overlay(base_gray: np.ndarray, layers: dict[str, np.ndarray], alpha: float) -> np.ndarray:
    rgb = np.repeat(base_gray[..., None], 3, axis=-1)
    for key, m in layers.items():
        rgb[m] = (1 - alpha) * rgb[m] + alpha * np.asarray(COLORS[key])
    return rgb


def save_preview(
    image: np.ndarray,
    label: np.ndarray,
    prediction: np.ndarray | None = None,
    path: str = "preview.png",
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    foreground: int | None = 1,
    window: Sequence[float] = (60.0, 360.0),
    mip_window: Sequence[float] = (150.0, 250.0),
    num_slices: int = 4,
    title: str | None = None,
    dpi: int = 110,
) -> str:
    """Write a preview PNG of one case (written to a temporary file, then renamed).

    Args:
        image: CT in HU, ``(X, Y, Z)`` (a leading channel of 1 is squeezed).
        label: ground truth, same shape.
        prediction: predicted mask or labels, same shape; None shows the ground truth only.
        path: output ``.png`` path; its folder is created.
        spacing: voxel size in mm, for correct aspect ratios. Default (1, 1, 1).
        foreground: label value shown (1 is "Vessel" in MSD Task08); None shows every value > 0. Default 1.
        window: (level, width) of the slice CT window in HU. Default (60, 360), abdomen.
        mip_window: (level, width) of the CT MIP in HU. Default (150, 250), vessels.
        num_slices: axial slices shown, at quantiles of the slices holding the most foreground. Default 4.
        title: figure title. Default: the file name.
        dpi: resolution. Default 110.

    Returns:
        ``path``.

    Raises:
        ValueError: arrays that are not 3D or do not share one shape, bad window or counts.

    Example::

        >>> save_preview(case["image"], case["label"], None, "case.png", spacing=(0.8, 0.8, 2.5))
    """
    # a bare Figure renders with the Agg canvas whatever pyplot's backend is, and touches no global state
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    img = np.asarray(image, np.float32)
    img = np.squeeze(img) if img.ndim > 3 else img
    if img.ndim != 3:
        raise ValueError(f"image must be a 3D array (X, Y, Z), got shape {np.asarray(image).shape}.")
    gt = _mask(label, "label", foreground, img.shape)
    pred = None if prediction is None else _mask(prediction, "prediction", foreground, img.shape)
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ValueError(f"spacing must be 3 positive numbers (mm), got {spacing!r}.")
    for name, (lvl, width) in (("window", window), ("mip_window", mip_window)):
        if width <= 0:
            raise ValueError(f"{name} must be (level, width) with width > 0, got {(lvl, width)!r}.")
    if int(num_slices) < 1:
        raise ValueError(f"num_slices must be at least 1, got {num_slices}.")

    def gray(a, lw):
        lvl, width = lw
        return np.clip((a - (lvl - width / 2)) / width, 0.0, 1.0)

    aspects = _aspects(spacing)
    ct_mips = _views(img, np.max)
    # column widths of the projection rows follow the physical width of each view at a common height
    widths = [pic.shape[1] / (pic.shape[0] * a) for pic, a in zip(ct_mips, aspects)]
    ncols = int(num_slices)
    fig = Figure(figsize=(12.0, 12.0), dpi=dpi, facecolor="black")
    outer = fig.add_gridspec(3, 1, hspace=0.14, left=0.01, right=0.99, top=0.94, bottom=0.05)
    top = outer[0:2].subgridspec(2, 3, width_ratios=widths, wspace=0.03, hspace=0.1)
    bottom = outer[2].subgridspec(1, ncols, wspace=0.03)

    def show(ax, picture, aspect, text):
        ax.imshow(picture, aspect=aspect, interpolation="nearest", cmap="gray", vmin=0, vmax=1)
        ax.set_axis_off()
        ax.set_title(text, color="white", fontsize=9)

    # row 1: CT MIPs
    for k, (pic, name) in enumerate(zip(ct_mips, VIEWS)):
        show(fig.add_subplot(top[0, k]), gray(pic, mip_window), aspects[k], f"CT MIP, {name}")
    # row 2: mask MIPs
    if pred is None:
        layers = {"gt": gt}
    else:
        layers = {"fp": pred & ~gt, "fn": gt & ~pred, "tp": gt & pred}
    projected = {k: _views(m, np.any) for k, m in layers.items()}
    for k, name in enumerate(VIEWS):
        black = np.zeros_like(projected[next(iter(projected))][k], np.float32)
        rgb = _overlay(black, {key: projected[key][k] for key in projected}, 1.0)
        what = "ground truth" if pred is None else "prediction vs truth"
        show(fig.add_subplot(top[1, k]), rgb, aspects[k], f"{what} MIP, {name}")
    # row 3: axial slices where the truth (or prediction) is largest, in a CT window
    per_slice = (gt | (pred if pred is not None else gt)).sum(axis=(0, 1))
    candidates = np.flatnonzero(per_slice) if per_slice.any() else np.arange(img.shape[2])
    picks = np.unique(candidates[np.linspace(0, len(candidates) - 1, int(num_slices) + 2).round().astype(int)[1:-1]])
    if picks.size == 0:
        picks = candidates[:1]
    # zoom the slices onto the masks (with a margin) so that one-voxel vessels stay visible
    shown = (gt | pred) if pred is not None else gt
    box = [slice(None), slice(None)]
    if shown.any():
        for axis in (0, 1):
            hits = np.flatnonzero(shown.any(axis=(1 - axis, 2)))
            margin = max(8, int(0.15 * (hits[-1] - hits[0] + 1)))
            box[axis] = slice(max(hits[0] - margin, 0), min(hits[-1] + margin + 1, img.shape[axis]))
    box = tuple(box)
    for k, z in enumerate(picks[:ncols]):
        base = gray(img[box][:, :, z][::-1, :].T[::-1], window)
        lay = {key: m[box][:, :, z][::-1, :].T[::-1] for key, m in layers.items()}
        show(fig.add_subplot(bottom[0, k]), _overlay(base, lay, 0.6), aspects[0], f"axial slice {z}")
    if pred is None:
        handles = [Patch(color=COLORS["gt"], label="ground truth")]
    else:
        handles = [
            Patch(color=COLORS["tp"], label="true positive"),
            Patch(color=COLORS["fn"], label="false negative (missed)"),
            Patch(color=COLORS["fp"], label="false positive"),
        ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, labelcolor="white", fontsize=9)
    fig.suptitle(title if title is not None else os.path.basename(path), color="white", fontsize=11)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", facecolor=fig.get_facecolor())
    write_atomic(str(path), buffer.getvalue())
    return path


def preview(
    image: str,
    label: str,
    prediction: str | None = None,
    out: str = "preview.png",
    foreground: int | None = 1,
    window: Sequence[float] = (60.0, 360.0),
    num_slices: int = 4,
    title: str | None = None,
) -> str:
    """Write a preview PNG for one case from NIfTI files (reoriented to RAS).

    Args:
        image: CT NIfTI path.
        label: ground-truth NIfTI path.
        prediction: predicted mask NIfTI path; omit to show the ground truth only.
        out: output PNG path. Default preview.png.
        foreground: label value to show; None for every value > 0. Default 1 (Vessel).
        window: level,width of the CT window in HU. Default 60,360.
        num_slices: axial slices in the bottom row. Default 4.
        title: figure title. Default: the image file name.

    Returns:
        the written path.

    Example::

        python -m t2d_monai preview --image data/synth/imagesTr/hepaticvessel_001.nii.gz \
            --label data/synth/labelsTr/hepaticvessel_001.nii.gz --out docs/images/synthetic_case.png
    """
    import nibabel as nib

    def load(p):
        if not os.path.isfile(str(p)):
            raise FileNotFoundError(f"no such file: {p!r}.")
        nii = nib.as_closest_canonical(nib.load(str(p)))
        return np.asanyarray(nii.dataobj), nii.header.get_zooms()[:3]

    img, spacing = load(image)
    lab, _ = load(label)
    pred = None if prediction is None else load(prediction)[0]
    name = title if title is not None else os.path.basename(str(image))
    return save_preview(img, lab, pred, out, spacing, foreground, window, num_slices=num_slices, title=name)
