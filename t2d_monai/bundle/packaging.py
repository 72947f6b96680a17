"""Package a bundle the way the MONAI model zoo (and MONAI Label) expect it.

Tools read some configs alone: MONAI Label reads only ``configs/inference.json`` and ``configs/train.json``,
and the zoo CI only ``configs/inference.json``. A model trained with an overlay (``cpu_small.json``, or other
``--num_slices``) therefore needs those values written into these configs: :func:`package_bundle` does that
(``overlays``/``overrides``), checks that the checkpoint's signature matches the result, and makes the metadata's
channel counts agree with ``num_slices``. :func:`~t2d_monai.bundle.zoo_check.zoo_check` then checks the result
as the zoo's CI does.

``t2d_monai`` is on no package index, so by default the package carries the code its configs use
(``scripts/t2d_monai``, imported through ``scripts/__init__.py``) and its metadata lists only published packages:
see :mod:`t2d_monai.bundle.carry` for the layout and how each tool finds the code.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai.networks.layers.factories import split_args

from t2d_monai.bundle.carry import carry_code as _carry_code
from t2d_monai.bundle.layout import LARGE_FILES, load_json, parse_configs, write_json
from t2d_monai.bundle.variants import (
    THREE_VIEWS,
    THREE_VIEWS_OVERLAY,
    VARIANTS,
    Member,
    check_member,
    merge_overlay,
    name_variant,
    resolve_members,
    variant_values,
    weights_urls,
)
from t2d_monai.utils.args import comma_list

__all__ = ["BASE_CONFIGS", "bake_config", "eval_metrics_from", "package_bundle"]

#: configs that tools read on their own (MONAI Label: both; zoo CI: inference.json): overlays are baked into them
BASE_CONFIGS = ("inference.json", "train.json")
#: what a packaged bundle never contains: resumable training state, run outputs, caches, MONAI Label's scratch config
_EXCLUDED = ("checkpoint*.pt", "eval", "__pycache__", "*.pyc", "monailabel_train.json", ".*")


def bake_config(config: Mapping[str, Any], values: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Write ``values`` (config ids, ``#`` for nesting, as in ``monai.bundle``) into a copy of ``config``.

    Only ids that ``config`` already defines are written, so one overlay can serve ``inference.json`` and
    ``train.json`` alike (``spatial_size`` lands in ``train.json`` only). Ids are resolved by MONAI's
    :class:`~monai.bundle.ConfigParser` (``#`` or ``::`` separators, list indices as digits).

    Args:
        config: a bundle config as loaded from JSON.
        values: id -> value, e.g. ``{"backbone": "resnet18", "train#dataloader#num_workers": 0}``.

    Returns:
        the new config and the ids that were written.
    """
    from monai.bundle import ConfigParser

    parser = ConfigParser(copy.deepcopy(dict(config)))
    written = []
    for key, value in values.items():
        if str(key) in parser:
            parser[str(key)] = copy.deepcopy(value)
            written.append(str(key))
    return parser.get(), written


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_FIX = "\nPackage with the overlays/overrides the model was trained with (e.g. --overlays cpu_small.json)."


def _check_checkpoints(members: Sequence[Member], inference_config: Path, bundle_root: Path) -> None:
    """Refuse a checkpoint whose signature (view included: each member's own) or weights do not fit the packaged
    inference config; the error names the slot (view and packaged file)."""
    parser = parse_configs([inference_config], bundle_root)
    for member in members:
        if member.source is not None:
            check_member(member.source, parser, member.view, member.file, hint=_FIX)


#: instance norm needs more than one value per channel: the stride-16 features of a 16x16 slice are 1x1
_MIN_SIDE = {"instance": 32}


def slab_channel_def(num_slices: int, section: str, label_name: str = "vessel") -> dict[str, str]:
    """The metadata's ``channel_def`` of a slab network with ``num_slices`` slices: ``section`` ``"inputs"``
    (one CT slice per channel) or ``"outputs"`` (one logit map of ``label_name``, the metadata's
    ``segmentation_labels`` name, per slice)."""
    what = {
        "inputs": "CT slice {i} of the slab (0 = first along the view's slicing axis), windowed to [0, 1]",
        "outputs": "{name} logit of slice {i} of the slab (sigmoid > 0.5: {name})",
    }[section]
    return {str(i): what.format(i=i, name=label_name) for i in range(int(num_slices))}


