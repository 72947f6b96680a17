"""The rows of the comparison (methods as stacks of bundle overlays) and its presets (budgets and sizes)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["METHODS", "PRESETS", "Method", "resolve_method"]


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
        reuse_from: the single-view row whose trained model this row reuses for that model's view (a
            three-view row reuses its base row's model instead of training that view again), or None.
    """

    name: str
    label: str
    overlays: tuple[str, ...] = ()
    overrides: dict[str, Any] = field(default_factory=dict)
    kind: str = "2d"
    three_views: bool = False
    reuse_from: str | None = None


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


#: parametrised rows: name pattern -> (label, overrides) for a slab thickness K (the paper's Table 4)
_THICKNESS_ROWS: dict[str, tuple[str, dict[str, Any]]] = {
    "t2d_k": ("T2DNet ESM + SSA, k={k}", {}),
    "early_k": ("DeepLabV3+ on {k} slices (early fusion)", {"fusion": "early", "attention": None}),
}


def resolve_method(name: str) -> Method:
    """A :data:`METHODS` entry, ``t2d_k<K>`` (ESM + SSA on K-slice slabs, Table 4), ``early_k<K>`` (early fusion
    on K slices), or any 2D one + ``_3views``.

    Raises:
        ValueError: for an unknown name (the message lists the valid ones), or ``_3views`` of a 3D method.
    """
    name = str(name).strip()
    base, three = (name[: -len("_3views")], True) if name.endswith("_3views") else (name, False)
    match = re.fullmatch(r"(t2d_k|early_k)(\d+)", base)
    if match:
        k = int(match.group(2))
        if k < 1:
            raise ValueError(f"method {name!r}: the slab thickness must be >= 1.")
        label, overrides = _THICKNESS_ROWS[match.group(1)]
        method = Method(base, label.format(k=k), overrides={**overrides, "num_slices": k})
    elif base in METHODS:
        method = METHODS[base]
    else:
        raise ValueError(
            f"unknown method {name!r}; valid: {', '.join(METHODS)}, t2d_k<K> and early_k<K> (slab thickness K), "
            "and any 2D one with the suffix _3views (three-view fusion)."
        )
    if three:
        if method.kind != "2d":
            raise ValueError(f"method {name!r}: three-view fusion is for 2D methods only, {base!r} is 3D.")
        method = Method(
            name, method.label + ", three views (vote)", method.overlays, method.overrides, "2d", True, reuse_from=base
        )
    return method


#: budgets and sizes. ``tiny`` is for tests, ``quick`` checks that everything works (~10 min on 2 cores),
#: ``cpu`` is the comparison of docs/results.md (Table 4's slab thicknesses for T2D and early fusion, the single
#: slice and the 3D U-Net; about 5 hours on 2 cores: a learning-rate grid and three seeds per row), ``cpu96`` the
#: earlier CPU comparison on smaller volumes (docs/experiments/cpu_preset_6000), ``gpu`` the paper-scale settings.
#: ``learning_rates``: the grid each row's learning rate is chosen from (by validation Dice, at the first seed);
#: ``seeds``: training seeds per row; ``split_cases``: the held-out cases of the synthetic data by number (1 is
#: ``*_001``), the rest training data; without it, or with a given data set, ``num_test`` and ``num_validation``
#: cases are drawn by the split seed (the ``cpu`` preset keeps the earlier preset's: the trainings of docs/results.md
#: and of step 30 recorded them, and a kept training is reused only under equal settings).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "methods": ["deeplab_k1", "t2d", "unet3d"],
        "shape": [32, 32, 32], "num_cases": 4, "num_test": 1, "num_validation": 1,
        "learning_rates": [], "seeds": [0],
        "overrides": {"num_slices": 6, "num_iterations": 2, "iterations_per_epoch": 2, "val_interval": 1,
                      "volumes_per_batch": 1, "slabs_per_volume": 1, "patch_size": [16, 16, 32]},
    },
    "quick": {
        "methods": ["deeplab_k1", "t2d", "unet3d"],
        "shape": [64, 64, 32], "num_cases": 6, "num_test": 2, "num_validation": 1,
        "learning_rates": [], "seeds": [0],
        "overrides": {"num_slices": 6, "num_iterations": 40, "iterations_per_epoch": 20, "val_interval": 2,
                      "volumes_per_batch": 2, "slabs_per_volume": 2, "patch_size": [32, 32, 32]},
    },
    "cpu": {  # the target's rows first; the split of docs/experiments/demo_recipe/split_demo24.json
        "methods": ["t2d_k6", "early_k6", "deeplab_k1", "unet3d", "early_k9", "early_k15", "early_k3", "t2d_k3",
                    "t2d_k9", "t2d_k15"],
        "shape": [128, 128, 64], "num_cases": 32, "num_test": 3, "num_validation": 1,  # for a given data set
        "split_cases": {"test": [19, 5, 22, 11, 12, 3], "validation": [23, 7]},
        "learning_rates": [0.001, 0.002], "seeds": [0, 1, 2],
        "overrides": {"num_slices": 15, "num_iterations": 3200, "iterations_per_epoch": 100, "val_interval": 4,
                      "volumes_per_batch": 1, "slabs_per_volume": 2, "patch_size": [32, 32, 32]},
    },
    "cpu96": {
        "methods": ["deeplab_k1", "t2d", "unet3d", "esm", "t2d_k3", "t2d_k6", "t2d_k9", "early_k3", "early_k6",
                    "early_k9", "early_k15", "t2d_3views"],
        "shape": [96, 96, 48], "num_cases": 12, "num_test": 3, "num_validation": 1,
        "learning_rates": [0.001, 0.002], "seeds": [0, 1, 2],
        "overrides": {"num_slices": 15, "num_iterations": 6000, "iterations_per_epoch": 100, "val_interval": 1,
                      "volumes_per_batch": 1, "slabs_per_volume": 2, "patch_size": [32, 32, 32]},
    },
    "gpu": {
        "methods": ["deeplab_k1", "deeplab_k3", "deeplab_k12", "esm", "esm_concat", "esm_dot", "t2d", "t2d_3views",
                    "unet3d", "vnet", "ahnet"],
        "shape": [256, 256, 96], "num_cases": 40, "num_test": 10, "num_validation": 3,
        "learning_rates": [], "seeds": [0],
        "overrides": {},
    },
}
