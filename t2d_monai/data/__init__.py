"""Data: synthetic hepatic-vessel CT in the MSD Task08 layout, and datalist helpers for real data."""

from __future__ import annotations

from t2d_monai.data.synthetic import DEFAULT_SHAPE, DEFAULT_SPACING, LABELS, case_affine, generate_case, write_dataset

__all__ = ["DEFAULT_SHAPE", "DEFAULT_SPACING", "LABELS", "case_affine", "generate_case", "write_dataset"]
