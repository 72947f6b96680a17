"""One recipe, one bundle per target: each target bundle is rendered from ``bundles/_recipe`` and its ``target.json``.

The recipe (network, loss, optimiser, inferer, handlers, overlays, metadata, model card) is written once, in
``bundles/_recipe/``. A target states only what differs, in ``bundles/<target>/target.json``:

- ``config``: the values of :data:`TARGET_IDS` (data set folder and layout, label, HU window), written into every
  recipe config that defines the id (the recipe leaves them ``null``);
- ``synthetic_layout``: the ``python -m t2d_monai synth --layout`` that writes synthetic cases in the target's
  data layout (the model card's command, the tests, the demo);
- ``structure``: the structure's name in prose ("hepatic vessel"), filled into ``{{structure}}`` (the model card);
  ``{{label_name}}`` is the one name of the metadata's ``segmentation_labels`` (the per-slice logits' name);
- ``metadata``: the ``metadata.json`` fields the recipe leaves ``null`` (name, version, changelog, data source,
  labels, ...), and ``references`` appended to the recipe's;
- ``card``: the model card's target paragraphs, filled into ``{{field}}`` of ``docs/README.md``.

:func:`render_bundles` (``python -m t2d_monai render_bundles``) writes each target bundle's ``configs/``,
``LICENSE`` and ``docs/README.md``; they are outputs, never edited by hand. Each bundle stays self-contained
(MONAI Label, the model zoo and ``python -m monai.bundle run`` read one bundle folder). ``--check`` writes
nothing and fails when a bundle differs from its rendering, as the tests do.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from t2d_monai.bundle.layout import load_json
from t2d_monai.utils.files import write_atomic

__all__ = ["RECIPE", "TARGET_FILE", "TARGET_IDS", "read_target", "render_bundle", "render_bundles", "synthetic_layout",
           "target_bundles"]

#: the recipe's folder under ``bundles/``
RECIPE = "_recipe"
#: a target bundle's own file: what differs from the recipe
TARGET_FILE = "target.json"
#: config ids every target states (``null`` in the recipe)
TARGET_IDS = ("dataset_dir", "data_layout", "target_label", "foreground_labels", "hu_window")
_TARGET_KEYS = ("structure", "synthetic_layout", "config", "metadata", "card")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
#: the rendered files of a bundle are the recipe's files at the same relative paths
_RENDERED_JSON = "configs"


def bundles_root() -> Path:
    """``bundles/`` of this source checkout."""
    return Path(__file__).resolve().parents[2] / "bundles"


def target_bundles(root: str | os.PathLike | None = None) -> list[Path]:
    """Every folder of ``root`` (default: ``bundles/``) that has a ``target.json``, sorted by name."""
    root = Path(root) if root else bundles_root()
    return sorted(p.parent for p in root.glob(f"*/{TARGET_FILE}"))


def _fill(text: str, fields: Mapping[str, str], where: str) -> str:
    missing = sorted({m for m in _PLACEHOLDER.findall(text) if m not in fields})
    if missing:
        raise ValueError(f"{where}: no value for {', '.join('{{' + m + '}}' for m in missing)}; add it to the "
                         f"target's {TARGET_FILE} (card or structure).")
    return _PLACEHOLDER.sub(lambda m: str(fields[m.group(1)]), text)


def _fill_strings(node: Any, fields: Mapping[str, str], where: str) -> Any:
    if isinstance(node, str):
        return _fill(node, fields, where)
    if isinstance(node, list):
        return [_fill_strings(v, fields, where) for v in node]
    if isinstance(node, dict):
        return {k: _fill_strings(v, fields, where) for k, v in node.items()}
    return node


def _read_target(bundle: Path) -> dict[str, Any]:
    path = bundle / TARGET_FILE
    target = load_json(path)
    unknown = sorted(set(target) - set(_TARGET_KEYS))
    missing = [k for k in _TARGET_KEYS if k not in target]
    if unknown or missing:
        raise ValueError(f"{path}: keys must be {list(_TARGET_KEYS)}; missing {missing}, unknown {unknown}.")
    config = target["config"]
    extra = sorted(set(config) - set(TARGET_IDS))
    absent = [k for k in TARGET_IDS if k not in config]
    if extra or absent:
        raise ValueError(
            f"{path}: config must state exactly {list(TARGET_IDS)}; missing {absent}, not a target id {extra} "
            f"(everything else is the recipe's: change it in bundles/{RECIPE}/ for every target)."
        )
    _check_config_values(config, path)
    from t2d_monai.data.synthetic_layouts import SYNTH_LAYOUTS

    if target["synthetic_layout"] not in ("msd", *SYNTH_LAYOUTS):
        raise ValueError(f"{path}: synthetic_layout {target['synthetic_layout']!r} is not one of "
                         f"{['msd', *SYNTH_LAYOUTS]} (python -m t2d_monai synth --layout).")
    return target


def read_target(bundle: str | os.PathLike) -> dict[str, Any]:
    """A target bundle's ``target.json``, checked (ValueError naming the file, the problem and the fix)."""
    return _read_target(Path(bundle))


def _check_config_values(config: Mapping[str, Any], path: Path) -> None:
    from t2d_monai.data.layouts import LAYOUTS

    layouts = ["msd", *LAYOUTS]
    if config["data_layout"] not in layouts:
        raise ValueError(f"{path}: data_layout {config['data_layout']!r} is not one of {layouts}.")
    if config["data_layout"] != "msd" and not isinstance(config["target_label"], str):
        raise ValueError(f"{path}: a subject-folder layout needs target_label, the class file's name "
                         f"(segmentations/<target_label>.nii.gz).")
    window = config["hu_window"]
    if not (isinstance(window, list) and len(window) == 2 and window[0] < window[1]):
        raise ValueError(f"{path}: hu_window must be [low, high] in HU with low < high, got {window!r}.")
    labels = config["foreground_labels"]
    if not (isinstance(labels, list) and labels and all(isinstance(v, int) and v > 0 for v in labels)):
        raise ValueError(f"{path}: foreground_labels must be a list of positive label values, got {labels!r}.")


