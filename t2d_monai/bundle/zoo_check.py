"""Check a bundle offline as the MONAI model zoo's CI does.

The zoo's CI (``Project-MONAI/model-zoo``, ``ci/verify_bundle.py``) checks, for each bundle: that
``configs/metadata.json`` exists (after downloading the files that ``large_files.yml`` lists), that ``version``
is a key of ``changelog``, that the metadata validates against the metadata schema, ``verify_net_in_out`` on
``network_def`` of ``configs/inference.json``, and a TorchScript export (``ckpt_export``) of ``models/model.pt``.
:func:`zoo_check` runs the same steps without a network connection (the schema is a local file), plus the
files a zoo bundle needs (``LICENSE``, ``docs/README.md``) and an ONNX export; the TorchScript and ONNX
models are compared with the eager network on a random slab. As the zoo's CI, it puts the bundle folder first on
``sys.path`` for the network steps, so that a packaged bundle's carried code (``scripts/``) imports; in a process
that has already imported ``t2d_monai`` that copy is the one checked (``scripts`` warns then).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from t2d_monai.bundle.layout import LARGE_FILES, MODEL_FILE, bundle_on_sys_path, load_json, parse_configs
from t2d_monai.bundle.variants import check_member, config_members

__all__ = ["REQUIRED_FILES", "ZooCheckError", "zoo_check"]

#: files that a model-zoo bundle must have (the zoo CI also requires ``configs/metadata.json``)
REQUIRED_FILES = ("LICENSE", "configs/metadata.json", "configs/inference.json", "docs/README.md")


class ZooCheckError(ValueError):
    """One or more of the model zoo's checks failed; the message lists each failed check and why."""


def _schema_default() -> Path:
    return Path(__file__).resolve().parent / "meta_schema_20240725.json"


def _fake_input(metadata: Mapping[str, Any], n: int = 4, seed: int = 0):
    import torch
    from monai.bundle.scripts import _get_fake_spatial_shape

    image = next(iter(metadata["network_data_format"]["inputs"].values()))
    shape = (1, int(image["num_channels"]), *_get_fake_spatial_shape(image["spatial_shape"], n=n))
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def _compare(name: str, got, want, atol: float, rtol: float) -> str:
    import torch

    got = torch.as_tensor(got)
    if tuple(got.shape) != tuple(want.shape):
        raise AssertionError(f"{name} output shape {tuple(got.shape)} != eager {tuple(want.shape)}")
    diff = float((got - want).abs().max())
    if not torch.allclose(got, want, atol=atol, rtol=rtol):
        raise AssertionError(f"{name} differs from eager by up to {diff:.3g} (atol={atol}, rtol={rtol})")
    return f"equal to eager within atol={atol}, rtol={rtol} (max abs diff {diff:.2e})"


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _hosted(root: Path) -> set[str]:
    """The paths that ``large_files.yml`` lists (read as MONAI's ``download_large_files`` reads it)."""
    from monai.bundle import ConfigParser

    if not (root / LARGE_FILES).is_file():
        return set()
    return {str(f["path"]) for f in ConfigParser.load_config_file(str(root / LARGE_FILES)).get("large_files", [])}


def _members(infer_file: Path, root: Path, overrides: Mapping[str, Any]) -> dict[str | None, Path]:
    """View -> weights file of each network that ``infer_file`` loads (read with the bundle's code importable)."""
    with bundle_on_sys_path(root):
        return config_members(parse_configs([infer_file], root, overrides), root)


