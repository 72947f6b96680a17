"""Where a bundle lives and how its files are named, for use inside bundle configs."""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from monai.utils import look_up_option

from t2d_monai.transforms.view_permute import VIEWS

__all__ = ["DEFAULT_BUNDLE", "VIEWS", "bundle_dir", "bundle_root_from_argv", "checkpoint_filename"]

#: the paper trains and reports its single-view model on the coronal view; that model is ``model.pt``,
#: the file that MONAI Label and the model zoo read.
DEFAULT_VIEW = "coronal"
#: the bundle that the demo and the benchmarks run
DEFAULT_BUNDLE = "hepatic_vessel"


def bundle_dir(name: str = DEFAULT_BUNDLE, path: str | os.PathLike | None = None) -> Path:
    """The folder of bundle ``name``: ``path`` when given, else ``bundles/<name>`` of this source checkout
    (the bundles are not part of the installed package: install t2d-monai from a checkout with
    ``pip install -e .``, or pass the folder).

    Raises:
        FileNotFoundError: when the folder has no ``configs/train.json``, naming where it looked and the fix.
    """
    root = Path(path) if path else Path(__file__).resolve().parents[2] / "bundles" / name
    if not (root / "configs" / "train.json").is_file():
        raise FileNotFoundError(
            f"bundle {name!r} not found at {root} (no configs/train.json). Use a checkout of t2d-monai installed "
            f"with `pip install -e .`, or pass the bundle folder (e.g. --bundle_dir path/to/bundles/{name})."
        )
    return root


def checkpoint_filename(view: str, prefix: str = "model") -> str:
    """File name of a view's checkpoint: ``model.pt`` for the default coronal view, ``model_<view>.pt`` else.

    Raises:
        ValueError: for a view that is not one of ``axial``, ``coronal``, ``sagittal``.
    """
    view = look_up_option(view, VIEWS)
    return f"{prefix}.pt" if view == DEFAULT_VIEW else f"{prefix}_{view}.pt"


def _config_files_in(argv: Sequence[str]) -> list[str]:
    for i, arg in enumerate(argv):
        value = None
        if arg == "--config_file" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--config_file="):
            value = arg.split("=", 1)[1]
        if value is None:
            continue
        if value.strip().startswith("["):
            try:
                parsed = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                return []
            return [str(v) for v in parsed]
        return [v for v in value.split(",") if v]
    return []


def bundle_root_from_argv(default: str = ".", argv: Sequence[str] | None = None) -> str:
    """The bundle folder of the first ``--config_file`` on the command line, or ``default``.

    ``python -m monai.bundle run training --config_file bundles/hepatic_vessel/configs/train.json`` run from
    the repository root would, with the model-zoo default ``"bundle_root": "."``, write ``models/`` and
    ``eval/`` into the current folder. Bundle configs of this project use
    ``"$t2d_monai.bundle.bundle_root_from_argv()"`` instead, so outputs land in the bundle's own folder
    (the parent of ``configs/``) wherever the command is run from. Tools that drive a bundle from Python
    (MONAI Label, ``ConfigWorkflow`` in tests) override ``bundle_root`` explicitly, and then this is not used.
    """
    files = _config_files_in(sys.argv if argv is None else argv)
    if not files:
        return default
    config_dir = os.path.dirname(os.path.abspath(files[0]))
    return os.path.dirname(config_dir) if os.path.basename(config_dir) == "configs" else config_dir
