"""Data: synthetic hepatic-vessel CT in the MSD Task08 layout, and datalist helpers for real data."""

from __future__ import annotations

from t2d_monai.data.datalist import PAPER_TEST_FRACTION, find_cases, load_datalists, make_split, save_split
from t2d_monai.data.image_writer import AtomicNibabelWriter
from t2d_monai.data.synthetic import DEFAULT_SHAPE, DEFAULT_SPACING, LABELS, case_affine, generate_case, write_dataset

__all__ = [
    "AtomicNibabelWriter",
    "DEFAULT_SHAPE",
    "DEFAULT_SPACING",
    "LABELS",
    "PAPER_TEST_FRACTION",
    "case_affine",
    "find_cases",
    "generate_case",
    "load_datalists",
    "make_split",
    "save_split",
    "write_dataset",
]
