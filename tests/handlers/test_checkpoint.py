from __future__ import annotations

import os

import pytest
import torch
from ignite.engine import Engine, Events

from t2d_monai.handlers import (
    AtomicCheckpointSaver,
    CheckpointReadError,
    ModelSignature,
    ResumeCheckpointLoader,
    read_checkpoint,
    save_atomically,
)

DATA = [torch.full((2, 3), float(i)) for i in range(4)]


def _make(seed: int = 0):
    torch.manual_seed(seed)
    net = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

    def step(engine, batch):
        opt.zero_grad()
        loss = net(batch).pow(2).mean()
        loss.backward()
        opt.step()
        return loss.item()

    return net, opt, Engine(step)


def test_interrupted_training_resumes_to_the_same_weights(tmp_path):
    reference, _, engine = _make()
    engine.run(DATA, max_epochs=4)

    net, opt, engine = _make()
    saver = AtomicCheckpointSaver(str(tmp_path), {"model": net, "optimizer": opt})  # engine added on attach
    saver.attach(engine)
    engine.add_event_handler(Events.EPOCH_COMPLETED(once=2), lambda e: e.terminate())  # "killed" after epoch 2
    engine.run(DATA, max_epochs=4)
    assert engine.state.epoch == 2

    net2, opt2, engine2 = _make(seed=123)  # fresh process: other initial weights
    ResumeCheckpointLoader(
        str(tmp_path / "checkpoint.pt"), {"model": net2, "optimizer": opt2}
    ).attach(engine2)
    engine2.run(DATA, max_epochs=4)
    assert engine2.state.epoch == 4 and engine2.state.iteration == 16
    torch.testing.assert_close(net2.weight, reference.weight)
    torch.testing.assert_close(net2.bias, reference.bias)


def test_resume_without_checkpoint_starts_fresh(tmp_path, caplog):
    net, opt, engine = _make()
    ResumeCheckpointLoader(str(tmp_path / "missing.pt"), {"model": net, "trainer": engine}).attach(engine)
    engine.run(DATA, max_epochs=1)
    assert engine.state.iteration == 4


