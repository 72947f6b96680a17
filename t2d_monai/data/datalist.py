"""Reproducible train/validation/test datalists for an MSD data set or a folder of image/label pairs.

Yu et al. ("Thickened 2D Networks for Efficient 3D Medical Image Segmentation",
https://arxiv.org/abs/1904.01150) split the 303 labelled cases of MSD Task08 (hepatic vessel) into
228 for training and 75 for testing; the MSD ``test`` list (``imagesTs``) has no labels, so the test
cases come from the labelled ones. :func:`make_split` reproduces these proportions from a seed
(``test_fraction = 75 / 303``) and holds a validation set out of the training part
(``val_fraction`` of it; the paper does not describe one). A split saved with :func:`save_split` is
itself a datalist file: :func:`monai.data.load_decathlon_datalist` reads its ``training``,
``validation`` and ``test`` keys with ``base_dir`` set to the data set folder.

Command line::

    python -m t2d_monai split --dataset_dir /data/Task08_HepaticVessel --out split.json --seed 0
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from t2d_monai.utils.files import write_atomic

__all__ = [
    "PAPER_TEST_FRACTION", "find_cases", "load_datalists", "make_split", "save_split", "split", "split_by_number"
]

#: 75 of the 303 labelled Task08 cases were the paper's test set (228 trained on)
PAPER_TEST_FRACTION: float = 75.0 / 303.0
_PAIR_FOLDERS = (("imagesTr", "labelsTr"), ("images", "labels"))
_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")


def find_cases(dataset_dir: str, layout: str = "msd", label: str | None = None) -> list[dict[str, str]]:
    """Labelled cases of a data set folder, sorted by image path, with absolute paths.

    ``layout="msd"`` reads ``dataset.json`` (its ``training`` list, via :func:`monai.data.load_decathlon_datalist`)
    when there is one; otherwise pairs files of the same name in ``imagesTr/`` + ``labelsTr/`` or
    ``images/`` + ``labels/``. Any other layout is a subject-folder one (:mod:`t2d_monai.data.layouts`), whose
    class ``label`` is the target.

    Args:
        dataset_dir: data set folder.
        layout: ``"msd"`` or a name of :data:`t2d_monai.data.layouts.LAYOUTS`. Defaults to ``"msd"``.
        label: the class of a subject-folder layout (its mask file name); unused for ``"msd"``.

    Returns:
        list of ``{"image": path, "label": path}``.

    Raises:
        FileNotFoundError: no such folder, or neither a dataset.json nor image/label folders in it.
        ValueError: an image without a label file.
    """
    from monai.data import load_decathlon_datalist

    if layout != "msd":
        return [{"image": c["image"], "label": c["label"]} for c in _subject_cases(dataset_dir, layout, label)]
    root = os.path.abspath(os.path.expanduser(str(dataset_dir)))
    if not os.path.isdir(root):
        raise FileNotFoundError(f"dataset_dir={dataset_dir!r} is not a folder.")
    meta = os.path.join(root, "dataset.json")
    if os.path.isfile(meta):
        cases = load_decathlon_datalist(meta, True, "training", base_dir=root)
        cases = [{"image": os.path.abspath(c["image"]), "label": os.path.abspath(c["label"])} for c in cases]
        return sorted(cases, key=lambda c: c["image"])
    for images, labels in _PAIR_FOLDERS:
        img_dir, lab_dir = os.path.join(root, images), os.path.join(root, labels)
        if not (os.path.isdir(img_dir) and os.path.isdir(lab_dir)):
            continue
        names = sorted(f for f in os.listdir(img_dir) if f.endswith(_SUFFIXES) and not f.startswith("."))
        missing = [n for n in names if not os.path.isfile(os.path.join(lab_dir, n))]
        if missing:
            raise ValueError(f"images without a label of the same name in {lab_dir!r}: {missing[:5]}.")
        return [{"image": os.path.join(img_dir, n), "label": os.path.join(lab_dir, n)} for n in names]
    raise FileNotFoundError(
        f"dataset_dir={dataset_dir!r} has no dataset.json and no imagesTr/+labelsTr/ or images/+labels/ folders."
    )


def _subject_cases(dataset_dir: str, layout: str, label: str | None) -> list[dict[str, str]]:
    from t2d_monai.data.layouts import find_subject_cases

    if not label:
        raise ValueError(f"layout={layout!r} stores one mask per class: name the class with label=... (e.g. 'duodenum').")
    return find_subject_cases(dataset_dir, label, layout)


def _relative(case: dict[str, str], root: str) -> dict[str, str]:
    """A case's image and label paths relative to the data set folder ``root`` (a split's entries)."""
    return {k: os.path.relpath(case[k], root) for k in ("image", "label")}


def _count(name: str, number: int | None, fraction: float, total: int) -> int:
    if number is None:
        if not 0.0 <= float(fraction) < 1.0:
            raise ValueError(f"{name}_fraction must be in [0, 1), got {fraction!r}.")
        n = int(round(float(fraction) * total))
        return 1 if n == 0 and fraction > 0 and total >= 2 else n  # small data sets still get one case
    if isinstance(number, bool) or int(number) != number or not 0 <= int(number) <= total:
        raise ValueError(f"num_{name} must be an integer in [0, {total}], got {number!r}.")
    return int(number)


def make_split(
    dataset_dir: str,
    seed: int = 0,
    num_test: int | None = None,
    num_val: int | None = None,
    test_fraction: float = PAPER_TEST_FRACTION,
    val_fraction: float = 0.1,
    layout: str = "msd",
    label: str | None = None,
) -> dict[str, Any]:
    """Deterministic train/validation/test split of a data set's labelled cases.

    Cases are sorted by path, shuffled by ``numpy.random.default_rng(seed)``; the first ``num_test``
    are the test set, the next ``num_val`` the validation set, the rest the training set. A layout with its
    own split file (TotalSegmentator's ``meta.csv``) keeps that file's test set and, when it has one, its
    validation set (``num_test`` and ``test_fraction`` are then unused); without a validation split,
    ``num_val`` cases of its training set are drawn as above.

    Args:
        dataset_dir: data set folder (see :func:`find_cases`).
        seed: shuffle seed. Default 0.
        num_test: test cases; None uses ``round(test_fraction * total)`` (at least 1 from 2 cases on).
            Default None.
        num_val: validation cases, taken from what is left after the test set; None uses
            ``round(val_fraction * (total - num_test))`` (at least 1 when 2 or more are left). Default None.
        test_fraction: default 75/303 (the paper's 228/75 split of Task08).
        val_fraction: default 0.1.
        layout: ``"msd"`` or a subject-folder layout (see :func:`find_cases`). Default ``"msd"``.
        label: the class of a subject-folder layout. Default None.

    Returns:
        dict with ``training``, ``validation``, ``test`` lists of ``{"image", "label"}`` paths
        relative to ``dataset_dir`` (portable; load with ``base_dir=dataset_dir``), plus ``seed``.

    Raises:
        ValueError: counts or fractions out of range, or no training case left.

    Example::

        >>> s = make_split("/data/Task08_HepaticVessel", seed=0)   # 303 cases
        >>> len(s["training"]) + len(s["validation"]), len(s["test"])
        (228, 75)
    """
    if isinstance(seed, bool) or int(seed) != seed:
        raise ValueError(f"seed must be an integer, got {seed!r}.")
    root = os.path.abspath(os.path.expanduser(str(dataset_dir)))
    if layout == "msd":
        cases = find_cases(root)
    else:  # the subject folders are listed once, for the layout's own split and for a split by seed
        subjects = _subject_cases(root, layout, label)
        own = _layout_split(root, seed, num_val, val_fraction, layout, subjects)
        if own is not None:
            return own
        cases = subjects  # a split keeps only their image and label (_relative)
    total = len(cases)
    n_test = _count("test", num_test, test_fraction, total)
    n_val = _count("val", num_val, val_fraction, total - n_test)
    if total - n_test - n_val < 1:
        raise ValueError(
            f"no training case left: {total} cases, num_test={n_test}, num_val={n_val}; lower num_test or num_val."
        )
    order = np.random.default_rng(int(seed)).permutation(total)

    def rel(i: int) -> dict[str, str]:
        return _relative(cases[i], root)

    return {
        "seed": int(seed),
        "training": [rel(i) for i in order[n_test + n_val :]],
        "validation": [rel(i) for i in order[n_test : n_test + n_val]],
        "test": [rel(i) for i in order[:n_test]],
    }


def _layout_split(root: str, seed: int, num_val: int | None, val_fraction: float, layout: str,
                  subject_cases: list[dict[str, str]]) -> dict[str, Any] | None:
    """The split of ``subject_cases`` that a subject-folder layout's own split file gives (None without one); see
    :func:`make_split`."""
    from t2d_monai.data.layouts import read_layout_split

    cases = {c["subject"]: c for c in subject_cases}
    parts = read_layout_split(root, layout, sorted(cases))
    if parts is None:
        return None
    training, validation = parts["training"], parts["validation"]
    if not validation:
        n_val = _count("val", num_val, val_fraction, len(training))
        order = np.random.default_rng(int(seed)).permutation(len(training))
        validation = [training[i] for i in order[:n_val]]
        training = [training[i] for i in sorted(order[n_val:])]
    if not training:
        raise ValueError(f"the split file of layout {layout!r} in {root!r} leaves no training case.")

    def rel(subject: str) -> dict[str, str]:
        return _relative(cases[subject], root)

    return {"seed": int(seed), "training": [rel(s) for s in training], "validation": [rel(s) for s in validation],
            "test": [rel(s) for s in parts["test"]]}


def split_by_number(
    dataset_dir: str, test: list[int], validation: list[int], layout: str = "msd", label: str | None = None
) -> dict[str, Any]:
    """A split that names its held-out cases by number: case ``i`` is the i-th labelled case in path order, from 1
    (the synthetic data's ``hepaticvessel_001`` or ``s0001`` is case 1), so that the same cases are held out in
    every layout a data set is written in. Every other case is training data, in path order.

    Args:
        dataset_dir: data set folder (see :func:`find_cases`).
        test: numbers of the test cases, in the order they are listed.
        validation: numbers of the validation cases.
        layout: see :func:`find_cases`. Default ``"msd"``.
        label: the class of a subject-folder layout. Default None.

    Returns:
        the split as :func:`make_split` gives it (paths relative to ``dataset_dir``), without ``seed``.

    Raises:
        ValueError: a number that is not a case of the folder, or one given twice.
    """
    root = os.path.abspath(os.path.expanduser(str(dataset_dir)))
    cases = find_cases(root, layout, label)
    numbers = [*test, *validation]
    bad = [n for n in numbers if isinstance(n, bool) or int(n) != n or not 1 <= int(n) <= len(cases)]
    if bad:
        raise ValueError(f"case numbers {bad} are not cases of {root}: it has {len(cases)} labelled cases (1 to "
                         f"{len(cases)} in path order); give numbers in that range or a data set with more cases.")
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"a case number is given twice in test={list(test)}, validation={list(validation)}.")

    def rel(n: int) -> dict[str, str]:
        return _relative(cases[int(n) - 1], root)

    held = set(numbers)
    return {"training": [rel(n) for n in range(1, len(cases) + 1) if n not in held],
            "validation": [rel(n) for n in validation], "test": [rel(n) for n in test]}


def save_split(split_dict: dict[str, Any], path: str) -> str:
    """Save a split as JSON (atomically); returns ``path``."""
    return write_atomic(str(path), json.dumps(split_dict, indent=2) + "\n")


def load_datalists(
    dataset_dir: str, split_file: str | None = None, seed: int = 0, **split_args: Any
) -> dict[str, list[dict[str, str]]]:
    """Train/validation/test datalists with absolute paths, ready for MONAI datasets.

    Args:
        dataset_dir: data set folder (paths in the split are relative to it).
        split_file: a JSON written by :func:`save_split` / ``python -m t2d_monai split``; None
            computes the split with :func:`make_split` (``seed`` and ``split_args``). Default None.
        seed: see :func:`make_split`. Default 0.
        split_args: ``num_test``, ``num_val``, ``test_fraction``, ``val_fraction``, ``layout``, ``label`` for
            :func:`make_split`.

    Returns:
        ``{"training": [...], "validation": [...], "test": [...]}``, each a list of
        ``{"image": path, "label": path}``.

    Example::

        >>> lists = load_datalists("data/synth")
        >>> monai.data.Dataset(lists["training"], transform)
    """
    root = os.path.abspath(os.path.expanduser(str(dataset_dir)))
    if split_file is None:
        parts = make_split(root, seed, **split_args)
    else:
        if not os.path.isfile(str(split_file)):
            raise FileNotFoundError(f"split_file={split_file!r} does not exist; write one with `python -m t2d_monai split`.")
        with open(str(split_file)) as f:
            parts = json.load(f)
    out = {}
    for key in ("training", "validation", "test"):
        out[key] = [{k: os.path.normpath(os.path.join(root, v)) for k, v in item.items()} for item in parts.get(key, [])]
    return out


def split(
    dataset_dir: str,
    out: str = "split.json",
    seed: int = 0,
    num_test: int | None = None,
    num_val: int | None = None,
    test_fraction: float = PAPER_TEST_FRACTION,
    val_fraction: float = 0.1,
    overwrite: bool = False,
    layout: str = "msd",
    label: str | None = None,
) -> str:
    """Write a reproducible train/validation/test split of a data set as JSON.

    Args:
        dataset_dir: MSD folder with dataset.json (synthetic or real Task08), or a folder with
            imagesTr/+labelsTr/ or images/+labels/ of same-named files.
        out: output JSON path. Default split.json.
        seed: shuffle seed. Default 0.
        num_test: test cases. Default: round(test_fraction * cases).
        num_val: validation cases out of the rest. Default: round(val_fraction * rest).
        test_fraction: default 75/303, the paper's 228/75 split of the 303 Task08 cases.
        val_fraction: default 0.1.
        overwrite: replace an existing out file. Default False.
        layout: ``msd`` or a subject-folder layout (totalsegmentator, pants, abdomenatlas). Default msd.
        label: the class mask of a subject-folder layout, e.g. duodenum. Default None.

    Returns:
        a one-line summary (fire prints it).

    Example::

        python -m t2d_monai split --dataset_dir data/synth --out data/synth/split.json
    """
    if os.path.exists(str(out)) and not overwrite:
        raise FileExistsError(f"out={out!r} exists; pass --overwrite to replace it.")
    parts = make_split(dataset_dir, seed, num_test, num_val, test_fraction, val_fraction, layout, label)
    parts["dataset_dir"] = os.path.abspath(os.path.expanduser(str(dataset_dir)))
    save_split(parts, str(out))
    counts = {k: len(parts[k]) for k in ("training", "validation", "test")}
    return f"{out}: training {counts['training']}, validation {counts['validation']}, test {counts['test']} (seed {seed})"