def _render_config(config: dict[str, Any], target: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(config)
    for key, value in target["config"].items():
        if key in out:
            out[key] = copy.deepcopy(value)
    return out


def _render_metadata(meta: dict[str, Any], target: Mapping[str, Any], fields: Mapping[str, str], where: str):
    out = copy.deepcopy(meta)
    own = dict(target["metadata"])
    references = own.pop("references", [])
    not_null = sorted(k for k in own if out.get(k, None) is not None)
    if not_null:
        raise ValueError(f"{where}: metadata fields {not_null} are the recipe's (not null in bundles/{RECIPE}).")
    out.update(copy.deepcopy(own))
    out["references"] = out.get("references", []) + list(references)
    unset = sorted(k for k, v in out.items() if v is None)
    if unset:
        raise ValueError(f"{where}: metadata fields {unset} are left to each target; state them under metadata.")
    return _fill_strings(out, fields, where)


def synthetic_layout(bundle: str | os.PathLike) -> str:
    """The ``synth --layout`` of a bundle's data set: its ``target.json``'s, else ``"msd"`` (a bundle made
    otherwise, e.g. packaged)."""
    return read_target(bundle)["synthetic_layout"] if (Path(bundle) / TARGET_FILE).is_file() else "msd"


def render_bundle(bundle: str | os.PathLike, recipe: str | os.PathLike | None = None) -> dict[str, str]:
    """The rendered files of one target bundle.

    Args:
        bundle: the target's folder (with ``target.json``).
        recipe: the recipe folder. Default: ``bundles/_recipe`` of this checkout.

    Returns:
        relative path (POSIX) -> file text, for every file of the recipe.

    Raises:
        ValueError: a ``target.json`` that misses or adds an id, a bad value, an unfilled placeholder.
    """
    bundle = Path(bundle)
    recipe = Path(recipe) if recipe else bundles_root() / RECIPE
    target = _read_target(bundle)
    low, high = target["config"]["hu_window"]
    labels = target["metadata"].get("segmentation_labels")
    if not (isinstance(labels, dict) and list(labels.values()) == [1]):
        raise ValueError(f"{bundle / TARGET_FILE}: metadata.segmentation_labels must name the one label value 1, "
                         f'e.g. {{"vessel": 1}}; got {labels!r}.')
    synth = "python -m t2d_monai synth --out data/synth" + (
        "" if target["synthetic_layout"] == "msd" else f" --layout {target['synthetic_layout']}")
    fields = {"bundle": bundle.name, "structure": target["structure"], "label_name": next(iter(labels)),
              "synth_command": synth,
              "hu_low": f"{low:g}", "hu_high": f"{high:g}", **target["card"]}
    files: dict[str, str] = {}
    for src in sorted(p for p in recipe.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        rel = src.relative_to(recipe).as_posix()
        where = f"{bundle / TARGET_FILE} rendering {rel}"
        if rel == f"{_RENDERED_JSON}/metadata.json":
            text = json.dumps(_render_metadata(load_json(src), target, fields, where), indent=4) + "\n"
        elif rel.startswith(f"{_RENDERED_JSON}/") and rel.endswith(".json"):
            text = json.dumps(_render_config(load_json(src), target), indent=4) + "\n"
        elif rel.endswith(".md"):
            text = _fill(src.read_text(), fields, where)
        else:
            text = src.read_text()
        files[rel] = text
    return files


def render_bundles(bundles: str | None = None, check: bool = False, root: str | None = None) -> list[str]:
    """Render every target bundle (``python -m t2d_monai render_bundles``); ``--check`` only compares.

    Args:
        bundles: comma-separated target names; default: every folder of ``bundles/`` with a ``target.json``.
        check: write nothing; fail when a bundle's files differ from their rendering. Default False.
        root: the folder that holds ``_recipe`` and the targets. Default: ``bundles/`` of this checkout.

    Returns:
        the files written (or, with ``check``, that differ), relative to ``root``.

    Raises:
        SystemExit: with ``check``, when a file differs, naming each and the command that renders them.
    """
    root_dir = Path(root) if root else bundles_root()
    names = [n.strip() for n in bundles.split(",")] if isinstance(bundles, str) else None
    targets = [b for b in target_bundles(root_dir) if names is None or b.name in names]
    if names is not None and len(targets) != len(names):
        known = [b.name for b in target_bundles(root_dir)]
        raise ValueError(f"unknown target bundle in {names}; targets with a {TARGET_FILE}: {known}.")
    changed = []
    for bundle in targets:
        for rel, text in render_bundle(bundle, root_dir / RECIPE).items():
            path = bundle / rel
            if path.is_file() and path.read_text() == text:
                continue
            changed.append(f"{bundle.name}/{rel}")
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(path, text)
    if not check:
        print(f"rendered {len(targets)} bundles from bundles/{RECIPE}: {len(changed)} files changed"
              + "".join(f"\n  {c}" for c in changed))
    elif not changed:
        print(f"{len(targets)} bundles match bundles/{RECIPE} and their {TARGET_FILE}")
    if check and changed:
        raise SystemExit(
            "these bundle files differ from bundles/_recipe + their target.json (edited by hand, or the recipe "
            "changed): " + ", ".join(changed) + ". Put the change in bundles/_recipe/ (every target) or in the "
            "target's target.json, then run: python -m t2d_monai render_bundles"
        )
    return changed