def _bad_checkpoints(tmp_path):
    """name -> (file, what the error must say) for every kind of unusable checkpoint."""
    good = tmp_path / "good.pt"
    torch.save({"signature": {"view": "coronal"}, "model": torch.nn.Linear(3, 1).state_dict()}, good)
    data = good.read_bytes()
    files = {
        "truncated": (data[: len(data) // 2], "empty, truncated or corrupted"),
        "empty": (b"", r"\(0 bytes\): it is empty, truncated or corrupted"),
        "text": (b"hello", "not a PyTorch checkpoint"),
        "gzip": (b"\x1f\x8b\x08\x00" + bytes(60), "not a PyTorch checkpoint"),
    }
    out = {}
    for name, (content, match) in files.items():
        (tmp_path / f"{name}.pt").write_bytes(content)
        out[name] = (tmp_path / f"{name}.pt", match)
    torch.save(torch.nn.Linear(3, 1), tmp_path / "module.pt")
    out["module"] = (tmp_path / "module.pt", "holds Python objects, not only tensors")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    out["other"] = (tmp_path / "other.pt", r"not a checkpoint of this project: it lacks \['model'\] \(it has \['state_dict'\]\)")
    return good, out


def test_read_checkpoint_names_file_problem_and_fix(tmp_path):
    good, bad = _bad_checkpoints(tmp_path)
    assert set(read_checkpoint(str(good))) == {"signature", "model"}
    for path, match in bad.values():
        with pytest.raises(CheckpointReadError, match=match) as info:
            read_checkpoint(str(path))
        assert str(path) in str(info.value) and "retrain it: python -m monai.bundle run training" in str(info.value)
    with pytest.raises(CheckpointReadError, match=r"lacks \['optimizer'\]"):
        read_checkpoint(str(good), keys=("signature", "model", "optimizer"))
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        read_checkpoint(str(tmp_path / "nope.pt"))


def test_resume_from_unreadable_checkpoint_says_how_to_start_over(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"PK\x03\x04 interrupted copy")
    net, _, engine = _make()
    ResumeCheckpointLoader(str(path), {"model": net}).attach(engine)
    with pytest.raises(CheckpointReadError, match="cannot resume: .*move .*checkpoint.pt' away"):
        engine.run(DATA, max_epochs=1)


def test_disabled_resume_ignores_existing_checkpoint(tmp_path):
    net, opt, engine = _make()
    engine.run(DATA, max_epochs=2)
    save_atomically({"model": net.state_dict(), "trainer": engine.state_dict()}, str(tmp_path / "c.pt"))
    net2, _, engine2 = _make()
    ResumeCheckpointLoader(str(tmp_path / "c.pt"), {"model": net2, "trainer": engine2}, enabled=False).attach(engine2)
    engine2.run(DATA, max_epochs=1)
    assert engine2.state.epoch == 1


def test_best_model_saved_only_on_improvement(tmp_path):
    net, opt, trainer = _make()
    evaluator = Engine(lambda e, b: None)
    scores = iter([0.2, 0.5, 0.4])

    @evaluator.on(Events.EPOCH_COMPLETED)
    def _score(engine):
        engine.state.metrics["dice"] = next(scores)

    saver = AtomicCheckpointSaver(
        str(tmp_path), {"model": net}, latest_filename=None, key_metric_filename="model.pt",
        metric_engine=evaluator, key_metric_name="dice",
    )
    saver.attach(trainer)
    saved = []
    for _ in range(3):
        net.weight.data += 1
        evaluator.run([0])
        saved.append(torch.load(tmp_path / "model.pt")["model"]["weight"].clone())
    assert saver.best_metric == 0.5
    torch.testing.assert_close(saved[2], saved[1])  # 0.4 < 0.5: not overwritten
    assert not torch.equal(saved[0], saved[1])


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = str(tmp_path / "model.pt")
    save_atomically({"a": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_atomically({"a": Unpicklable()}, path)
    assert torch.load(path) == {"a": 1}
    assert os.listdir(tmp_path) == ["model.pt"]  # no temporary file left behind
    assert oct(os.stat(path).st_mode & 0o044) != "0o0"  # readable by others, unlike tempfile's 0o600


def test_signature_mismatch_names_both_settings():
    saved = ModelSignature(view="coronal", num_slices=15).state_dict()
    ModelSignature(view="coronal", num_slices=15).load_state_dict(saved)
    with pytest.raises(ValueError, match=r"view: the checkpoint was trained with 'coronal', the config asks for 'axial'"):
        ModelSignature(view="axial", num_slices=15).load_state_dict(saved)
    with pytest.raises(ValueError, match="num_slices: the checkpoint was trained with 15, the config asks for 12"):
        ModelSignature(view="coronal", num_slices=12).load_state_dict(saved)
    with pytest.raises(ValueError, match="does not record"):
        ModelSignature(backbone="resnet50").load_state_dict(saved)
    unet = ModelSignature(network="UNet", spatial_dims=3).state_dict()  # another network family
    with pytest.raises(ValueError, match=r"another network family \(network='UNet', spatial_dims=3\).*patch3d.json"):
        ModelSignature(view="coronal", num_slices=15).load_state_dict(unet)


def test_signature_field_added_later_reads_as_its_old_value():
    """A checkpoint saved before ``encoder_depth`` was recorded was trained with the full encoder (depth 5)."""
    old = ModelSignature(view="coronal", num_slices=6).state_dict()
    ModelSignature(view="coronal", num_slices=6, encoder_depth=5).load_state_dict(old)
    with pytest.raises(ValueError, match="encoder_depth: the checkpoint was trained with 5, the config asks for 4"):
        ModelSignature(view="coronal", num_slices=6, encoder_depth=4).load_state_dict(old)
    assert "encoder_depth" not in old  # the checkpoint's record is not modified


def test_ill_arg(tmp_path):
    with pytest.raises(ValueError, match="save_dict"):
        AtomicCheckpointSaver(str(tmp_path), {})
    with pytest.raises(ValueError, match="save_interval"):
        AtomicCheckpointSaver(str(tmp_path), {"m": torch.nn.Linear(1, 1)}, save_interval=0)
    with pytest.raises(ValueError, match="metric_engine"):
        AtomicCheckpointSaver(str(tmp_path), {"m": torch.nn.Linear(1, 1)}, key_metric_filename="model.pt")
    with pytest.raises(TypeError, match="field 'x'"):
        ModelSignature(x=object())
    with pytest.raises(TypeError, match="field 'x'"):
        ModelSignature(x={1: "a"})


def test_signature_nested_norm():
    """A norm given as MONAI's (name, kwargs) pair is a valid field; a tuple and a list of it match."""
    saved = ModelSignature(norm=("group", {"num_groups": 16})).state_dict()
    assert saved == {"norm": ["group", {"num_groups": 16}]}
    ModelSignature(norm=["group", {"num_groups": 16}]).load_state_dict(saved)
    with pytest.raises(ValueError, match="norm: the checkpoint was trained with"):
        ModelSignature(norm=["group", {"num_groups": 8}]).load_state_dict(saved)
    with pytest.raises(ValueError, match="norm: the checkpoint was trained with"):
        ModelSignature(norm="instance").load_state_dict(saved)
