"""The benchmark's training time across an interrupted and resumed run (t2d_monai/benchmarks/runner.py)."""

import json

from ignite.engine import Engine

from t2d_monai.benchmarks import runner
from t2d_monai.benchmarks.runner import TrainingClock


def test_training_clock_counts_the_epochs_before_a_resume(tmp_path, monkeypatch):
    now = [100.0]
    monkeypatch.setattr(runner.time, "perf_counter", lambda: now[0])

    def step(engine, batch):
        now[0] += 2.0  # every iteration takes 2 s of the fake clock

    path = tmp_path / "train_time.json"
    first = TrainingClock(path, resumed=False)
    trainer = Engine(step)
    first.attach(trainer)
    trainer.run(range(3), max_epochs=2)
    assert json.loads(path.read_text()) == {"train_time_s": 12.0, "iteration": 6}  # saved at every epoch
    # the run is interrupted and resumed from its checkpoint: the count goes on from the saved seconds
    resumed = TrainingClock(path, resumed=True)
    trainer = Engine(step)
    resumed.attach(trainer)
    trainer.run(range(3), max_epochs=1)
    assert resumed.elapsed() == 18.0 and json.loads(path.read_text())["train_time_s"] == 18.0
    # a run that starts afresh ignores a count left by an earlier one
    assert TrainingClock(path, resumed=False).elapsed() == 0.0