def _sync_metadata(metadata: dict[str, Any], inference: dict[str, Any]) -> None:
    """Keep the metadata's network format in step with the baked ``inference.json``: the network maps a slab of
    ``num_slices`` slices to ``num_slices`` logits (channel counts and :func:`slab_channel_def`), and with
    instance norm a slice side must be a multiple of 32 (the stride-16 features need at least 2x2 values), not
    only of 16."""
    num_slices, norm = inference.get("num_slices"), inference.get("norm")
    norm_name = split_args(norm)[0] if isinstance(norm, (str, list, tuple)) and norm else ""
    side = _MIN_SIDE.get(str(norm_name).lower(), 16)
    labels = metadata.get("segmentation_labels")
    label_name = next(iter(labels)) if isinstance(labels, dict) and len(labels) == 1 else "vessel"
    fmt = metadata.get("network_data_format", {})
    for section, name in (("inputs", "image"), ("outputs", "pred")):
        entry = fmt.get(section, {}).get(name)
        if not isinstance(entry, dict):
            continue
        if isinstance(num_slices, int) and "num_channels" in entry:
            entry["num_channels"] = num_slices
            entry["channel_def"] = slab_channel_def(num_slices, section, label_name)
        if "spatial_shape" in entry:
            entry["spatial_shape"] = [f"{side}*n"] * len(entry["spatial_shape"])


def eval_metrics_from(eval_dir: str) -> dict[str, float]:
    """The mean metrics that ``evaluating`` wrote to ``<eval_dir>/metrics.csv`` (MONAI's ``MetricsSaver``
    summary, ``name,value`` lines), named without the ``val_`` prefix: ``{"mean_dice": 0.61, "hd95": ...}``.

    Raises:
        FileNotFoundError: no ``metrics.csv`` (run ``evaluating`` first; the message gives the command).
        ValueError: a line that is not ``name,number``.
    """
    path = Path(eval_dir) / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"{str(path)!r} does not exist: run the evaluation with the checkpoint first, e.g. python -m monai.bundle "
            "run evaluating --config_file \"['configs/train.json','configs/evaluate.json']\" --dataset_dir DATA."
        )
    metrics: dict[str, float] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        name, _, value = line.partition(",")
        try:
            metrics[name.strip().removeprefix("val_")] = round(float(value), 4)
        except ValueError:
            raise ValueError(f"{str(path)!r}: line {line!r} is not 'name,number'.") from None
    return metrics


def _large_files(urls: Mapping[str, str], members: Sequence[Member]) -> str:
    """``large_files.yml`` in the zoo's format: one entry (path, url, md5) per packaged weights file."""
    lines = ["large_files:"]
    for member in members:
        lines += [f'  - path: "{member.file}"', f'    url: "{urls[member.file]}"',
                  f'    hash_val: "{_md5(member.source)}"', '    hash_type: "md5"']
    return "\n".join(lines) + "\n"


def _view_values(view: str | None, values: Mapping[str, Any], source_view: Any) -> dict[str, Any]:
    """The ids that package ``view`` (see :func:`~t2d_monai.bundle.variants.variant_values`), after checking that
    the overlays/overrides do not ask for another view."""
    asked = values.get("view", source_view)
    if view is None and asked != source_view:
        raise ValueError(f"the overlays/overrides set view={asked!r}: package that view with --view {asked} (it also "
                         "ships the model as models/model.pt and names the variant in the metadata).")
    if view == THREE_VIEWS and "view" in values:
        raise ValueError("a three-view package runs every view: leave view out of the overlays/overrides.")
    if view not in (None, THREE_VIEWS) and "view" in values and values["view"] != view:
        raise ValueError(f"--view {view} but the overlays/overrides set view={values['view']!r}; give one of them.")
    return variant_values(view)


def _ignore(directory: str, names: list[str]) -> set[str]:
    import fnmatch

    return {n for n in names if any(fnmatch.fnmatch(n, pattern) for pattern in _EXCLUDED)}


