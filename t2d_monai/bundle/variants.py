"""Packaged view variants: one view's model, or the three-view fusion, as a bundle of its own.

A bundle trains one model per view (:func:`~t2d_monai.bundle.paths.checkpoint_filename`: ``models/model.pt`` is
the coronal view, ``models/model_axial.pt`` and ``models/model_sagittal.pt`` the others) and fuses the three with
the overlay ``configs/inference_three_views.json``. MONAI Label and the model zoo read one config alone
(``configs/inference.json``) and one weights file (``models/model.pt``), so :func:`~t2d_monai.bundle.package_bundle`
writes each variant with its own ``inference.json``, and this module says how (``docs/model_zoo.md``):

========================  ===============================================  ========================================
variant (``--view``)      what ``configs/inference.json`` runs             ``models/``
========================  ===============================================  ========================================
none (default)            the source's ``inference.json`` (coronal view)   ``model.pt``
``axial``, ``coronal``,   that view (``view`` baked; ``ckpt_file`` and     ``model.pt``: the model of that view
``sagittal``              ``train.json``'s file names are ``model.pt``)
``three_views``           ``inference_three_views.json`` baked in:         ``model.pt`` (coronal, as in the source
                          the three models fused (``view_fusion``)         bundle), ``model_axial.pt``,
                                                                           ``model_sagittal.pt``
========================  ===============================================  ========================================

A packaged bundle's members (view -> weights file) are read back from its ``inference.json``
(:func:`config_members`): ``view_ckpt_files`` when it fuses views, else ``ckpt_file``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monai.utils import look_up_option

from t2d_monai.bundle.layout import MODEL_FILE
from t2d_monai.bundle.paths import VIEWS, checkpoint_filename

__all__ = [
    "THREE_VIEWS",
    "THREE_VIEWS_OVERLAY",
    "VARIANTS",
    "Member",
    "check_member",
    "config_members",
    "merge_overlay",
    "name_variant",
    "parse_per_view",
    "resolve_members",
    "variant_values",
    "variant_views",
    "weights_urls",
    "zoo_bundle_id",
]

#: the variant that fuses the three view models
THREE_VIEWS = "three_views"
#: what ``package_bundle --view`` accepts
VARIANTS: tuple[str, ...] = (*VIEWS, THREE_VIEWS)
#: the overlay of the source bundle that a three-view package bakes into its inference.json
THREE_VIEWS_OVERLAY = "inference_three_views.json"
_PAIR = re.compile(rf"^\s*({'|'.join(VIEWS)})\s*=(.*)$")
_FUSION_TEXT = {
    "vote": "fuses their masks by majority vote (a voxel is foreground where at least two of the three views say so)",
    "mean": "fuses them by the mean of their probabilities, thresholded at {threshold}",
}


@dataclass(frozen=True)
class Member:
    """One network of a packaged variant: its ``view`` (None: the view the configs state, the default package),
    its ``file`` inside the package (``models/model.pt``, ...) and the checkpoint shipped there (``source``)."""

    view: str | None
    file: str
    source: Path | None


def variant_views(variant: str) -> tuple[str, ...]:
    """The views a variant runs: ``("axial",)`` for ``"axial"``, :data:`VIEWS` for ``"three_views"``.

    Raises:
        ValueError: an unknown variant (the nearest valid one is suggested).
    """
    variant = look_up_option(variant, VARIANTS)
    return VIEWS if variant == THREE_VIEWS else (variant,)


def zoo_bundle_id(target: str, variant: str | None = None) -> str:
    """The suggested folder name (bundle id) of a package in the model zoo, where a bundle's id is its folder name:
    ``hepatic_vessel_ct_t2d_segmentation``, ``hepatic_vessel_three_views_ct_t2d_segmentation``."""
    middle = f"_{look_up_option(variant, VARIANTS)}" if variant else ""
    return f"{target}{middle}_ct_t2d_segmentation"


def _packaged_file(variant: str, view: str) -> str:
    return MODEL_FILE if variant != THREE_VIEWS else f"models/{checkpoint_filename(view)}"


def parse_per_view(value: Any, views: Sequence[str], what: str = "model") -> dict[str, str]:
    """One value per view from a command-line or Python argument.

    Accepted: a mapping ``{view: value}``; ``"axial=a.pt,coronal=c.pt,sagittal=s.pt"`` (any subset, any order);
    a list or ``"a.pt,c.pt,s.pt"`` (optionally in brackets) with one value per view of ``views``, in that order
    (``axial, coronal, sagittal`` for three views); with one view, a plain value (never split at commas).

    Raises:
        ValueError: a view that is not in ``views``, or a list of the wrong length.
    """
    if isinstance(value, Mapping):
        pairs = {str(k): str(v) for k, v in value.items()}
    elif isinstance(value, str) and _PAIR.match(value):
        pairs = {}
        for item in value.strip().strip("[]").split(","):
            match = _PAIR.match(item)
            if not match:
                raise ValueError(f"{what}: {item!r} is not view=value; write e.g. axial=a.pt,coronal=c.pt,sagittal=s.pt.")
            pairs[match.group(1)] = match.group(2).strip()
    else:
        if isinstance(value, str):
            items = [value.strip()] if len(views) == 1 else [v.strip() for v in value.strip().strip("[]").split(",")]
        else:
            items = [str(v) for v in value]
        if len(items) != len(views):
            raise ValueError(
                f"{what}: got {len(items)} value(s) for the views {list(views)}; give one per view in that order, or "
                f"name them: {','.join(f'{v}=...' for v in views)}."
            )
        pairs = dict(zip(views, items))
    unknown = [v for v in pairs if v not in views]
    if unknown:
        raise ValueError(f"{what}: this package has no slot for the view(s) {unknown}; its views are {list(views)}.")
    return pairs


def resolve_members(bundle: Path, variant: str | None, model: Any = None) -> list[Member]:
    """The networks of the package of ``bundle`` for ``variant`` and the checkpoints to ship.

    Checkpoints not given in ``model`` (see :func:`parse_per_view`) are the bundle's own:
    ``models/<checkpoint_filename(view)>``. A package has weights for every view or for none.

    Raises:
        FileNotFoundError: a given checkpoint that does not exist; a three-view package with some views' weights
            missing (naming them).
    """
    if variant is None:  # the default package: one file, whatever view the configs state
        path = Path(model) if model else (bundle / MODEL_FILE if (bundle / MODEL_FILE).is_file() else None)
        if path is not None and not path.is_file():
            raise FileNotFoundError(f"model {str(path)!r} does not exist; give the path of a trained model.pt.")
        return [Member(None, MODEL_FILE, path)]
    views = variant_views(variant)
    given = parse_per_view(model, views) if model else {}
    members = []
    for view in views:
        default = bundle / "models" / checkpoint_filename(view)
        path = Path(given[view]) if view in given else (default if default.is_file() else None)
        if path is not None and not path.is_file():
            raise FileNotFoundError(f"model {str(path)!r} for the {view} view does not exist; give a trained checkpoint.")
        members.append(Member(view, _packaged_file(variant, view), path))
    missing = [m.view for m in members if m.source is None]
    if missing and len(missing) < len(members):
        raise FileNotFoundError(
            f"the {variant} package needs a checkpoint for each of {list(views)}; none for {missing} (given or in "
            f"{str(bundle / 'models')!r}). Pass them, e.g. --model axial=a.pt,coronal=c.pt,sagittal=s.pt."
        )
    return members


def weights_urls(weights_url: Any, variant: str | None, members: Sequence[Member]) -> dict[str, str]:
    """Packaged file -> URL of every member, for ``large_files.yml``: one URL for a one-file package (as
    :func:`parse_per_view` reads it for one view); for three views a folder URL ending in ``/`` (each file's name
    appended: ``.../model_axial.pt``) or one URL per view (``axial=URL,coronal=URL,sagittal=URL``)."""
    if variant is None:
        return {members[0].file: str(weights_url)}
    views = variant_views(variant)
    if isinstance(weights_url, str) and weights_url.endswith("/") and not _PAIR.match(weights_url):
        return {m.file: weights_url + m.file.rsplit("/", 1)[-1] for m in members}
    urls = parse_per_view(weights_url, views, "weights_url")
    missing = [v for v in views if v not in urls]
    if missing:
        raise ValueError(f"weights_url: no URL for the view(s) {missing}; give one per view, or a folder URL ending in '/'.")
    return {m.file: urls[m.view] for m in members}


def variant_values(variant: str | None) -> dict[str, Any]:
    """Config ids a one-view package bakes into ``inference.json`` and ``train.json``: its ``view``, and the file
    names MONAI Label and the zoo read (``models/model.pt``; training state ``models/checkpoint.pt``), so that
    inference loads and training writes the one file the package ships. None for the default and three views."""
    if variant is None or variant == THREE_VIEWS:
        return {}
    return {
        "view": look_up_option(variant, VIEWS),
        "ckpt_file": "$@ckpt_dir + '/model.pt'",
        "resume_file": "$@ckpt_dir + '/checkpoint.pt'",
    }


def merge_overlay(config: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with ``overlay`` applied as ``python -m monai.bundle run --config_file "[config, overlay]"``
    applies it (new ids added, ids replaced, ``+id`` merged), as one config."""
    from monai.bundle import ConfigParser
    from monai.bundle.utils import merge_kv

    parser = ConfigParser(copy.deepcopy(dict(config)))
    for key, value in overlay.items():
        merge_kv(parser, key, copy.deepcopy(value))
    return parser.get()


