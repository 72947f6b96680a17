"""Early, readable checks that bundle configs run in ``initialize``, before any engine starts."""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Sequence
from typing import Any

__all__ = [
    "IMAGE_SUFFIXES",
    "check_cases_per_rank",
    "check_checkpoint",
    "check_checkpoint_exists",
    "check_dataset_dir",
    "check_window_stride",
    "list_images",
]

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")
_HOW_TO_GET_DATA = (
    "Point --dataset_dir at the bundle's data set (its model card's Data section says which and where to get it), "
    "or make a synthetic one in the same layout with: python -m t2d_monai synth --out DIR (see its --layout)"
)


def _is_label_folder(name: str) -> bool:
    """MSD ``labelsTr``/``labelsTs``, PanTS ``LabelTr``, a subject's ``segmentations/``: masks, not images."""
    return name.lower().startswith("labels") or name in ("LabelTr", "segmentations")


def _is_image(path: str) -> bool:
    name = os.path.basename(path)
    return not name.startswith(".") and name.endswith(IMAGE_SUFFIXES)


def check_dataset_dir(dataset_dir: str) -> str:
    """Raise a clear error unless ``dataset_dir`` is a folder with an MSD ``dataset.json`` or images in it.

    Returns:
        ``dataset_dir``, so the check can sit inside a config expression.

    Raises:
        FileNotFoundError: the folder does not exist, or holds neither ``dataset.json`` nor any image.
    """
    if not os.path.isdir(dataset_dir):
        raise FileNotFoundError(f"dataset_dir {dataset_dir!r} does not exist or is not a folder. {_HOW_TO_GET_DATA}")
    if os.path.isfile(os.path.join(dataset_dir, "dataset.json")):
        return dataset_dir
    images = [p for p in glob.glob(os.path.join(dataset_dir, "**", "*"), recursive=True) if _is_image(p)]
    if not images:
        raise FileNotFoundError(
            f"dataset_dir {dataset_dir!r} has no dataset.json and no images ({', '.join(IMAGE_SUFFIXES)}). "
            + _HOW_TO_GET_DATA
        )
    return dataset_dir


def check_cases_per_rank(cases: Sequence, split: str) -> Sequence:
    """Raise a clear error when a multi-process (torchrun) run has fewer ``split`` cases than processes: each
    process evaluates its own share, and MONAI's ``DistributedSampler`` refuses an empty one deep inside the config.

    Returns:
        ``cases``, so the check can sit inside a config expression.

    Raises:
        ValueError: naming the counts and the two ways out (fewer processes, more cases).
    """
    import torch.distributed as dist

    ranks = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    if len(cases) < ranks:
        more = {"validation": "--num_validation", "test": "--num_test"}.get(split, f"more {split} cases")
        raise ValueError(
            f"{len(cases)} {split} case(s) for {ranks} processes: every process needs at least one. Start at most "
            f"{max(len(cases), 1)} (torchrun --nproc_per_node), or hold out more cases ({more} N, or a split_file)."
        )
    return cases


def check_window_stride(stride: int, num_slices: int, slab_margin: int = 0) -> int:
    """Raise a clear error when the thick-slice windows at ``stride`` would predict some slices only from a window's
    end slices that the network was trained without loss on (``SlabLoss``'s ``margin``, the config's
    ``slab_margin``): those slices get an untrained prediction. At most ``num_slices - 2 * margin`` keeps every slice
    inside some window's trained slices (the margin capped at ``(num_slices - 1) // 2``, as the loss caps it).

    Returns:
        ``stride``, so the check can sit inside a config expression.

    Raises:
        ValueError: naming the stride, the windows, the margin and the largest stride that fits.
    """
    from t2d_monai.losses import capped_margin

    margin = capped_margin(slab_margin, num_slices)
    largest = int(num_slices) - 2 * margin
    if int(stride) > largest:
        raise ValueError(
            f"stride={stride} with {num_slices}-slice windows: this network was trained without loss on "
            f"{margin} slice(s) at each end of a window (slab_margin={slab_margin}), so some slices would be "
            f"predicted only there, by untrained outputs (what that costs in Dice: docs/experiments/stride_cpu in the "
            f"t2d-monai repository). Use --stride {largest} or less."
        )
    return stride


def check_checkpoint_exists(ckpt_file: str) -> str:
    """Raise a clear error when the checkpoint an evaluation or inference config needs is missing.

    Raises:
        FileNotFoundError: naming the file and the command that trains it.
    """
    if not os.path.isfile(ckpt_file):
        raise FileNotFoundError(
            f"no trained model at {ckpt_file!r}. Train one first (python -m monai.bundle run training "
            "--config_file <bundle>/configs/train.json --dataset_dir DIR [--view VIEW]), or override ckpt_file "
            "with the path of a trained checkpoint. A network with random weights is never used for inference."
        )
    return ckpt_file


def check_checkpoint(ckpt_file: str, signature: Any = None) -> str:
    """Raise a clear error, before any data is loaded, when the checkpoint an evaluation or inference config needs
    is missing, unreadable (truncated, corrupted, not a PyTorch file), not one of this project's checkpoints, or
    trained for other settings than ``signature`` (a :class:`~t2d_monai.handlers.ModelSignature`; None: not
    checked).

    Returns:
        ``ckpt_file``, so the check can sit inside a config expression.

    Raises:
        FileNotFoundError: no file (:func:`check_checkpoint_exists`).
        CheckpointReadError: the file cannot be used (:func:`~t2d_monai.handlers.read_checkpoint`).
        CheckpointMismatchError: the checkpoint's signature differs from ``signature``.
    """
    from t2d_monai.handlers.checkpoint import read_checkpoint

    check_checkpoint_exists(ckpt_file)
    state = read_checkpoint(ckpt_file, "cpu", keys=("signature", "model"))
    if signature is not None:
        signature.load_state_dict(state["signature"])
    return ckpt_file


def list_images(source: str) -> list[dict[str, str]]:
    """Images to run inference on, as ``[{"image": path}, ...]`` in a stable order.

    ``source`` may be an image file, an MSD folder (its ``dataset.json`` ``test`` list, or ``imagesTs/``),
    or any folder of images (searched recursively; mask folders are skipped: ``labelsTr``/``labelsTs``, PanTS
    ``LabelTr``, a subject's ``segmentations/``).

    Raises:
        FileNotFoundError: when ``source`` does not exist or no image is found.
    """
    if os.path.isfile(source):
        if not _is_image(source):
            raise FileNotFoundError(f"{source!r} is not an image file ({', '.join(IMAGE_SUFFIXES)}).")
        return [{"image": os.path.abspath(source)}]
    if not os.path.isdir(source):
        raise FileNotFoundError(f"{source!r} does not exist. {_HOW_TO_GET_DATA}")
    manifest = os.path.join(source, "dataset.json")
    if os.path.isfile(manifest):
        with open(manifest) as f:
            test = json.load(f).get("test", [])
        paths = [os.path.normpath(os.path.join(source, t if isinstance(t, str) else t["image"])) for t in test]
        if paths:
            return [{"image": p} for p in paths]
    search_root = os.path.join(source, "imagesTs") if os.path.isdir(os.path.join(source, "imagesTs")) else source
    paths = sorted(
        p
        for p in glob.glob(os.path.join(search_root, "**", "*"), recursive=True)
        if _is_image(p) and not any(_is_label_folder(part) for part in os.path.relpath(p, source).split(os.sep))
    )
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {source!r}.")
    return [{"image": p} for p in paths]
