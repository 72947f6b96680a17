"""zoo_check, and the TorchScript overlay, on a packaged hepatic_vessel bundle."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
from monai.bundle import ConfigWorkflow, ckpt_export

from t2d_monai.bundle import ZooCheckError, zoo_check

pytestmark = pytest.mark.slow


def test_zoo_check_passes_on_packaged_bundle(packaged):
    report = zoo_check(str(packaged))
    assert list(report) == ["required_files", "version_in_changelog", "metadata_schema", "verify_net_in_out",
                            "torchscript_export", "onnx_export"]
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


def test_torchscript_overlay_runs_the_exported_model_like_eager(packaged, tmp_path):
    from t2d_monai.data.synthetic import synth

    data = tmp_path / "data"
    synth(out=str(data), num_cases=1, num_test=1, seed=1, shape=[40, 32, 16])
    configs = packaged / "configs"
    ckpt_export(net_id="network_def", filepath=str(packaged / "models" / "model.ts"),
                ckpt_file=str(packaged / "models" / "model.pt"), meta_file=str(configs / "metadata.json"),
                config_file=str(configs / "inference.json"), key_in_ckpt="model", bundle_root=str(packaged))
    (image,) = sorted((data / "imagesTs").glob("*.nii.gz"))

    def infer(name: str, files: list[str], threshold: float) -> np.ndarray:
        wf = ConfigWorkflow(config_file=[str(configs / f) for f in files], meta_file=str(configs / "metadata.json"),
                            logging_file=str(configs / "logging.conf"), workflow_type="infer",
                            bundle_root=str(packaged), dataset_dir=str(data), output_dir=str(tmp_path / "out"),
                            threshold=threshold)
        wf.initialize()
        wf.run()
        wf.finalize()
        return np.asarray(nib.load(tmp_path / "out" / image.name.replace(".nii.gz", f"_{name}.nii.gz")).dataobj)

    # an untrained network's probabilities sit near 0.5: find a threshold that splits them, so that the
    # comparison below is not between two all-ones or all-zeros volumes
    outputs = {}
    for threshold in (0.5, 0.49, 0.51, 0.48, 0.52, 0.45, 0.55):
        outputs["seg"] = infer("seg", ["inference.json"], threshold)
        if 0 < outputs["seg"].sum() < outputs["seg"].size:
            break
    outputs["seg_ts"] = infer("seg_ts", ["inference.json", "inference_torchscript.json"], threshold)
    assert outputs["seg"].shape == (40, 32, 16) and 0 < outputs["seg"].sum() < outputs["seg"].size
    np.testing.assert_array_equal(outputs["seg_ts"], outputs["seg"])
