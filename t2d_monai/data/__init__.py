"""Data: synthetic hepatic-vessel CT in the MSD Task08 layout, datalist helpers for real data, and the
subject-folder layouts (TotalSegmentator, PanTS, AbdomenAtlas)."""

from __future__ import annotations

from t2d_monai.data.datalist import (
    PAPER_TEST_FRACTION,
    find_cases,
    load_datalists,
    make_split,
    save_split,
    split_by_number,
)
from t2d_monai.data.image_writer import AtomicNibabelWriter
from t2d_monai.data.layouts import LAYOUTS, SubjectLayout, find_subject_cases, read_layout_split
from t2d_monai.data.synthetic import (
    DEFAULT_RADIUS_RANGE,
    DEFAULT_SHAPE,
    DEFAULT_SPACING,
    DEFAULT_VESSEL_DENSITY,
    LABELS,
    case_affine,
    generate_case,
    write_dataset,
)

__all__ = [
    "AtomicNibabelWriter",
    "DEFAULT_RADIUS_RANGE",
    "DEFAULT_SHAPE",
    "DEFAULT_SPACING",
    "DEFAULT_VESSEL_DENSITY",
    "LABELS",
    "LAYOUTS",
    "PAPER_TEST_FRACTION",
    "SubjectLayout",
    "case_affine",
    "find_cases",
    "find_subject_cases",
    "generate_case",
    "load_datalists",
    "make_split",
    "read_layout_split",
    "save_split",
    "split_by_number",
    "write_dataset",
]
