"""Package a bundle the way the MONAI model zoo (and MONAI Label) expect it, and check it offline as the zoo's CI does.

The zoo's CI (``Project-MONAI/model-zoo``, ``ci/verify_bundle.py``) checks, for each bundle: that
``configs/metadata.json`` exists (after downloading the files that ``large_files.yml`` lists), that ``version``
is a key of ``changelog``, that the metadata validates against the metadata schema, ``verify_net_in_out`` on
``network_def`` of ``configs/inference.json``, and a TorchScript export (``ckpt_export``) of ``models/model.pt``.
:func:`zoo_check` runs the same steps without a network connection (the schema is a local file), plus the
files a zoo bundle needs (``LICENSE``, ``docs/README.md``) and an ONNX export; the TorchScript and ONNX
models are compared with the eager network on a random slab.

Tools read some configs alone: MONAI Label reads only ``configs/inference.json`` and ``configs/train.json``,
and the zoo CI only ``configs/inference.json``. A model trained with an overlay (``cpu_small.json``, or other
``--num_slices``) therefore needs those values written into these configs: :func:`package_bundle` does that
(``overlays``/``overrides``), checks that the checkpoint's signature matches the result, and makes the metadata's
channel counts agree with ``num_slices``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "BASE_CONFIGS",
    "REQUIRED_FILES",
    "ZooCheckError",
    "bake_config",
    "package_bundle",
    "zoo_check",
]

#: files that a model-zoo bundle must have (the zoo CI also requires ``configs/metadata.json``)
REQUIRED_FILES = ("LICENSE", "configs/metadata.json", "configs/inference.json", "docs/README.md")
#: configs that tools read on their own (MONAI Label: both; zoo CI: inference.json): overlays are baked into them
BASE_CONFIGS = ("inference.json", "train.json")
#: what a packaged bundle never contains: resumable training state, run outputs, caches, MONAI Label's scratch config
_EXCLUDED = ("checkpoint*.pt", "eval", "__pycache__", "*.pyc", "monailabel_train.json", ".*")
_LARGE_FILES = "large_files.yml"
_MODEL = "models/model.pt"


class ZooCheckError(ValueError):
    """One or more of the model zoo's checks failed; the message lists each failed check and why."""


def _schema_default() -> Path:
    return Path(__file__).resolve().parent / "meta_schema_20240725.json"


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _get_path(config: Any, keys: list[str]) -> tuple[bool, Any]:
    node = config
    for key in keys:
        if isinstance(node, Mapping) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.lstrip("-").isdigit() and -len(node) <= int(key) < len(node):
            node = node[int(key)]
        else:
            return False, None
    return True, node


def _set_path(config: Any, keys: list[str], value: Any) -> None:
    found, parent = _get_path(config, keys[:-1])
    if not found:
        raise KeyError("#".join(keys))
    parent[int(keys[-1]) if isinstance(parent, list) else keys[-1]] = value