def zoo_check(
    bundle: str,
    schema: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    onnx: bool = True,
    atol: float = 1e-4,
    rtol: float = 1e-3,
) -> dict[str, str]:
    """Run, offline, what the model zoo's CI checks on a bundle, and report each step.

    Steps: required files (``LICENSE``, ``configs/metadata.json``, ``configs/inference.json``,
    ``docs/README.md``; the weights of every member, in ``models/`` or listed in ``large_files.yml``, one of them
    ``models/model.pt``, the file the zoo and MONAI Label read); ``version`` is a key of ``changelog``;
    ``verify_metadata`` against the local schema; the MONAI bundle workflow properties of ``inference.json``
    (``infer``; ``ConfigWorkflow.check_properties`` after ``initialize``, with local weights); ``verify_net_in_out``
    of ``network_def`` in
    ``configs/inference.json``, then each member's signature and weights against that config and its output on a
    random slab against the metadata (channels, dtype); ``ckpt_export`` (TorchScript) of each member compared with
    the eager network; with ``onnx``, ``onnx_export`` run with onnxruntime and compared likewise. Without local
    weights (hosted via ``large_files.yml``), the exports use random weights: they still prove the network exports.

    Members (:func:`~t2d_monai.bundle.variants.config_members`): ``view_ckpt_files`` of a three-view
    ``inference.json`` (``axial`` ``models/model_axial.pt``, ``coronal`` ``models/model.pt``, ``sagittal``
    ``models/model_sagittal.pt``), else its ``ckpt_file``.

    Args:
        bundle: the bundle folder (a packaged one, or ``bundles/hepatic_vessel``).
        schema: metadata schema file; default: the copy of ``meta_schema_20240725.json`` shipped with t2d_monai.
        overrides: config ids for the network checks, e.g. ``{"backbone": "resnet18"}`` for a quick run.
        onnx: also export ONNX and compare it (needs ``onnx``, ``onnxscript``, ``onnxruntime``: extra ``onnx``).
        atol: absolute tolerance of the export comparisons.
        rtol: relative tolerance of the export comparisons.

    Returns:
        step -> ``"ok: ..."``, when every step passed.

    Raises:
        ZooCheckError: listing every failed step with its reason (the other steps still run).
    """
    import torch
    from monai.bundle import ckpt_export, onnx_export, verify_metadata, verify_net_in_out

    root = Path(bundle)
    configs = root / "configs"
    meta_file, infer_file = configs / "metadata.json", configs / "inference.json"
    schema_path = Path(schema) if schema else _schema_default()
    overrides = dict(overrides or {})
    report: dict[str, str] = {}
    failed: list[str] = []
    try:
        members, members_error = _members(infer_file, root, overrides), None
    except Exception as e:  # reported by required_files; the network steps fail on their own
        members, members_error = {None: root / MODEL_FILE}, e
    files = {view: _relative(path, root) for view, path in members.items()}

    def label(view: str | None) -> str:
        return files[view] if len(members) == 1 else f"{view} {files[view]}"

    def step(name: str, fn) -> None:
        try:
            report[name] = "ok: " + (fn() or "")
        except Exception as e:  # a failed step is reported, the others still run
            report[name] = f"FAILED: {type(e).__name__}: {e}"
            failed.append(name)

    def required_files() -> str:
        missing = [f for f in REQUIRED_FILES if not (root / f).is_file()]
        if members_error is not None and infer_file.is_file():
            raise ValueError(f"cannot tell which weights configs/inference.json loads: {members_error}")
        hosted = _hosted(root)
        missing += [f"{f} (or {LARGE_FILES} with its url)" for v, f in files.items()
                    if not members[v].is_file() and f not in hosted]
        if missing:
            raise FileNotFoundError(f"missing in {str(root)!r}: {', '.join(missing)}")
        if MODEL_FILE not in files.values():
            raise ValueError(f"configs/inference.json loads {sorted(files.values())}, not {MODEL_FILE}, the file that "
                             "the zoo and MONAI Label read")
        local = [label(v) for v in members if members[v].is_file()]
        return "weights in " + (", ".join(local) if len(local) == len(members) else LARGE_FILES)

    def version_in_changelog() -> str:
        metadata = load_json(meta_file)
        version = metadata.get("version")
        if version is None or version not in metadata.get("changelog", {}):
            raise ValueError(f"version {version!r} is not a key of changelog in configs/metadata.json")
        return f"version {version}"

    def metadata_schema() -> str:
        if not schema_path.is_file():  # verify_metadata would try to download to this path
            raise FileNotFoundError(f"schema {str(schema_path)!r} does not exist (this check runs offline)")
        verify_metadata(meta_file=str(meta_file), filepath=str(schema_path))
        return schema_path.name

    loaded: dict[str | None, tuple] = {}  # each member is built and checked once, for all the steps that use it

    def eager_and_checkpoint(view: str | None, tmp: Path):
        """The member's network with its weights (signature checked), its checkpoint file, and where they came from."""
        if view not in loaded:
            loaded[view] = _eager_and_checkpoint(view, tmp)
        return loaded[view]

    def _eager_and_checkpoint(view: str | None, tmp: Path):
        parser = parse_configs([infer_file], root, overrides)
        if members[view].is_file():
            net = check_member(members[view], parser, view, files[view])
            return net.eval(), members[view], files[view]
        net = parser.get_parsed_content("network_def")
        ckpt = tmp / f"random_{view}.pt"
        torch.save({"model": net.state_dict()}, ckpt)
        return net.eval(), ckpt, f"random weights (no local {files[view]})"

    def for_each_member(check, tmp: Path) -> str:
        results = []
        for view in members:
            net, ckpt, source = eager_and_checkpoint(view, tmp)
            results.append(f"{view + ' ' if len(members) > 1 else ''}{source}: {check(view, net, ckpt)}")
        return "; ".join(results)

    def net_in_out(tmp: Path) -> str:
        verify_net_in_out(
            net_id="network_def", meta_file=str(meta_file), config_file=str(infer_file), bundle_root=str(root),
            **overrides,
        )
        metadata = load_json(meta_file)
        output = next(iter(metadata["network_data_format"]["outputs"].values()))
        x = _fake_input(metadata)

        def forward(view, net, ckpt) -> str:
            with torch.no_grad():
                y = net(x)
            want = (x.shape[0], int(output["num_channels"]), *x.shape[2:])
            if tuple(y.shape) != want or not str(y.dtype).endswith(str(output.get("dtype", "float32"))):
                raise ValueError(f"{label(view)}: output {tuple(y.shape)} {y.dtype}, the metadata says {want} "
                                 f"{output.get('dtype')}")
            return f"signature and weights fit, {tuple(x.shape)} -> {tuple(y.shape)} {y.dtype}"

        return "network_def of configs/inference.json; " + for_each_member(forward, tmp)

    def torchscript(tmp: Path) -> str:
        def export(view, net, ckpt) -> str:
            ts = tmp / f"model_{view}.ts"
            ckpt_export(
                net_id="network_def", filepath=str(ts), ckpt_file=str(ckpt), meta_file=str(meta_file),
                config_file=str(infer_file), key_in_ckpt="model", bundle_root=str(root), **overrides,
            )
            x = _fake_input(load_json(meta_file))
            with torch.no_grad():
                return _compare("TorchScript", torch.jit.load(str(ts))(x), net(x), atol, rtol)

        return for_each_member(export, tmp)

    def onnx_runtime(tmp: Path) -> str:
        import onnxruntime

        def export(view, net, ckpt) -> str:
            x = _fake_input(load_json(meta_file))
            path = tmp / f"model_{view}.onnx"
            onnx_export(
                net_id="network_def", filepath=str(path), ckpt_file=str(ckpt), meta_file=str(meta_file),
                config_file=str(infer_file), key_in_ckpt="model", input_shape=list(x.shape), bundle_root=str(root),
                **overrides,
            )
            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
            with torch.no_grad():
                return _compare("ONNX", got, net(x), atol, rtol)

        return for_each_member(export, tmp)

    def properties(tmp: Path) -> str:
        import nibabel as nib
        import numpy as np
        from monai.bundle import ConfigWorkflow

        if not (root / MODEL_FILE).is_file():  # `initialize` checks the checkpoint (hosted weights: not here)
            return "skipped: no local models/model.pt (initialize checks the checkpoint)"
        image = tmp / "properties_case.nii.gz"  # the datalist is parsed too: one small CT-like volume
        nib.save(nib.Nifti1Image(np.zeros((32, 32, 16), np.int16), np.eye(4)), str(image))
        workflow = ConfigWorkflow(config_file=str(infer_file), meta_file=str(meta_file), workflow_type="infer",
                                  bundle_root=str(root), dataset_dir=str(image), **overrides)
        workflow.initialize()  # as monai.bundle.create_workflow does before the zoo CI checks the properties
        missing = workflow.check_properties()
        if missing:
            raise ValueError(f"configs/inference.json lacks the inference properties {missing}")
        return "inference.json (infer)"

    step("required_files", required_files)
    step("version_in_changelog", version_in_changelog)
    step("metadata_schema", metadata_schema)
    with bundle_on_sys_path(root), tempfile.TemporaryDirectory() as tmp:  # the zoo CI adds the bundle folder too
        step("check_properties", lambda: properties(Path(tmp)))
        step("verify_net_in_out", lambda: net_in_out(Path(tmp)))
        step("torchscript_export", lambda: torchscript(Path(tmp)))
        if onnx:
            step("onnx_export", lambda: onnx_runtime(Path(tmp)))
    if failed:
        raise ZooCheckError(
            f"model-zoo checks failed for {str(root)!r}:\n"
            + "\n".join(f"  {name}: {report[name]}" for name in report)
        )
    return report
