"""The odd-input table: every case through the bundle's configs, as documented."""

from __future__ import annotations

import csv

import pytest

from t2d_monai.bundle.bundle_run import Result, refused
from t2d_monai.bundle.odd_inputs import CASES, COLUMNS, odd_inputs

pytestmark = pytest.mark.slow


def test_every_odd_input_behaves_as_documented(tmp_path):
    docs = tmp_path / "odd_inputs.md"
    assert odd_inputs(docs=str(docs), work_dir=str(tmp_path / "work")) == str(docs)
    with open(tmp_path / "odd_inputs.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["case"] for r in rows] == [c.name for c in CASES]
    failed = {r["case"]: (r["observed"], r["as documented"]) for r in rows if r["as documented"] != "yes"}
    assert not failed, failed
    text = docs.read_text()
    assert f"{len(CASES)} of {len(CASES)} cases as documented" in text and "| " + " | ".join(COLUMNS) + " |" in text
    assert str(tmp_path / "work") not in text  # work paths are written as <work>
    # each singleton-axis case kept the input's shape for every view; the NaN case lost no voxel
    singletons = [r for r in rows if r["case"].startswith("one voxel thick")]
    assert len(singletons) == 9 and all("written: shape (" in r["observed"] for r in singletons)
    assert "voxels lost to NaN at threshold 0: 0" in next(r["observed"] for r in rows if r["case"] == "NaN patch")


def test_a_case_that_differs_is_reported():
    observed, problem = refused(Result(), ValueError, "is a 2D image")
    assert observed.startswith("finished") and "expected ValueError" in problem
    observed, problem = refused(Result(error=FileNotFoundError("no images here")), ValueError, "is a 2D image")
    assert observed == "refused: FileNotFoundError: no images here" and problem is not None
    assert refused(Result(error=ValueError("x is a 2D image")), ValueError, "is a 2D image")[1] is None


def test_a_used_work_dir_is_refused(tmp_path):
    (tmp_path / "old.txt").write_text("kept")
    with pytest.raises(ValueError, match="is not empty; give a new or empty folder"):
        odd_inputs(work_dir=str(tmp_path))
    assert (tmp_path / "old.txt").read_text() == "kept"
