"""Helpers that the bundle configs of this project call (paths, file names, early checks), and the tools that
package, check and run the bundles."""

from __future__ import annotations

from .checks import (
    check_cases_per_rank,
    check_checkpoint,
    check_checkpoint_exists,
    check_dataset_dir,
    check_window_stride,
    list_images,
)
from .multi_target import run_merge_targets
from .paths import VIEWS, bundle_root_from_argv, checkpoint_filename
from .packaging import package_bundle
from .zoo_check import ZooCheckError, zoo_check

__all__ = [
    "VIEWS",
    "ZooCheckError",
    "bundle_root_from_argv",
    "check_cases_per_rank",
    "check_checkpoint",
    "check_checkpoint_exists",
    "check_dataset_dir",
    "check_window_stride",
    "checkpoint_filename",
    "list_images",
    "package_bundle",
    "run_merge_targets",
    "zoo_check",
]
