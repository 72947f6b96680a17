"""Shared checks of the network tests."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch


def _onnx_matches_eager(net: torch.nn.Module, x: torch.Tensor, folder: Path, atol: float = 1e-4) -> None:
    """Export ``net`` (eval mode) to ONNX, run it with onnxruntime on ``x`` and compare with eager."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    net.eval()
    path = folder / "net.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), str(path), dynamo=True, verbose=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(out, net(x).numpy(), atol=atol, rtol=atol)


@pytest.fixture(scope="session")
def onnx_matches_eager():
    """The function ``(net, x, folder)`` that asserts the ONNX export of ``net`` equals eager on ``x``."""
    return _onnx_matches_eager
