from __future__ import annotations

import csv
import os

from t2d_monai.utils.files import write_csv_atomic


def test_write_csv_atomic_header_rows_and_no_leftovers(tmp_path):
    path = tmp_path / "sub" / "table.csv"
    rows = [{"a": 1, "b": "x", "extra": 9}, {"a": 2, "b": "y"}]
    assert write_csv_atomic(str(path), rows, ["a", "b"]) == str(path)
    with open(path) as f:
        assert list(csv.DictReader(f)) == [{"a": "1", "b": "x"}, {"a": "2", "b": "y"}]
    assert [p.name for p in path.parent.iterdir()] == ["table.csv"]  # no temporary file left behind


def test_atomic_path_keeps_the_suffix_and_partial_writes_are_removed(tmp_path):
    import pytest

    from t2d_monai.utils.files import atomic_path, remove_partial_writes

    target = tmp_path / "case_seg.nii.gz"
    with atomic_path(target, suffix=".nii.gz") as tmp:
        assert tmp.endswith(".partial.nii.gz") and os.path.basename(tmp).startswith(".case_seg.nii.gz.")
        with open(tmp, "wb") as f:
            f.write(b"new")
    assert target.read_bytes() == b"new"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["case_seg.nii.gz"]
    left = tmp_path / ".case_seg.nii.gz.abc123.partial.nii.gz"  # what a SIGKILL inside the block leaves
    left.write_bytes(b"half")
    (tmp_path / ".other.nii.gz.abc123.partial").write_bytes(b"not ours")
    assert remove_partial_writes(target) == [str(left)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.nii.gz.abc123.partial", "case_seg.nii.gz"]