def package_bundle(
    bundle: str,
    out: str,
    model: str | Sequence[str] | Mapping[str, str] | None = None,
    overlays: str | Sequence[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    weights_url: str | Mapping[str, str] | None = None,
    force: bool = False,
    carry_code: bool = True,
    eval_dir: str | None = None,
    view: str | None = None,
) -> str:
    """Copy a bundle into the layout of the model zoo: ``configs/``, ``docs/``, ``LICENSE``, ``models/`` or
    ``large_files.yml``; as a folder, or as a zip archive when ``out`` ends with ``.zip``.

    The packaged ``configs/inference.json`` and ``configs/train.json`` hold the values of ``overlays`` and
    ``overrides`` (only ids they define), because MONAI Label and the zoo's CI read these files alone. The
    checkpoint must match them: its signature (view, num_slices, backbone, ...) is checked and its weights are
    loaded strictly into ``network_def`` before anything is written. The metadata's channel counts follow
    ``num_slices`` and its slice sides the normalisation (multiples of 32 with instance norm). Training state
    (``models/checkpoint*.pt``) and outputs (``eval/``) are left out.

    ``view`` packages one variant as a bundle of its own (:mod:`t2d_monai.bundle.variants`, ``docs/model_zoo.md``):
    ``axial``, ``coronal`` or ``sagittal``: ``inference.json`` and ``train.json`` run that view, its model is
    ``models/model.pt``; ``three_views``: ``inference_three_views.json`` is baked into ``inference.json`` (the
    three models fused by majority vote), the models are ``models/model.pt`` (coronal), ``models/model_axial.pt``
    and ``models/model_sagittal.pt``, as in the source bundle. The metadata's ``name`` and ``description`` name
    the variant (``"..., three views"``), and so does a line at the top of ``docs/README.md``. Each checkpoint's
    signature must be of its slot's view.

    With ``carry_code`` (the default) the package runs without ``t2d_monai`` installed: the modules its configs
    need are copied to ``scripts/t2d_monai``, the configs import them through ``scripts`` (the model zoo's folder
    for a bundle's own code), and ``required_packages_version`` lists the published packages they need, with the
    versions installed here, instead of ``t2d_monai`` (:func:`~t2d_monai.bundle.carry.carry_code`).

    Args:
        bundle: the bundle folder (with ``configs/``), e.g. ``bundles/hepatic_vessel``.
        out: the folder to create, or ``<name>.zip`` for an archive whose top folder is ``<name>``. The zoo and
            MONAI Label know a bundle by this name (its id), e.g. ``hepatic_vessel_three_views_ct_t2d_segmentation``
            (:func:`~t2d_monai.bundle.variants.zoo_bundle_id`).
        model: the checkpoint(s) to ship. Without ``view``: one path, shipped as ``models/model.pt``; default: the
            bundle's own ``models/model.pt`` if any. With ``view``: one per view, as
            ``axial=a.pt,coronal=c.pt,sagittal=s.pt`` (any subset; a mapping from Python), as a list in the order
            axial, coronal, sagittal (``a.pt,c.pt,s.pt``), or, for one view, a plain path; views not given take the
            bundle's own file of that view (``models/model.pt``, ``models/model_axial.pt``, ...). Without any, the
            package has no weights (MONAI Label will then only offer training).
        overlays: config files to bake in, in order: names in the bundle's ``configs/`` or paths; a list or a
            comma-separated string, e.g. ``cpu_small.json`` for the model that the CPU demo trains.
        overrides: id -> value baked in after the overlays, e.g. ``{"num_slices": 6}``.
        weights_url: where the weights are hosted. Then no ``models/`` file is copied; ``large_files.yml`` lists
            each weights file with its URL and md5, as model-zoo bundles do. One URL for a one-file package; for
            three views a folder URL ending in ``/`` (the file names are appended) or ``axial=URL,coronal=URL,...``.
        force: replace ``out`` if it exists.
        carry_code: carry the code in ``scripts/`` (default); False keeps ``"$import t2d_monai"`` and the
            ``t2d_monai`` requirement, for environments where t2d-monai is installed.
        eval_dir: the output folder of ``evaluating`` (``evaluate.json``) run with this checkpoint; its summary
            ``metrics.csv`` fills the metadata's ``eval_metrics`` (:func:`eval_metrics_from`). Default: none.
        view: the variant: ``axial``, ``coronal``, ``sagittal`` or ``three_views``; default: the bundle as it is
            (its ``inference.json``: the coronal view, ``models/model.pt``).

    Returns:
        the path of the packaged folder or zip file.

    Raises:
        FileNotFoundError: a required bundle file, an overlay or a checkpoint is missing.
        FileExistsError: ``out`` exists and ``force`` is False.
        CheckpointMismatchError: a checkpoint trained for other settings, e.g. a sagittal model in the axial slot
            (the message names the slot and both values).
        ValueError: an overlay/override id that no base config defines; weights that do not fit; an unknown view.

    Example::

        python -m t2d_monai package_bundle bundles/hepatic_vessel /tmp/hepatic_vessel \\
            --model demo/models/model.pt --overlays cpu_small.json
        python -m t2d_monai package_bundle bundles/hepatic_vessel /tmp/hepatic_vessel_three_views_ct_t2d_segmentation \\
            --view three_views --model axial=a.pt,coronal=c.pt,sagittal=s.pt --overlays cpu_small.json
    """
    from monai.utils import look_up_option

    view = look_up_option(view, VARIANTS) if view is not None else None
    src = Path(bundle)
    for name in ("configs/metadata.json", "configs/inference.json", "LICENSE"):
        if not (src / name).is_file():
            raise FileNotFoundError(f"bundle {str(src)!r} has no {name}; is it a bundle folder (with configs/)?")
    as_zip = str(out).endswith(".zip")
    dest = Path(out)
    if dest.exists() and not force:
        raise FileExistsError(f"out {str(dest)!r} exists; pass --force to replace it, or choose another path.")
    members = resolve_members(src, view, model)
    weighted = [m for m in members if m.source is not None]
    if weights_url and not weighted:
        raise ValueError("weights_url needs the checkpoint (model=...) to record its md5 in large_files.yml.")
    urls = weights_urls(weights_url, view, members) if weights_url else {}

    values: dict[str, Any] = {}
    for overlay in comma_list(overlays):
        path = Path(overlay) if os.path.isfile(overlay) else src / "configs" / overlay
        if not path.is_file():
            raise FileNotFoundError(f"overlay {overlay!r} is neither a file nor in {str(src / 'configs')!r}.")
        values.update(load_json(path))
    values.update(dict(overrides or {}))
    values.update(_view_values(view, values, load_json(src / "configs" / "inference.json").get("view")))

    with tempfile.TemporaryDirectory() as tmp:
        name = dest.name[: -len(".zip")] if as_zip else dest.name
        stage = Path(tmp) / name
        stage.mkdir()
        for item in ("configs", "docs", "LICENSE", LARGE_FILES):
            if (src / item).is_dir():
                shutil.copytree(src / item, stage / item, ignore=_ignore)
            elif (src / item).is_file():
                shutil.copy2(src / item, stage / item)
        infer_path = stage / "configs" / "inference.json"
        if view not in (None, THREE_VIEWS):  # a one-view package has no other view's model to fuse
            (stage / "configs" / THREE_VIEWS_OVERLAY).unlink(missing_ok=True)
        if view == THREE_VIEWS:
            if not (stage / "configs" / THREE_VIEWS_OVERLAY).is_file():
                raise FileNotFoundError(f"bundle {str(src)!r} has no configs/{THREE_VIEWS_OVERLAY} to package three views.")
            write_json(infer_path, merge_overlay(load_json(infer_path), load_json(stage / "configs" / THREE_VIEWS_OVERLAY)))
        used: set[str] = set()
        for config_name in BASE_CONFIGS:
            path = stage / "configs" / config_name
            if path.is_file():
                baked, written = bake_config(load_json(path), values)
                write_json(path, baked)
                used.update(written)
        unused = sorted(set(map(str, values)) - used)
        if unused:
            raise ValueError(
                f"overlay/override ids {unused} are defined in none of {list(BASE_CONFIGS)}; check their spelling."
            )
        metadata = load_json(stage / "configs" / "metadata.json")
        _sync_metadata(metadata, load_json(infer_path))
        if view is not None:
            note = name_variant(metadata, view, load_json(infer_path), members)
            readme = stage / "docs" / "README.md"
            if readme.is_file():
                title, _, rest = readme.read_text().partition("\n")
                readme.write_text(f"{title}\n\n**{metadata['name']}.** {note}\n{rest}")
        if eval_dir is not None:
            if not weighted:
                raise ValueError("eval_dir gives the metrics of a model: package it with model=... as well.")
            metadata["eval_metrics"] = eval_metrics_from(eval_dir)
        write_json(stage / "configs" / "metadata.json", metadata)
        # checked with this process's t2d_monai, before the configs import scripts/
        _check_checkpoints(members, infer_path, stage)
        if carry_code:
            metadata["required_packages_version"] = _carry_code(stage)
            write_json(stage / "configs" / "metadata.json", metadata)
        if urls:
            (stage / LARGE_FILES).write_text(_large_files(urls, weighted))
        for member in weighted if not urls else ():
            (stage / member.file).parent.mkdir(exist_ok=True)
            shutil.copy2(member.source, stage / member.file)
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
