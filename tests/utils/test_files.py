from __future__ import annotations

import csv

from t2d_monai.utils.files import write_csv_atomic


def test_write_csv_atomic_header_rows_and_no_leftovers(tmp_path):
    path = tmp_path / "sub" / "table.csv"
    rows = [{"a": 1, "b": "x", "extra": 9}, {"a": 2, "b": "y"}]
    assert write_csv_atomic(str(path), rows, ["a", "b"]) == str(path)
    with open(path) as f:
        assert list(csv.DictReader(f)) == [{"a": "1", "b": "x"}, {"a": "2", "b": "y"}]
    assert [p.name for p in path.parent.iterdir()] == ["table.csv"]  # no temporary file left behind
