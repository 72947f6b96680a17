"""State shared by ``gpu_check``'s sections: the run's device, sizes, budget and rows, networks built once, and the
helpers that build a row, an inference call and the T2D network and inferer from the bundle configs."""

from __future__ import annotations

import copy
import gc
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from t2d_monai.benchmarks import gpu_recipes as rec
from t2d_monai.benchmarks.gpu_report import LATENCY

__all__ = ["PRECISIONS", "Session", "batch_overrides", "fastest_row", "fastest_single_view", "infer_call",
           "latency_seconds", "make_row", "set_time_vs_3d", "t2d_inferer", "t2d_network", "unet3d_inferer",
           "unet3d_network"]

#: autocast dtype per precision name (None: plain float32)
PRECISIONS: dict[str, torch.dtype | None] = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


def make_row(section: str, name: str, network: str, precision: str = "float32", cache: str = "", layout: str = "",
             **values: Any) -> dict[str, Any]:
    """A new row of the page (status ``pending``) with the columns of ``gpu_report.COLUMNS`` that ``values`` set."""
    return {"section": section, "row": name, "network": network, "precision": precision, "cache_f1": cache,
            "channels_last": layout, "status": "pending", **values}


class Session:
    """State of one run: device, sizes, budget, the rows so far, networks built once and shared by rows."""

    def __init__(self, dev: torch.device, profile: rec.Profile, repeats: int, budget_s: float, seed: int) -> None:
        self.dev, self.profile, self.repeats, self.seed = dev, profile, int(repeats), int(seed)
        self.end = time.perf_counter() + float(budget_s)
        self.rows: list[dict[str, Any]] = []
        self._built: dict[Any, Any] = {}

    def left(self, reserve: float = 0.0) -> float:
        return self.end - time.perf_counter() - reserve

    def built(self, key: Any, make: Callable[[], Any]) -> Any:
        if key not in self._built:
            torch.manual_seed(self.seed)
            self._built[key] = make()
        return self._built[key]

    def parsed(self, files: tuple[str, ...], key: str, three_d: bool = False, overlay_wins: bool = False,
               **overrides: Any) -> Any:
        """``key`` instantiated from the bundle configs ``files`` with the profile's and these ``overrides``."""
        base = self.profile.overrides_3d if three_d else self.profile.overrides_2d
        parser = rec.bundle_parser(files, {**base, **overrides}, self.dev, overlay_wins)
        return parser.get_parsed_content(key)

    def attempt(self, row: dict[str, Any], estimate_s: float, work: Callable[[dict], None],
                reserve: float = 0.0) -> dict:
        """Run ``work(row)`` unless the time left (less ``reserve``) is below ``estimate_s``; a failure is recorded
        in the row's status and the run goes on."""
        left = self.left(reserve)
        start = time.perf_counter()
        if left <= 0 or left < estimate_s:
            row["status"] = f"skipped: time budget ({max(left, 0):.1f} s left, needs about {estimate_s:.1f} s)"
        else:
            try:
                work(row)
                row["status"] = "ok"
            except Exception as e:  # noqa: BLE001 (one row's failure, out of memory included, must not end the run)
                row["status"] = f"error: {type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}"
            gc.collect()
            if self.dev.type == "cuda":
                torch.cuda.empty_cache()
        self.rows.append(row)
        what = row.get("seconds") or row.get("iterations_per_s") or row.get("max_abs_diff")
        print(f"[gpu_check] {row['section']} | {row['row']} | {row['precision']} cache={row['cache_f1'] or '-'} "
              f"channels_last={row['channels_last'] or '-'}: {row['status']} value={what} "
              f"({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)
        return row

    def timed(self, row: dict, fn: Callable[[], Any], reserve: float = 0.0, warmups: int = 1) -> None:
        t = rec.measure(fn, self.dev, self.repeats, lambda: self.left(reserve), warmups)
        row.update(seconds=t.seconds, repeats=t.runs, peak_memory_mb="n/a" if t.peak_mb is None else t.peak_mb)
        if t.runs == 0:
            row["note"] = "warm-up time only: no repeat fitted in the time budget"
        if warmups > 1:
            row["first_call_s"] = t.warmup_s[0]
            row["note"] = f"first call (compilation) {t.warmup_s[0]:.1f} s"


def infer_call(s: Session, inferer: Any, net: Any, volume: torch.Tensor, precision: str) -> Callable[[], Any]:
    def run() -> Any:
        with torch.no_grad(), rec.autocast(s.dev, PRECISIONS[precision]):
            return inferer(volume, net)
    return run


def t2d_network(s: Session, layout: str) -> torch.nn.Module:
    net = s.built("t2d", lambda: s.parsed(rec.T2D_INFERENCE, "network_def").to(s.dev).eval())
    if layout == "on":
        net = s.built("t2d channels_last", lambda: copy.deepcopy(net).to(memory_format=torch.channels_last))
    return net


def unet3d_network(s: Session) -> torch.nn.Module:
    """The 3D U-Net of ``unet3d.json``, built once per run."""
    return s.built("unet3d", lambda: s.parsed(rec.UNET3D, "network_def", three_d=True).to(s.dev).eval())


def unet3d_inferer(s: Session, batch: int | None, **overrides: Any) -> Any:
    """The 3D recipe's sliding-window inferer with ``batch`` patches per network call (None: the config's own) and
    any other config ``overrides`` (e.g. ``sw_overlap``)."""
    return s.parsed(rec.UNET3D, "validate#inferer", three_d=True, **batch_overrides(batch), **overrides)


def latency_seconds(s: Session, name: str, **match: Any) -> list[float]:
    return [r["seconds"] for r in s.rows if r["row"] == name and r["status"] == "ok" and r["section"] == LATENCY
            and all(r[k] == v for k, v in match.items())]


def fastest_row(s: Session, name: str, keep: Callable[[dict], bool] = lambda r: True) -> dict[str, Any] | None:
    """The fastest measured latency row named ``name`` that ``keep`` accepts (None: none so far)."""
    rows = (r for r in s.rows if r["row"] == name and r["status"] == "ok" and r["section"] == LATENCY and keep(r))
    return min(rows, key=lambda r: r["seconds"], default=None)


def fastest_single_view(s: Session) -> dict[str, Any]:
    """The fastest single-view setting so far (precision, cache, layout and windows per call)."""
    best = fastest_row(s, "T2D single view")
    return {"precision": "float32", "cache": "on", "layout": "off", "batch": None} if best is None else \
        {"precision": best["precision"], "cache": best["cache_f1"], "layout": best["channels_last"],
         "batch": best["windows_per_call"]}


def batch_overrides(batch: int | None) -> dict[str, int]:
    """The config override for ``batch`` windows (2D) or patches (3D) per network call (None: the config's own)."""
    return {} if batch is None else {"infer_batch_size": int(batch)}


def t2d_inferer(s: Session, files: tuple[str, ...], key: str, cache: str, batch: int | None, **overrides: Any) -> Any:
    """``key`` of ``files`` with the f1 cache on or off, ``batch`` windows per network call (None: shipped) and any
    other config ``overrides`` (e.g. ``stride``)."""
    return s.parsed(files, key, **{"slab_inferer#cache_f1": cache == "on"}, **batch_overrides(batch), **overrides)


def set_time_vs_3d(s: Session) -> None:
    """Every timed row's ``time_vs_3d``: its seconds over the float32 3D sliding window's (when that was measured)."""
    fp32 = latency_seconds(s, "3D sliding window", precision="float32")
    for r in s.rows:
        if r.get("seconds") and fp32:
            r["time_vs_3d"] = r["seconds"] / fp32[0]
