"""TrainStatsWriter: a validation's metrics in MONAI Label's train-stats fields, written atomically."""

from __future__ import annotations

import json

import torch
from ignite.engine import Engine, Events

from t2d_monai.handlers import TrainStatsWriter, read_train_stats


def _evaluator(values: list[dict]) -> Engine:
    """An engine whose run ``i`` ends with ``values[i]`` as its metrics, best metric kept like MONAI's evaluators."""
    engine = Engine(lambda e, b: None)
    engine.state.key_metric_name = "val_mean_dice"
    engine.state.best_metric, engine.state.best_metric_epoch = -1.0, -1

    @engine.on(Events.EPOCH_COMPLETED)
    def _metrics(e):
        e.state.metrics = dict(values[e.state.epoch - 1])
        dice = e.state.metrics["val_mean_dice"]
        if dice > e.state.best_metric:
            e.state.best_metric, e.state.best_metric_epoch = dice, e.state.epoch

    return engine


def test_each_validation_rewrites_the_stats(tmp_path):
    path = tmp_path / "models" / "train_stats.json"
    runs = [{"val_mean_dice": 0.5, "val_hd95": float("nan")}, {"val_mean_dice": 0.25, "val_hd95": torch.tensor(3.5)}]
    engine = _evaluator(runs)
    TrainStatsWriter(path).attach(engine)
    seen = []
    engine.add_event_handler(Events.COMPLETED, lambda e: seen.append(json.loads(path.read_text())))
    engine.run([0], max_epochs=1)
    engine.run([0], max_epochs=2)  # as ValidationHandler runs the evaluator: one more epoch per validation
    first, second = seen
    assert first["metrics"] == {"val_mean_dice": 0.5, "val_hd95": None}, "NaN (no prediction) is written as null"
    assert first["best_metric"] == 0.5 and first["best_metric_epoch"] == 1 and first["epoch"] == 1
    assert second["metrics"] == {"val_mean_dice": 0.25, "val_hd95": 3.5}
    assert second["best_metric"] == 0.5 and second["best_metric_epoch"] == 1 and second["epoch"] == 2
    assert second["key_metric_name"] == "val_mean_dice" and isinstance(second["start_ts"], int)
    assert read_train_stats(path) == second
    assert [p.name for p in path.parent.iterdir()] == ["train_stats.json"], "no temporary file left"


def test_missing_or_unreadable_stats_are_empty(tmp_path):
    assert read_train_stats(tmp_path / "none.json") == {}
    (tmp_path / "bad.json").write_text("{not json")
    assert read_train_stats(tmp_path / "bad.json") == {}
    (tmp_path / "list.json").write_text("[1, 2]")
    assert read_train_stats(tmp_path / "list.json") == {}
