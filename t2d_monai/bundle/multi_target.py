"""One label map of several targets for one CT, from one bundle per target (``python -m t2d_monai merge_targets``).

Yu et al. (https://arxiv.org/abs/1904.01150) train one model per organ and, "when a pixel is predicted as more
than one organ, we choose the one with the largest confidence". Here each bundle's inference runs with
``configs/inference_probabilities.json`` (the foreground probability map instead of the mask) through the MONAI
bundle runner, as a user would run it (:func:`~t2d_monai.bundle.bundle_run.run_bundle`); the maps are merged by
:func:`~t2d_monai.transforms.merge_targets` at each bundle's own ``threshold``.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from t2d_monai.utils.args import comma_list

__all__ = [
    "MERGED_POSTFIX",
    "PROBABILITIES_OVERLAY",
    "bundle_target",
    "bundle_threshold",
    "image_stem",
    "merge_probability_files",
    "merge_targets_command",
    "run_merge_targets",
]

#: the overlay (in each bundle's ``configs/``) that makes inference write probabilities, ``<name>_prob.nii.gz``
PROBABILITIES_OVERLAY = "inference_probabilities.json"
#: the merged map is ``<image name>_merged.nii.gz``, its legend ``<image name>_merged_legend.json``
MERGED_POSTFIX = "merged"
_PROB_POSTFIX = "_prob"


def _thresholds(value: Any) -> float | list[float] | None:
    if value is None or isinstance(value, (int, float)):
        return value
    items = comma_list(value)
    try:
        return [float(v) for v in items]
    except ValueError:
        raise ValueError(f"thresholds {value!r} are not numbers; give e.g. --thresholds 0.5,0.5.") from None


def image_stem(path: str | os.PathLike) -> str:
    """The file name without its image extension (``case.nii.gz`` -> ``case``), as MONAI's ``SaveImage`` names
    its outputs."""
    from t2d_monai.bundle.checks import IMAGE_SUFFIXES

    name = os.path.basename(os.fspath(path))
    return next((name[: -len(s)] for s in IMAGE_SUFFIXES if name.endswith(s)), os.path.splitext(name)[0])


def bundle_target(bundle: str | os.PathLike) -> str:
    """The target name of a bundle: the key of ``segmentation_labels`` in its ``configs/metadata.json`` whose value
    is 1 (the label of its masks, the name MONAI Label shows); the bundle folder's name when the metadata has no
    such single key."""
    from t2d_monai.bundle.layout import load_json

    labels = load_json(Path(bundle) / "configs" / "metadata.json").get("segmentation_labels") or {}
    foreground = [name for name, value in labels.items() if value == 1]
    return foreground[0] if len(foreground) == 1 else Path(bundle).resolve().name


def _config_files(bundle: Path, overlays: Sequence[str]) -> list[Path]:
    """``inference.json``, the overlays (names in ``configs/`` or paths), then the probabilities overlay."""
    files = []
    for name in ["inference.json", *overlays, PROBABILITIES_OVERLAY]:
        path = Path(name) if os.path.isfile(name) else bundle / "configs" / name
        if not path.is_file():
            raise FileNotFoundError(f"bundle {str(bundle)!r} has no configs/{name} (nor is {name!r} a file); is it a "
                                    "bundle folder of this project (with configs/inference.json)?")
        files.append(path)
    return files


def bundle_threshold(
    bundle: str | os.PathLike, overlays: Sequence[str] = (), overrides: Mapping[str, Any] | None = None
) -> float:
    """The ``threshold`` of a bundle's inference (``inference.json``, ``overlays``, the probabilities overlay and
    ``overrides``, as its run will see them)."""
    from t2d_monai.bundle.layout import parse_configs

    parser = parse_configs(_config_files(Path(bundle), overlays), bundle, overrides)
    return float(parser.get_parsed_content("threshold"))


def merge_probability_files(
    probabilities: Mapping[str, str | os.PathLike],
    thresholds: float | Sequence[float] | Mapping[str, float],
    merged: str | os.PathLike,
    legend: str | os.PathLike,
    reference: str | os.PathLike | None = None,
) -> dict[int, str]:
    """Merge probability maps (NIfTI, in target order) into a uint8 label map ``merged`` with the affine of
    ``reference`` (default: the first map), and write its legend ``{"0": "background", "1": <first target>, ...}``
    as JSON to ``legend``; both atomically. Returns the legend.

    Raises:
        FileNotFoundError: a map or the reference is missing.
        ValueError: a map in another space (shape or affine) than the reference or the other maps; invalid names
            or thresholds (:func:`~t2d_monai.transforms.merge_targets`).
    """
    import nibabel as nib
    import numpy as np

    from t2d_monai.data.image_writer import AtomicNibabelWriter
    from t2d_monai.transforms.target_merge import merge_targets, target_legend
    from t2d_monai.utils.files import write_atomic

    for path in [*probabilities.values(), *([reference] if reference else [])]:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{str(path)!r} does not exist.")
    maps = {name: nib.load(str(path)) for name, path in probabilities.items()}
    ref_path = reference or next(iter(probabilities.values()))
    ref = nib.load(str(ref_path))
    ref_shape = ref.shape[:3] if len(ref.shape) == 4 and ref.shape[3] == 1 else ref.shape
    for name, img in maps.items():
        if img.shape == ref_shape and np.allclose(img.affine, ref.affine, atol=1e-4):
            continue
        raise ValueError(
            f"the probability map of {name!r} ({probabilities[name]}, shape {img.shape}, affine {img.affine.tolist()}) "
            f"is not in the space of {ref_path} (shape {ref_shape}, affine {ref.affine.tolist()}); give maps that "
            "the bundles wrote for this image (they are written in the input's space)."
        )
    labels = merge_targets({n: np.asarray(img.dataobj, dtype=np.float32) for n, img in maps.items()},
                           thresholds=thresholds)
    writer = AtomicNibabelWriter(output_dtype=np.uint8)
    writer.set_data_array(labels[None], channel_dim=0)
    writer.set_metadata({"affine": ref.affine, "original_affine": ref.affine}, resample=False)
    writer.write(str(merged))
    names = target_legend(list(maps))
    write_atomic(legend, json.dumps({str(k): v for k, v in names.items()}, indent=4) + "\n")
    return names


def _targets_of(probabilities: Any) -> dict[str, str]:
    """``"a=path,b=path"`` (or fire's tuple, or a mapping) -> {name: path} in the order given."""
    if isinstance(probabilities, Mapping):
        return {str(k): str(v) for k, v in probabilities.items()}
    targets: dict[str, str] = {}
    for item in comma_list(probabilities):
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ValueError(f"--probabilities item {item!r} is not name=path; give e.g. "
                             "--probabilities liver=out/liver/case_prob.nii.gz,spleen=out/spleen/case_prob.nii.gz")
        if name.strip() in targets:
            raise ValueError(f"target {name.strip()!r} is given twice in --probabilities; give each target once.")
        targets[name.strip()] = path.strip()
    return targets


def run_merge_targets(
    image: str | None = None,
    out_dir: str | None = None,
    bundles: str | Sequence[str] | None = None,
    probabilities: str | Sequence[str] | Mapping[str, str] | None = None,
    thresholds: float | str | Sequence[float] | None = None,
    names: str | Sequence[str] | None = None,
    overlays: str | Sequence[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """One label map of several targets for one CT: the most confident target at or above its threshold wins.

    Label 0 is background, ``1 + i`` target ``i``; ties go to the target given first.

    Two modes:

    - ``--bundles``: runs each bundle's inference on ``image`` with ``configs/inference_probabilities.json``
      (``python -m monai.bundle run``, one after the other) into ``<out_dir>/<target>/<image name>_prob.nii.gz``,
      then merges the maps at each bundle's ``threshold``. A bundle's target name is the key of its metadata's
      ``segmentation_labels`` whose value is 1 (else the folder's name); ``--names`` replaces them.
    - ``--probabilities name=path,...``: merges maps already written (e.g. by the first mode) with ``--thresholds``.

    Writes ``<out_dir>/<image name>_merged.nii.gz`` (uint8, the input's affine) and its legend
    ``<image name>_merged_legend.json`` (``{"0": "background", "1": "<target>", ...}``), atomically. The image name
    is ``image``'s (without extension), or in the second mode without ``image`` the first map's without ``_prob``.

    Args:
        image: the CT (one image file); needed with ``bundles``. With ``probabilities`` the maps must be in its space.
        out_dir: output folder (created).
        bundles: bundle folders in target order (the tie order), comma-separated, e.g.
            ``bundles/pancreas,bundles/duodenum``. Each needs a trained ``models/model.pt`` (or its overrides).
        probabilities: instead of ``bundles``: ``name=path`` pairs in target order, comma-separated.
        thresholds: one per target in order, or one for all, each in (0, 1); required with ``probabilities``;
            with ``bundles`` they replace the bundles' own.
        names: target names in order, replacing the bundles' (e.g. two bundles that both name theirs "vessel").
        overlays: extra configs for every bundle's inference after ``inference.json`` (names in its ``configs/`` or
            paths), e.g. ``cpu_small.json`` for models trained with it.
        overrides: config overrides for every bundle's inference, e.g. ``{"infer_batch_size": 2}``.
        overwrite: replace outputs of an earlier run (never the input). Default False.

    Returns:
        ``{"merged": path, "legend": path, "targets": {name: {"probabilities": path, "threshold": value}}}``.

    Raises:
        ValueError: neither or both of ``bundles`` and ``probabilities``; no ``out_dir``; a missing threshold or a
            target name used twice; maps in different spaces.
        FileNotFoundError: the image, a bundle config or a map is missing.
        FileExistsError: an output exists and ``overwrite`` is False.
        subprocess.CalledProcessError: a bundle's inference failed (its error is in the log above).

    Example::

        python -m t2d_monai merge_targets --image CT.nii.gz --bundles bundles/pancreas,bundles/duodenum --out_dir out
        python -m t2d_monai merge_targets --probabilities pancreas=out/pancreas/CT_prob.nii.gz,\\
            duodenum=out/duodenum/CT_prob.nii.gz --thresholds 0.5,0.5 --out_dir out
    """
    from t2d_monai.bundle.bundle_run import run_bundle
    from t2d_monai.transforms.target_merge import check_targets

    if (bundles is None) == (probabilities is None):
        raise ValueError("give either --bundles (run each bundle on --image) or --probabilities name=path,... "
                         "(merge maps already written), not both nor neither.")
    if not out_dir:
        raise ValueError("give --out_dir, the folder to write the merged label map (and the probability maps) to.")
    if image is not None and not os.path.isfile(image):
        raise FileNotFoundError(f"image {image!r} does not exist or is not a file; give one CT image file.")
    out = Path(out_dir)
    given_names, threshold_values = comma_list(names), _thresholds(thresholds)
    overlay_list, overrides = comma_list(overlays), dict(overrides or {})

    if bundles is not None:
        if image is None:
            raise ValueError("--bundles needs --image, the CT to segment.")
        folders = [Path(b) for b in comma_list(bundles)]
        if not folders:
            raise ValueError("--bundles is empty; give bundle folders, e.g. --bundles bundles/hepatic_vessel.")
        configs = {b: _config_files(b, overlay_list) for b in folders}
        target_names = given_names or [bundle_target(b) for b in folders]
        if len(target_names) != len(folders):
            raise ValueError(f"{len(target_names)} --names {target_names} for {len(folders)} bundles; give one name "
                             "per bundle.")
        repeated = sorted({n for n in target_names if target_names.count(n) > 1})
        if repeated:
            raise ValueError(f"the bundles {[str(b) for b in folders]} name their targets {target_names}: {repeated} "
                             "more than once; pass --names with one unique name per bundle, in order.")
        stem = image_stem(image)
        maps = {n: out / n / f"{stem}{_PROB_POSTFIX}.nii.gz" for n in target_names}
        if threshold_values is None:
            threshold_values = [bundle_threshold(b, overlay_list, overrides) for b in folders]
    else:
        maps = {n: Path(p) for n, p in _targets_of(probabilities).items()}
        if given_names:
            raise ValueError("--names is for --bundles; with --probabilities the names are given as name=path.")
        if threshold_values is None:
            raise ValueError("--probabilities needs --thresholds, one per target in order (each bundle's `threshold` "
                             "in its inference.json, e.g. 0.5), or one value for all.")
        first = next(iter(maps.values()), None)
        stem = image_stem(image) if image else image_stem(first or "merged").removesuffix(_PROB_POSTFIX)
    thresholds_used = check_targets(list(maps), threshold_values)
    bad = [n for n in maps if os.sep in n or n in (".", "..")]
    if bad:
        raise ValueError(f"target names {bad} cannot name a folder; give plain names (--names).")

    merged, legend = out / f"{stem}_{MERGED_POSTFIX}.nii.gz", out / f"{stem}_{MERGED_POSTFIX}_legend.json"
    written = [merged, legend, *(maps.values() if bundles is not None else [])]
    inputs = [Path(p).resolve() for p in [image, *([] if bundles is not None else maps.values())] if p]
    clash = [str(p) for p in written if p.resolve() in inputs]
    if clash:
        raise ValueError(f"the outputs {clash} would overwrite an input; choose another --out_dir.")
    existing = [str(p) for p in written if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"outputs exist: {existing}; pass --overwrite to replace them, or choose another "
                              "--out_dir.")

    if bundles is not None:
        for i, (bundle, name) in enumerate(zip(folders, maps), 1):
            maps[name].unlink(missing_ok=True)  # an earlier run's map (--overwrite) must not pass for this one's
            run_bundle("run", configs[bundle], f"{i}/{len(folders)} {name}: inference of {bundle} on {image}",
                       **{**overrides, "dataset_dir": str(Path(image).resolve()),
                          "output_dir": str((out / name).resolve())})
            if not maps[name].is_file():
                raise FileNotFoundError(f"bundle {str(bundle)!r} finished but wrote no {maps[name]}; does an overlay "
                                        "change output_postfix or postprocessing after inference_probabilities.json?")
    summary = ", ".join(f"{n} (>= {t})" for n, t in zip(maps, thresholds_used))
    print(f"\n=== merging {len(maps)} target(s), largest probability wins: {summary}", flush=True)
    merge_probability_files(maps, thresholds_used, merged, legend, reference=image)
    print(f"  label map: {merged}\n  legend:    {legend}", flush=True)
    targets = {n: {"probabilities": str(p), "threshold": t} for (n, p), t in zip(maps.items(), thresholds_used)}
    return {"merged": str(merged), "legend": str(legend), "targets": targets}


@functools.wraps(run_merge_targets)
def merge_targets_command(*args, **kwargs) -> None:
    """Command-line entry (``python -m t2d_monai merge_targets``): :func:`run_merge_targets`, without printing its
    summary a second time."""
    run_merge_targets(*args, **kwargs)
