"""zoo_check, and the TorchScript overlay, on a packaged hepatic_vessel bundle."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
from monai.bundle import ConfigWorkflow, ckpt_export

from t2d_monai.bundle import ZooCheckError, zoo_check
from t2d_monai.bundle.layout import bundle_on_sys_path

pytestmark = pytest.mark.slow


def test_zoo_check_passes_on_packaged_bundle(packaged):
    report = zoo_check(str(packaged))
    assert list(report) == ["required_files", "version_in_changelog", "metadata_schema", "check_properties",
                            "verify_net_in_out", "torchscript_export", "onnx_export"]
    assert all(v.startswith("ok") for v in report.values()), report
    assert "models/model.pt: equal to eager" in report["torchscript_export"]
    assert "models/model.pt: equal to eager" in report["onnx_export"]


def test_zoo_check_reports_every_failure(packaged, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(packaged, broken)
    (broken / "docs" / "README.md").unlink()
    meta = json.loads((broken / "configs" / "metadata.json").read_text())
    meta["version"] = "0.2.0"
    (broken / "configs" / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ZooCheckError) as info:
        zoo_check(str(broken), onnx=False)
    message = str(info.value)
    assert "required_files: FAILED: FileNotFoundError: missing in" in message and "docs/README.md" in message
    assert "version_in_changelog: FAILED: ValueError: version '0.2.0' is not a key of changelog" in message
    assert "torchscript_export: ok" in message, "the other steps still run"


def _infer(packaged, data, out, name: str, files: list[str], threshold: float, **overrides) -> np.ndarray:
    """Run the packaged bundle's inference with config ``files`` on the one test case of ``data``; the mask."""
    configs = packaged / "configs"
    with bundle_on_sys_path(packaged):  # as the zoo CI and MONAI Label do, so that the configs import scripts/
        wf = ConfigWorkflow(config_file=[str(configs / f) for f in files], meta_file=str(configs / "metadata.json"),
                            logging_file=str(configs / "logging.conf"), workflow_type="infer",
                            bundle_root=str(packaged), dataset_dir=str(data), output_dir=str(out),
                            threshold=threshold, **overrides)
        wf.initialize()
        wf.run()
        wf.finalize()
    (image,) = sorted((data / "imagesTs").glob("*.nii.gz"))
    return np.asarray(nib.load(out / image.name.replace(".nii.gz", f"_{name}.nii.gz")).dataobj)


@pytest.fixture
def case_and_threshold(packaged, tmp_path):
    """One synthetic test case and the eager mask at a threshold that splits an untrained network's
    probabilities (they sit near 0.5), so that comparisons are not between all-ones or all-zeros volumes."""
    from t2d_monai.data.synthetic_layouts import synth

    data = tmp_path / "data"
    synth(out=str(data), num_cases=1, num_test=1, seed=1, shape=[40, 32, 16])
    for threshold in (0.5, 0.49, 0.51, 0.48, 0.52, 0.45, 0.55):
        seg = _infer(packaged, data, tmp_path / "out", "seg", ["inference.json"], threshold)
        if 0 < seg.sum() < seg.size:
            break
    assert seg.shape == (40, 32, 16) and 0 < seg.sum() < seg.size
    return data, threshold, seg


def test_torchscript_overlay_runs_the_exported_model_like_eager(packaged, case_and_threshold, tmp_path):
    data, threshold, seg = case_and_threshold
    configs = packaged / "configs"
    with bundle_on_sys_path(packaged):
        ckpt_export(net_id="network_def", filepath=str(packaged / "models" / "model.ts"),
                    ckpt_file=str(packaged / "models" / "model.pt"), meta_file=str(configs / "metadata.json"),
                    config_file=str(configs / "inference.json"), key_in_ckpt="model", bundle_root=str(packaged))
    seg_ts = _infer(packaged, data, tmp_path / "out", "seg_ts", ["inference.json", "inference_torchscript.json"],
                    threshold)
    np.testing.assert_array_equal(seg_ts, seg)


def test_tensorrt_overlay_without_gpu_runs_eager(packaged, case_and_threshold, tmp_path):
    """Where TensorRT or CUDA is missing, MONAI's trt_compile leaves the network as it is: the overlay parses,
    its input profile resolves, and the result is the eager one under its own name."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: test_tensorrt_overlay_matches_eager_on_gpu compares the engine")
    data, threshold, seg = case_and_threshold
    seg_trt = _infer(packaged, data, tmp_path / "out", "seg_trt", ["inference.json", "inference_trt.json"], threshold)
    np.testing.assert_array_equal(seg_trt, seg)


def test_tensorrt_overlay_matches_eager_on_gpu(packaged, case_and_threshold, tmp_path):
    """On a GPU with TensorRT: the fp16 engine's mask agrees with eager PyTorch's (Dice >= 0.99 between them) and
    its plan is written next to the checkpoint."""
    import torch

    pytest.importorskip("tensorrt")
    pytest.importorskip("polygraphy")
    if not torch.cuda.is_available():
        pytest.skip("TensorRT needs a CUDA GPU")
    data, threshold, _ = case_and_threshold
    gpu = {"device": "$torch.device('cuda:0')"}
    seg = _infer(packaged, data, tmp_path / "eager", "seg", ["inference.json"], threshold, **gpu)
    seg_trt = _infer(packaged, data, tmp_path / "trt", "seg_trt", ["inference.json", "inference_trt.json"], threshold,
                     **gpu)
    agreement = 2 * np.logical_and(seg, seg_trt).sum() / max(seg.sum() + seg_trt.sum(), 1)
    assert agreement >= 0.99, agreement
    assert (packaged / "models" / "model.pt.plan").is_file()
