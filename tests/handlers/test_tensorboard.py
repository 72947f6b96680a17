from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from t2d_monai.handlers import TensorBoardCaseHandler, most_labelled_slice


def test_most_labelled_slice():
    label = np.zeros((1, 4, 5, 6))
    label[0, 1, :, 2] = 1
    label[0, :, :, 4] = 1
    assert most_labelled_slice(label, -1) == 4
    assert most_labelled_slice(label, 1) == 1
    assert most_labelled_slice(np.zeros((1, 4, 5, 6)), -1) == 3, "empty label: the middle slice"


def _images(log_dir) -> dict[str, list[tuple[int, np.ndarray]]]:
    acc = EventAccumulator(str(log_dir), size_guidance={"images": 0})
    acc.Reload()
    return {tag: [(e.step, np.array(Image.open(io.BytesIO(e.encoded_image_string)))[..., 0])
                  for e in acc.Images(tag)] for tag in acc.Tags()["images"]}


def test_writes_the_same_slice_of_every_key_from_the_output(tmp_path):
    """Image, label and prediction come from one post-processed output dict and show the slice with the most label;
    the batch (not inverted by postprocessing) is not read."""
    image = torch.arange(4 * 5 * 6, dtype=torch.float32).reshape(1, 4, 5, 6)
    label = torch.zeros(1, 4, 5, 6)
    label[0, 1:3, 2:4, 3] = 1
    pred = torch.zeros(1, 4, 5, 6)
    pred[0, 0, 0, 3] = 1
    output = [{"image": image, "label": label, "pred": pred}]
    engine = Engine(lambda e, b: output)
    TensorBoardCaseHandler(log_dir=str(tmp_path), global_iter_transform=lambda epoch: epoch * 10).attach(engine)
    engine.run([{"image": torch.zeros(1, 1, 9, 9, 9)}] * 2, max_epochs=2)  # a batch of another space
    written = _images(tmp_path)
    assert sorted(written) == ["val/image", "val/label", "val/pred"]
    assert [step for step, _ in written["val/label"]] == [10, 20]
    img = written["val/image"][-1][1].astype(int)
    expected = image[0, :, :, 3].numpy()
    expected = (expected - expected.min()) / (expected.max() - expected.min()) * 255
    assert img.shape == (4, 5) and np.abs(img - expected).max() <= 1
    np.testing.assert_array_equal(written["val/label"][-1][1] > 127, label[0, :, :, 3].numpy() > 0)
    np.testing.assert_array_equal(written["val/pred"][-1][1] > 127, pred[0, :, :, 3].numpy() > 0)


def test_keys_of_different_spaces_are_refused(tmp_path):
    output = [{"image": torch.zeros(1, 4, 5, 6), "label": torch.zeros(1, 4, 5, 6), "pred": torch.zeros(1, 6, 5, 4)}]
    engine = Engine(lambda e, b: output)
    TensorBoardCaseHandler(log_dir=str(tmp_path)).attach(engine)
    with pytest.raises(ValueError, match=r"pred of shape \(1, 6, 5, 4\) and label .* not in the same space"):
        engine.run([0], max_epochs=1)


def test_missing_key_is_named(tmp_path):
    engine = Engine(lambda e, b: [{"image": torch.zeros(1, 4, 5, 6), "label": torch.zeros(1, 4, 5, 6)}])
    TensorBoardCaseHandler(log_dir=str(tmp_path)).attach(engine)
    with pytest.raises(KeyError, match=r"no \['pred'\]"):
        engine.run([0], max_epochs=1)