def name_variant(metadata: dict[str, Any], variant: str, inference: Mapping[str, Any], members: Sequence[Member]) -> str:
    """Name the variant in the metadata (in place): ``name`` gets ``", axial view"`` or ``", three views"``, and
    ``description`` a sentence with the version, the views, their files and the fusion; returns that sentence."""
    if variant == THREE_VIEWS:
        suffix, kind = "three views", "three-view"
        fusion = str(inference.get("view_fusion", "vote"))
        how = _FUSION_TEXT.get(fusion, f"fuses them by {fusion!r}").format(threshold=inference.get("threshold", 0.5))
        files = [f"{m.view} ({m.file})" for m in members]
        what = (f"runs {len(files)} models, {', '.join(files[:-1])} and {files[-1]}, each on slabs along its own view, "
                f"and {how}")
    else:
        suffix, kind = f"{variant} view", f"{variant}-view"
        what = f"segments with the {variant}-view model in {members[0].file} (slabs along the {variant} slicing axis)"
    sentence = f"This package (version {metadata.get('version')}) is the {kind} variant: configs/inference.json {what}."
    metadata["name"] = f"{metadata.get('name') or 'T2DNet segmentation'}, {suffix}"
    metadata["description"] = f"{metadata.get('description') or ''} {sentence}".strip()
    return sentence