def bake_config(config: Mapping[str, Any], values: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Write ``values`` (config ids, ``#`` for nesting, as in ``monai.bundle``) into a copy of ``config``.

    Only ids that ``config`` already defines are written, so one overlay can serve ``inference.json`` and
    ``train.json`` alike (``spatial_size`` lands in ``train.json`` only).

    Args:
        config: a bundle config as loaded from JSON.
        values: id -> value, e.g. ``{"backbone": "resnet18", "train#dataloader#num_workers": 0}``.

    Returns:
        the new config and the ids that were written.
    """
    baked, written = copy.deepcopy(dict(config)), []
    for key, value in values.items():
        keys = str(key).split("#")
        if _get_path(baked, keys)[0]:
            _set_path(baked, keys, copy.deepcopy(value))
            written.append(str(key))
    return baked, written


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_json(path: Path) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)


def _write_json(path: Path, content: Mapping[str, Any]) -> None:
    with open(path, "w") as f:
        json.dump(content, f, indent=4)
        f.write("\n")


def _parse(config_files: Sequence[Path], bundle_root: Path, overrides: Mapping[str, Any] | None = None):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(p) for p in config_files])
    parser.update({"bundle_root": str(bundle_root), **(overrides or {})})
    return parser


def _check_checkpoint(checkpoint: Path, inference_config: Path, bundle_root: Path) -> None:
    """Refuse a checkpoint whose signature or weights do not fit the (packaged) inference config."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    parser = _parse([inference_config], bundle_root)
    if "signature" in state and "signature" in parser:
        parser.get_parsed_content("signature").load_state_dict(state["signature"])
    weights = state.get("model", state)
    try:
        parser.get_parsed_content("network_def").load_state_dict(weights, strict=True)
    except RuntimeError as e:
        raise ValueError(
            f"the weights in {str(checkpoint)!r} do not fit network_def of {str(inference_config)!r}: {e}\n"
            "Package with the overlays/overrides the model was trained with (e.g. --overlays cpu_small.json)."
        ) from e


def _sync_metadata_channels(metadata: dict[str, Any], num_slices: Any) -> None:
    """The network maps a slab of ``num_slices`` slices to ``num_slices`` logits: keep the metadata in step."""
    if not isinstance(num_slices, int):
        return
    fmt = metadata.get("network_data_format", {})
    for section, name in (("inputs", "image"), ("outputs", "pred")):
        entry = fmt.get(section, {}).get(name)
        if isinstance(entry, dict) and "num_channels" in entry:
            entry["num_channels"] = num_slices


def _ignore(directory: str, names: list[str]) -> set[str]:
    import fnmatch

    return {n for n in names if any(fnmatch.fnmatch(n, pattern) for pattern in _EXCLUDED)}


def package_bundle(
    bundle: str,
    out: str,
    model: str | None = None,
    overlays: str | Sequence[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    weights_url: str | None = None,
    force: bool = False,
) -> str:
    """Copy a bundle into the layout of the model zoo: ``configs/``, ``docs/``, ``LICENSE``, ``models/`` or
    ``large_files.yml``; as a folder, or as a zip archive when ``out`` ends with ``.zip``.

    The packaged ``configs/inference.json`` and ``configs/train.json`` hold the values of ``overlays`` and
    ``overrides`` (only ids they define), because MONAI Label and the zoo's CI read these files alone. The
    checkpoint must match them: its signature (view, num_slices, backbone, ...) is checked and its weights are
    loaded strictly into ``network_def`` before anything is written. The metadata's channel counts follow
    ``num_slices``. Training state (``models/checkpoint*.pt``) and outputs (``eval/``) are left out.

    Args:
        bundle: the bundle folder (with ``configs/``), e.g. ``bundles/hepatic_vessel``.
        out: the folder to create, or ``<name>.zip`` for an archive whose top folder is ``<name>``.
        model: checkpoint to ship as ``models/model.pt``; default: the bundle's own ``models/model.pt`` if any.
            Without one, the package has no weights (MONAI Label will then only offer training).
        overlays: config files to bake in, in order: names in the bundle's ``configs/`` or paths; a list or a
            comma-separated string, e.g. ``cpu_small.json`` for the model that the CPU demo trains.
        overrides: id -> value baked in after the overlays, e.g. ``{"num_slices": 6}``.
        weights_url: where the weights are hosted. Then ``models/model.pt`` is not copied; ``large_files.yml``
            lists the URL with the md5 of ``model`` (required then), as model-zoo bundles do.
        force: replace ``out`` if it exists.

    Returns:
        the path of the packaged folder or zip file.

    Raises:
        FileNotFoundError: a required bundle file, an overlay or the checkpoint is missing.
        FileExistsError: ``out`` exists and ``force`` is False.
        ValueError: an overlay/override id that no base config defines; a checkpoint that does not fit.

    Example::

        python -m t2d_monai package_bundle bundles/hepatic_vessel /tmp/hepatic_vessel \\
            --model demo/models/model.pt --overlays cpu_small.json
    """
    src = Path(bundle)
    for name in ("configs/metadata.json", "configs/inference.json", "LICENSE"):
        if not (src / name).is_file():
            raise FileNotFoundError(f"bundle {str(src)!r} has no {name}; is it a bundle folder (with configs/)?")
    as_zip = str(out).endswith(".zip")
    dest = Path(out)
    if dest.exists() and not force:
        raise FileExistsError(f"out {str(dest)!r} exists; pass --force to replace it, or choose another path.")
    checkpoint = Path(model) if model else (src / _MODEL if (src / _MODEL).is_file() else None)
    if checkpoint is not None and not checkpoint.is_file():
        raise FileNotFoundError(f"model {str(checkpoint)!r} does not exist; give the path of a trained model.pt.")
    if weights_url and checkpoint is None:
        raise ValueError("weights_url needs the checkpoint (model=...) to record its md5 in large_files.yml.")

    values: dict[str, Any] = {}
    for overlay in _as_list(overlays):
        path = Path(overlay) if os.path.isfile(overlay) else src / "configs" / overlay
        if not path.is_file():
            raise FileNotFoundError(f"overlay {overlay!r} is neither a file nor in {str(src / 'configs')!r}.")
        values.update(_load_json(path))
    values.update(dict(overrides or {}))

    with tempfile.TemporaryDirectory() as tmp:
        name = dest.name[: -len(".zip")] if as_zip else dest.name
        stage = Path(tmp) / name
        stage.mkdir()
        for item in ("configs", "docs", "LICENSE", _LARGE_FILES):
            if (src / item).is_dir():
                shutil.copytree(src / item, stage / item, ignore=_ignore)
            elif (src / item).is_file():
                shutil.copy2(src / item, stage / item)
        used: set[str] = set()
        for config_name in BASE_CONFIGS:
            path = stage / "configs" / config_name
            if path.is_file():
                baked, written = bake_config(_load_json(path), values)
                _write_json(path, baked)
                used.update(written)
        unused = sorted(set(map(str, values)) - used)
        if unused:
            raise ValueError(
                f"overlay/override ids {unused} are defined in none of {list(BASE_CONFIGS)}; check their spelling."
            )
        metadata = _load_json(stage / "configs" / "metadata.json")
        _sync_metadata_channels(metadata, _load_json(stage / "configs" / "inference.json").get("num_slices"))
        _write_json(stage / "configs" / "metadata.json", metadata)
        if checkpoint is not None:
            _check_checkpoint(checkpoint, stage / "configs" / "inference.json", stage)
            if weights_url:
                (stage / _LARGE_FILES).write_text(
                    "large_files:\n"
                    f'  - path: "{_MODEL}"\n'
                    f'    url: "{weights_url}"\n'
                    f'    hash_val: "{_md5(checkpoint)}"\n'
                    '    hash_type: "md5"\n'
                )
            else:
                (stage / "models").mkdir()
                shutil.copy2(checkpoint, stage / _MODEL)
        if dest.exists():
            shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
        dest.parent.mkdir(parents=True, exist_ok=True)
        if as_zip:
            with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(stage.rglob("*")):
                    archive.write(path, path.relative_to(stage.parent).as_posix())
        else:
            shutil.copytree(stage, dest)
    return str(dest)


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
    ``docs/README.md``; weights in ``models/model.pt`` or listed in ``large_files.yml``); ``version`` is a key
    of ``changelog``; ``verify_metadata`` against the local schema; ``verify_net_in_out`` of ``network_def`` in
    ``configs/inference.json``; ``ckpt_export`` (TorchScript) of ``models/model.pt`` compared with the eager
    network; with ``onnx``, ``onnx_export`` run with onnxruntime and compared likewise. Without local weights
    (hosted via ``large_files.yml``), the exports use random weights: they still prove the network exports.

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

    def step(name: str, fn) -> None:
        try:
            report[name] = "ok: " + (fn() or "")
        except Exception as e:  # a failed step is reported, the others still run
            report[name] = f"FAILED: {type(e).__name__}: {e}"
            failed.append(name)

    def required_files() -> str:
        missing = [f for f in REQUIRED_FILES if not (root / f).is_file()]
        if not (root / _MODEL).is_file() and not (root / _LARGE_FILES).is_file():
            missing.append(f"{_MODEL} (or {_LARGE_FILES} with its url)")
        if missing:
            raise FileNotFoundError(f"missing in {str(root)!r}: {', '.join(missing)}")
        return "weights in " + (_MODEL if (root / _MODEL).is_file() else _LARGE_FILES)

    def version_in_changelog() -> str:
        metadata = _load_json(meta_file)
        version = metadata.get("version")
        if version is None or version not in metadata.get("changelog", {}):
            raise ValueError(f"version {version!r} is not a key of changelog in configs/metadata.json")
        return f"version {version}"

    def metadata_schema() -> str:
        if not schema_path.is_file():  # verify_metadata would try to download to this path
            raise FileNotFoundError(f"schema {str(schema_path)!r} does not exist (this check runs offline)")
        verify_metadata(meta_file=str(meta_file), filepath=str(schema_path))
        return schema_path.name

    def net_in_out() -> str:
        verify_net_in_out(
            net_id="network_def", meta_file=str(meta_file), config_file=str(infer_file), bundle_root=str(root),
            **overrides,
        )
        return "network_def of configs/inference.json"

    def eager_and_checkpoint(tmp: Path):
        parser = _parse([infer_file], root, overrides)
        net = parser.get_parsed_content("network_def")
        if (root / _MODEL).is_file():
            ckpt, source = root / _MODEL, _MODEL
            state = torch.load(ckpt, map_location="cpu", weights_only=True)
            net.load_state_dict(state.get("model", state))
        else:
            ckpt, source = tmp / "random.pt", "random weights (no local models/model.pt)"
            torch.save({"model": net.state_dict()}, ckpt)
        return net.eval(), ckpt, source

    def torchscript(tmp: Path) -> str:
        net, ckpt, source = eager_and_checkpoint(tmp)
        ts = tmp / "model.ts"
        ckpt_export(
            net_id="network_def", filepath=str(ts), ckpt_file=str(ckpt), meta_file=str(meta_file),
            config_file=str(infer_file), key_in_ckpt="model", bundle_root=str(root), **overrides,
        )
        x = _fake_input(_load_json(meta_file))
        with torch.no_grad():
            result = _compare("TorchScript", torch.jit.load(str(ts))(x), net(x), atol, rtol)
        return f"{source}: {result}"

    def onnx_runtime(tmp: Path) -> str:
        import onnxruntime

        net, ckpt, source = eager_and_checkpoint(tmp)
        x = _fake_input(_load_json(meta_file))
        path = tmp / "model.onnx"
        onnx_export(
            net_id="network_def", filepath=str(path), ckpt_file=str(ckpt), meta_file=str(meta_file),
            config_file=str(infer_file), key_in_ckpt="model", input_shape=list(x.shape), bundle_root=str(root),
            **overrides,
        )
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        with torch.no_grad():
            result = _compare("ONNX", got, net(x), atol, rtol)
        return f"{source}: {result}"

    step("required_files", required_files)
    step("version_in_changelog", version_in_changelog)
    step("metadata_schema", metadata_schema)
    step("verify_net_in_out", net_in_out)
    with tempfile.TemporaryDirectory() as tmp:
        step("torchscript_export", lambda: torchscript(Path(tmp)))
        if onnx:
            step("onnx_export", lambda: onnx_runtime(Path(tmp)))
    if failed:
        raise ZooCheckError(
            f"model-zoo checks failed for {str(root)!r}:\n"
            + "\n".join(f"  {name}: {report[name]}" for name in report)
        )
    return report
