"""A validation's metrics as MONAI Label's training statistics (the ``train_stats`` of ``GET /info/``)."""

from __future__ import annotations

import datetime
import json
import math
import os
import time
from typing import TYPE_CHECKING, Any

import torch

from t2d_monai.utils.files import write_atomic

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = ["TrainStatsWriter", "read_train_stats"]


def _number(value: Any) -> Any:
    """A metric value as JSON: a float (None for NaN/inf, e.g. an HD95 with an empty prediction), or a list."""
    if isinstance(value, torch.Tensor):
        value = value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, (list, tuple)):
        return [_number(v) for v in value]
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    return value


class TrainStatsWriter:
    """
    After every validation run of the evaluator it is attached to, write ``path`` (JSON, atomically) with the
    fields MONAI Label's own trainers report (``monailabel.tasks.train.handler.prepare_stats``): ``epoch`` (the
    trainer's, which MONAI's ``ValidationHandler`` passes to the evaluator), ``best_metric``,
    ``best_metric_epoch``, ``key_metric_name``, ``metrics`` (every metric of the run: the key metric and the
    additional ones, NaN written as null), ``start_ts`` and ``total_time``. MONAI Label's ``BundleTrainTask``
    reports no statistics; a train task reads this file in its ``stats()`` (:func:`read_train_stats`).

    Args:
        path: the JSON file (its folder is created).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self.start_ts = time.time()

    def attach(self, engine: Engine) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        state = engine.state
        stats = {
            "epoch": int(state.epoch),
            "best_metric": _number(getattr(state, "best_metric", None)),
            "best_metric_epoch": int(getattr(state, "best_metric_epoch", -1)),
            "key_metric_name": getattr(state, "key_metric_name", None),
            "metrics": {str(k): _number(v) for k, v in state.metrics.items()},
            "start_ts": int(self.start_ts),
            "total_time": str(datetime.timedelta(seconds=int(time.time() - self.start_ts))),
        }
        write_atomic(self.path, json.dumps(stats, indent=2) + "\n")


def read_train_stats(path: str | os.PathLike) -> dict[str, Any]:
    """What :class:`TrainStatsWriter` wrote to ``path``; ``{}`` when there is no such file yet or it cannot be read
    (MONAI Label's ``stats()`` contract: a dict, empty before the first validation)."""
    try:
        with open(path) as f:
            stats = json.load(f)
    except (OSError, ValueError):
        return {}
    return stats if isinstance(stats, dict) else {}