def check_member(checkpoint: str | Path, parser: Any, view: str | None, slot: str, hint: str = "") -> Any:
    """Check one member checkpoint against a parsed inference config and return ``network_def`` with its weights.

    The config's ``signature`` (when both have one) must match the checkpoint's, with its ``view`` replaced by
    ``view`` when given (a three-view config's networks share one signature but not one view); then the weights
    are loaded strictly.

    Raises:
        CheckpointMismatchError: the signature differs; the message names the slot (view and packaged file).
        ValueError: the weights do not fit ``network_def``.
    """
    from t2d_monai.handlers.checkpoint import read_checkpoint

    where = f"the checkpoint {str(checkpoint)!r} in the {view + ' ' if view else ''}slot ({slot})"
    state = read_checkpoint(str(checkpoint), "cpu", keys=())  # a truncated or foreign file: a clear error
    if "signature" in state and "signature" in parser:
        signature = parser.get_parsed_content("signature")
        if view is not None and "view" in signature.fields:
            signature = type(signature)(**{**signature.fields, "view": view})
        try:
            signature.load_state_dict(state["signature"])
        except ValueError as e:
            raise type(e)(f"{where} does not fit: {e}") from e
    network = parser.get_parsed_content("network_def", instantiate=True, lazy=False)
    try:
        network.load_state_dict(state.get("model", state), strict=True)
    except RuntimeError as e:
        raise ValueError(f"the weights of {where} do not fit network_def: {e}{hint}") from e
    return network


def config_members(parser: Any, bundle_root: str | Path) -> dict[str | None, Path]:
    """View -> weights file of every network that a parsed inference config loads: ``view_ckpt_files`` (three-view
    fusion) or ``{view: ckpt_file}``, else ``{None: models/model.pt}``. Parse with the bundle's code importable
    (:func:`~t2d_monai.bundle.layout.bundle_on_sys_path`): the ids are expressions."""
    if "view_ckpt_files" in parser:
        return {str(v): Path(p) for v, p in parser.get_parsed_content("view_ckpt_files").items()}
    if "ckpt_file" in parser:
        view = parser.get_parsed_content("view") if "view" in parser else None
        return {view: Path(parser.get_parsed_content("ckpt_file"))}
    return {None: Path(bundle_root) / MODEL_FILE}
