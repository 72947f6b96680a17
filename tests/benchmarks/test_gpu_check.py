"""gpu_check: the whole command in tiny mode on CPU, the refusal without CUDA, the time budget, failures kept in
their row, and the targets' verdicts."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from t2d_monai.benchmarks import gpu_check as gc_module
from t2d_monai.benchmarks.gpu_check import TOLERANCES, gpu_check
from t2d_monai.benchmarks.gpu_latency import OVERLAP_ROW, PATCH_OVERLAPS, STRIDE_ROW, window_strides
from t2d_monai.benchmarks.gpu_recipes import TINY
from t2d_monai.benchmarks.gpu_report import (
    COMPILE,
    LATENCY,
    NUMERICS,
    TRAINING,
    targets,
)
from t2d_monai.benchmarks.gpu_session import Session, make_row

PRECISIONS = ["float32", "bfloat16", "float16"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu")
    rows = gpu_check(out_dir=str(out), device="cpu", tiny=True, repeats=1, compile_backend="eager")
    return out, rows


def _find(rows, section, name, **match):
    found = [r for r in rows if r["section"] == section and r["row"] == name
             and all(r[k] == v for k, v in match.items())]
    assert found, (section, name, match)
    return found


def _usable(row):
    """float32 rows must run; an autocast row may be skipped where the CPU cannot autocast to its dtype."""
    if row["precision"] != "float32" and row["status"].startswith("skipped: ") and "autocast" in row["status"]:
        return False
    assert row["status"] == "ok", row
    return True


def test_tiny_run_has_every_row(tiny_run):
    out, rows = tiny_run
    unet = _find(rows, LATENCY, "3D sliding window", precision="float32")[0]
    assert unet["status"] == "ok" and unet["seconds"] > 0 and unet["time_vs_3d"] == pytest.approx(1.0)
    assert _find(rows, LATENCY, "2D SliceInferer")[0]["status"] == "ok"
    for precision in PRECISIONS:
        for cache, layout in (("on", "off"), ("off", "off"), ("on", "on")):
            _find(rows, LATENCY, "T2D single view", precision=precision, cache_f1=cache, channels_last=layout)
    assert len(_find(rows, LATENCY, "T2D three views")) == 1
    for row in [r for r in rows if r["section"] in (LATENCY, COMPILE)]:
        if _usable(row):
            assert row["seconds"] > 0 and row["repeats"] == 1 and row["peak_memory_mb"] == "n/a"
            assert row["time_vs_3d"] == pytest.approx(row["seconds"] / unet["seconds"])
    for name in ("train T2D", "train 3D U-Net"):
        row = _find(rows, TRAINING, name)[0]
        assert row["status"] == "ok" and row["iterations_per_s"] > 0 and row["repeats"] == TINY.train_iterations
    compiled_t2d = _find(rows, COMPILE, "T2D single view, torch.compile")[0]
    assert compiled_t2d["status"] == "ok" and compiled_t2d["first_call_s"] > 0  # sizes the 3D row's estimate
    compiled_3d = _find(rows, COMPILE, "3D sliding window, torch.compile")[0]
    fastest_3d = min(_find(rows, LATENCY, "3D sliding window"), key=lambda r: r["seconds"])
    assert compiled_3d["status"] == "ok" and compiled_3d["seconds"] > 0
    assert (compiled_3d["precision"], compiled_3d["windows_per_call"]) == \
        (fastest_3d["precision"], fastest_3d["windows_per_call"])
    with open(out / "gpu.csv") as f:
        written = list(csv.DictReader(f))
    key = ("section", "row", "precision", "status")
    assert [tuple(r[k] for k in key) for r in written] == [tuple(r[k] for k in key) for r in rows]


def test_tiny_window_batches_and_stages(tiny_run):
    """At the fastest shipped-batch setting: rows with 4x and 16x the windows per call, then the stage split."""
    _, rows = tiny_run
    single = _find(rows, LATENCY, "T2D single view")
    shipped = [r for r in single if r["windows_per_call"] == 4]
    batched = [r for r in single if r["windows_per_call"] != 4]
    assert len(shipped) == 9 and [r["windows_per_call"] for r in batched] == [16, 64]
    grid = single[: single.index(batched[0])]  # measured before the batch rows: the cache-on grid
    assert [(r["cache_f1"], r["windows_per_call"]) for r in grid] == [("on", 4)] * 6
    fastest = min((r for r in grid if r["status"] == "ok"), key=lambda r: r["seconds"])
    for row in batched:
        assert (row["precision"], row["cache_f1"], row["channels_last"]) == \
            (fastest["precision"], fastest["cache_f1"], fastest["channels_last"])
    unet = _find(rows, LATENCY, "3D sliding window")
    assert [r["windows_per_call"] for r in unet] == [4, 4, 64] and all(r["status"] == "ok" for r in unet)
    fastest_3d = min(unet[:2], key=lambda r: r["seconds"])
    assert unet[2]["precision"] == fastest_3d["precision"]
    stages = _find(rows, LATENCY, "T2D stages")[0]
    assert stages["status"] == "ok" and stages["cache_f1"] == "on" and stages["seconds"] > 0
    parts = [float(p.split(" s (")[0].split()[-1]) for p in stages["note"].split("), ")]
    assert len(parts) == 3 and sum(parts) == pytest.approx(stages["seconds"], rel=0.02, abs=1e-3)
    best = min((r for r in grid + batched if r["status"] == "ok"), key=lambda r: r["seconds"])
    assert stages["windows_per_call"] == best["windows_per_call"]
    assert _find(rows, LATENCY, "T2D three views")[0]["windows_per_call"] == best["windows_per_call"]


def test_tiny_window_stride_rows(tiny_run):
    """Strides 3, 5 and k (6 in tiny mode) at the fastest single-view setting, after every other latency row but the
    3D patch overlaps."""
    _, rows = tiny_run
    strided = _find(rows, LATENCY, STRIDE_ROW)
    assert [r["network"].rsplit("window stride ", 1)[1] for r in strided] == ["3", "5", "6"] == \
        [str(s) for s in window_strides(TINY.overrides_2d["num_slices"])]
    latency_rows = [r for r in rows if r["section"] == LATENCY]
    assert latency_rows[-5:-2] == strided
    grid = [r for r in _find(rows, LATENCY, "T2D single view") if r["status"] == "ok"]
    fastest = min(grid, key=lambda r: r["seconds"])
    for row in strided:
        assert row["status"] == "ok" and row["seconds"] > 0 and "not counted in the targets" in row["note"]
        assert (row["precision"], row["cache_f1"], row["channels_last"], row["windows_per_call"]) == \
            (fastest["precision"], fastest["cache_f1"], fastest["channels_last"], fastest["windows_per_call"])


def test_tiny_patch_overlap_rows(tiny_run):
    """The 3D U-Net at overlaps 0.5 and 0.25 (MONAI's scan interval: half and three quarters of the patch), at its
    fastest setting, last; its patches per call and precision are that row's."""
    _, rows = tiny_run
    overlapped = _find(rows, LATENCY, OVERLAP_ROW)
    assert [r for r in rows if r["section"] == LATENCY][-2:] == overlapped
    fastest = min((r for r in _find(rows, LATENCY, "3D sliding window") if r["status"] == "ok"),
                  key=lambda r: r["seconds"])
    patch = [int(p) for p in fastest["network"].split(", patch ")[1].split(",")[0].split("x")]
    for row, overlap in zip(overlapped, PATCH_OVERLAPS, strict=True):
        assert row["status"] == "ok" and row["seconds"] > 0 and row["time_vs_3d"] > 0
        assert "not counted in the targets" in row["note"] and f"overlap {overlap:g} instead of" in row["note"]
        assert (row["precision"], row["windows_per_call"]) == (fastest["precision"], fastest["windows_per_call"])
        stride = [max(1, int(p * (1 - overlap))) for p in patch]
        assert row["network"].endswith(f"stride {'/'.join(map(str, stride))}")


def test_window_strides_fit_the_window():
    assert window_strides(15) == (3, 5, 15) and window_strides(4) == (3, 4) and window_strides(1) == ()


def test_tiny_recipe_rows(tiny_run):
    """inference.json as configured (on CPU: no amp, channels_last off) and with the previous values."""
    _, rows = tiny_run
    shipped = _find(rows, LATENCY, "T2D inference.json as shipped")[0]
    before = _find(rows, LATENCY, "T2D inference.json before (4 windows, channels_last off)")[0]
    for row in (shipped, before):
        assert row["status"] == "ok" and row["seconds"] > 0 and row["precision"] == "float32"
        assert row["cache_f1"] == "on" and row["channels_last"] == "off" and row["windows_per_call"] == 4


def test_stage_times_restores_the_methods():
    from t2d_monai.benchmarks.gpu_recipes import stage_times

    class Net(torch.nn.Module):
        def encode_group(self, x):
            return x + 1

        def forward(self, x):
            return self.encode_group(x) * 2

    net = Net()
    out = stage_times(net, ("encode_group",), lambda: net(torch.zeros(2)), torch.device("cpu"))
    assert set(out) == {"encode_group", "total"} and 0 < out["encode_group"] <= out["total"]
    assert "encode_group" not in vars(net) and net(torch.zeros(1)).item() == 2.0
    with pytest.raises(ZeroDivisionError):
        stage_times(net, ("encode_group",), lambda: 1 / 0, torch.device("cpu"))
    assert "encode_group" not in vars(net)


def test_tiny_numerical_checks_pass(tiny_run):
    _, rows = tiny_run
    for name in ("SSA fast path", "f1 cache"):
        for precision in PRECISIONS:
            row = _find(rows, NUMERICS, name, precision=precision)[0]
            if _usable(row):
                assert math.isfinite(row["max_abs_diff"]) and row["within_tolerance"] is True
                assert row["max_abs_diff"] <= row["tolerance"]
                assert row["tolerance"] >= TOLERANCES[precision]
    # float32 fast path: far below the tolerance (a float-rounding difference, not a different function)
    assert _find(rows, NUMERICS, "SSA fast path", precision="float32")[0]["max_abs_diff"] < 1e-5


def test_tiny_page_names_targets_and_machine(tiny_run):
    out, _ = tiny_run
    text = (out / "gpu.md").read_text()
    assert "Partial page" not in text
    assert "Machine: device cpu" in text and f"torch {torch.__version__}" in text and "MONAI " in text
    assert "python -m t2d_monai gpu_check --out_dir" in text and "--tiny" in text
    for target in targets([]):
        line = next(li for li in text.splitlines() if li.startswith(f"| {target['target']} |"))
        assert "| met (" in line or "| missed (by" in line, line
    for section in ("## 1. latency", "## 2. numerical checks", "## 3. training", "## 4. torch.compile"):
        assert section in text


def test_refuses_without_cuda(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA device: run with --tiny on CPU, or on a GPU machine"):
        gpu_check(out_dir=str(tmp_path))
    with pytest.raises(RuntimeError, match="no CUDA device"):
        gpu_check(out_dir=str(tmp_path), device="cpu")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        gpu_check(out_dir=str(tmp_path), device="cuda", tiny=True)
    with pytest.raises(ValueError, match="repeats"):
        gpu_check(out_dir=str(tmp_path), device="cpu", tiny=True, repeats=0)
    assert not (tmp_path / "gpu.md").exists()


def test_tiny_budget_skips_and_says_so(tmp_path):
    rows = gpu_check(out_dir=str(tmp_path), device="cpu", tiny=True, time_budget_s=0.001, compile=False)
    assert {r["section"] for r in rows} == {LATENCY, NUMERICS, TRAINING, COMPILE}
    assert all(r["status"].startswith("skipped: ") for r in rows)
    assert all("time budget" in r["status"] for r in rows if r["section"] != COMPILE)
    text = (tmp_path / "gpu.md").read_text()
    assert "skipped: time budget" in text and "skipped: --nocompile" in text
    assert text.count("| not measured |") == 5


def test_partial_page_after_each_section(tmp_path, monkeypatch):
    def stopped(session):
        raise KeyboardInterrupt("device time limit")

    monkeypatch.setattr(gc_module, "_training", stopped)
    with pytest.raises(KeyboardInterrupt):
        gpu_check(out_dir=str(tmp_path), device="cpu", tiny=True, time_budget_s=0.001)
    text = (tmp_path / "gpu.md").read_text()
    assert "**Partial page**: sections not run yet (3 training, 4 torch.compile)" in text
    assert "## 2. numerical checks" in text and "Not run yet." in text
    assert not list(tmp_path.glob(".*partial*"))


def test_a_failing_row_is_recorded_and_the_run_goes_on():
    session = Session(torch.device("cpu"), TINY, repeats=1, budget_s=60, seed=0)

    def oom(row):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore text")

    failed = session.attempt(make_row(LATENCY, "a", "net"), 0.0, oom)
    fine = session.attempt(make_row(LATENCY, "b", "net"), 0.0, lambda r: r.update(seconds=1.0))
    assert failed["status"] == "error: OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    assert fine["status"] == "ok" and session.rows == [failed, fine]
    late = session.attempt(make_row(LATENCY, "c", "net"), 1e6, lambda r: r.update(seconds=1.0))
    assert late["status"].startswith("skipped: time budget") and "seconds" not in late


def _latency_row(name, seconds, precision="float32", cache="on", layout="off"):
    return {"section": LATENCY, "row": name, "precision": precision, "cache_f1": cache, "channels_last": layout,
            "status": "ok", "seconds": seconds}


def test_targets_verdicts_and_distances():
    rows = [_latency_row("3D sliding window", 20.0, cache="", layout=""),
            _latency_row("3D sliding window", 6.0, "float16", cache="", layout=""),
            _latency_row("T2D single view", 2.5),
            _latency_row("T2D single view", 0.8, "bfloat16", layout="on"), _latency_row("T2D three views", 3.5),
            {"section": NUMERICS, "row": "SSA fast path", "precision": "float16", "status": "ok",
             "max_abs_diff": 0.02, "tolerance": 0.01, "within_tolerance": False}]
    found = {t["target"].split(",")[0].split(" (")[0]: t for t in targets(rows)}
    assert found["T2D single view"]["verdict"] == "met (0.2 s under)"  # fastest: 0.8 s
    assert found["T2D three views"]["verdict"] == "missed (by 0.5 s)"
    ratio = next(t for t in targets(rows) if "3D U-Net" in t["target"])
    assert ratio["measured"] == "0.133" and ratio["verdict"] == "missed (by 0.0333)"  # fastest of each: 0.8 / 6
    faster_output = _latency_row(STRIDE_ROW, 0.1, "bfloat16", layout="on")  # another output: not a T2D time
    assert next(t for t in targets(rows + [faster_output]) if "3D U-Net" in t["target"]) == ratio
    cheaper_3d = _latency_row(OVERLAP_ROW, 0.5, "float16", cache="", layout="")  # another output: not a 3D time
    assert next(t for t in targets(rows + [cheaper_3d]) if "3D U-Net" in t["target"]) == ratio
    ssa = next(t for t in targets(rows) if t["target"].startswith("SSA"))
    assert ssa["verdict"].startswith("missed (float16: worst at 2.00x")
    cache = next(t for t in targets(rows) if t["target"].startswith("cached"))
    assert cache["verdict"] == "not measured"


def test_ratio_counts_compiled_rows_only_when_both_methods_were_compiled():
    rows = [_latency_row("3D sliding window", 6.0, cache="", layout=""), _latency_row("T2D single view", 0.9),
            dict(_latency_row("T2D single view, torch.compile", 0.3), section=COMPILE)]
    ratio = next(t for t in targets(rows) if "3D U-Net" in t["target"])
    assert ratio["measured"] == "0.15"  # 0.9 / 6: the compiled T2D row alone does not count
    rows.append(dict(_latency_row("3D sliding window, torch.compile", 4.0, cache="", layout=""), section=COMPILE))
    ratio = next(t for t in targets(rows) if "3D U-Net" in t["target"])
    assert ratio["measured"] == "0.075" and ratio["verdict"] == "met (0.025 under)"  # 0.3 / 4
