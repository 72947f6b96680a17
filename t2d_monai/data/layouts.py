"""Data sets with one folder per subject and one mask file per class: TotalSegmentator, PanTS, AbdomenAtlas.

The paper's five targets besides hepatic vessel are labelled in public data sets whose layout is not MSD's
(issue 13): a subject folder holds the CT and a ``segmentations/`` folder with one binary NIfTI per class. A
:class:`SubjectLayout` says where the CT and the class masks of a subject lie, as two path patterns with the
fields ``{subject}`` and ``{label}`` (``{subject}`` one path component), and where the layout's own split file
is, if it has one. The layouts are data (:data:`LAYOUTS`); :func:`find_subject_cases` reads any of them:

=================  ======================================  =================================================
layout             image                                   label
=================  ======================================  =================================================
totalsegmentator   ``<subject>/ct.nii.gz``                 ``<subject>/segmentations/<label>.nii.gz``
                   (split: ``meta.csv``, ``image_id;split``, values ``train`` / ``val`` / ``test``)
pants              ``ImageTr/<subject>/ct.nii.gz``         ``LabelTr/<subject>/segmentations/<label>.nii.gz``
abdomenatlas       ``<subject>/ct.nii.gz`` (``BDMAP_*``)   ``<subject>/segmentations/<label>.nii.gz``
=================  ======================================  =================================================
"""

from __future__ import annotations

import csv
import glob
import os
import re
from dataclasses import dataclass

__all__ = ["LAYOUTS", "SubjectLayout", "case_name", "find_subject_cases", "get_layout", "read_layout_split"]


@dataclass(frozen=True)
class SubjectLayout:
    """Where a subject's CT and class masks lie, relative to the data set folder.

    Attributes:
        image: path pattern of the CT with the field ``{subject}``, e.g. ``"{subject}/ct.nii.gz"``.
        label: path pattern of one class mask with ``{subject}`` and ``{label}``.
        split_file: the layout's own split table (relative path), or None. Defaults to None.
        split_id_column: its column of subject ids. Defaults to ``"image_id"``.
        split_column: its column of split names. Defaults to ``"split"``.
        split_names: split name in the file -> ``"training"`` / ``"validation"`` / ``"test"``.
        delimiter: its column separator. Defaults to ``";"`` (TotalSegmentator's ``meta.csv``).
    """

    image: str
    label: str
    split_file: str | None = None
    split_id_column: str = "image_id"
    split_column: str = "split"
    split_names: tuple[tuple[str, str], ...] = (("train", "training"), ("val", "validation"), ("test", "test"))
    delimiter: str = ";"

    def __post_init__(self) -> None:
        if "{subject}" not in self.image or "{subject}" not in self.label or "{label}" not in self.label:
            raise ValueError(
                "a SubjectLayout needs {subject} in image and {subject} and {label} in label, got "
                f"image={self.image!r}, label={self.label!r}."
            )


#: the layouts of the public data sets that label the paper's targets (issue 13)
LAYOUTS: dict[str, SubjectLayout] = {
    "totalsegmentator": SubjectLayout("{subject}/ct.nii.gz", "{subject}/segmentations/{label}.nii.gz", "meta.csv"),
    "pants": SubjectLayout("ImageTr/{subject}/ct.nii.gz", "LabelTr/{subject}/segmentations/{label}.nii.gz"),
    "abdomenatlas": SubjectLayout("{subject}/ct.nii.gz", "{subject}/segmentations/{label}.nii.gz"),
}


def case_name(path: str) -> str:
    """A case's name in reports: the file name (``hepaticvessel_001.nii.gz``), or, where a layout names every CT
    alike (``ct.nii.gz``), the subject folder with it (``s0001/ct.nii.gz``), so that cases stay apart."""
    path = os.path.normpath(str(path))
    name = os.path.basename(path)
    generic = {os.path.basename(spec.image) for spec in LAYOUTS.values()}
    return f"{os.path.basename(os.path.dirname(path))}/{name}" if name in generic else name


def get_layout(layout: str | SubjectLayout) -> SubjectLayout:
    """``layout`` itself, or the :data:`LAYOUTS` entry of that name (ValueError listing the names)."""
    if isinstance(layout, SubjectLayout):
        return layout
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {sorted(LAYOUTS)} or give a SubjectLayout.")
    return LAYOUTS[layout]


def _subjects(root: str, pattern: str) -> dict[str, str]:
    """Subject id -> path of every file that matches ``pattern`` (``{subject}`` one path component, any
    ``{label}``)."""
    fields = re.split(r"(\{subject\}|\{label\})", pattern)
    glob_pattern = "".join("*" if f in ("{subject}", "{label}") else glob.escape(f) for f in fields)
    regex = "".join({"{subject}": "(?P<subject>[^/]+)", "{label}": "[^/]+"}.get(f, re.escape(f)) for f in fields)
    found = {}
    for path in glob.glob(os.path.join(glob.escape(root), glob_pattern)):
        match = re.fullmatch(regex, os.path.relpath(path, root).replace(os.sep, "/"))
        if match:
            found[match.group("subject")] = path
    return found


def find_subject_cases(dataset_dir: str, label: str, layout: str | SubjectLayout = "totalsegmentator") -> list[dict]:
    """The cases of a subject-folder data set for one class, sorted by subject.

    Args:
        dataset_dir: the data set folder.
        label: the class name, the mask file's name without ``.nii.gz`` (e.g. ``"duodenum"``).
        layout: a :data:`LAYOUTS` name or a :class:`SubjectLayout`. Defaults to ``"totalsegmentator"``.

    Returns:
        ``[{"image": path, "label": path, "subject": id}, ...]`` with absolute paths.

    Raises:
        FileNotFoundError: no such folder; no subject CT in it; a subject with masks but no CT (named).
        ValueError: unknown layout; subjects without the class file (named, with the classes they have).
    """
    spec = get_layout(layout)
    root = os.path.abspath(os.path.expanduser(str(dataset_dir)))
    if not os.path.isdir(root):
        raise FileNotFoundError(f"dataset_dir={dataset_dir!r} is not a folder.")
    images = _subjects(root, spec.image)
    with_masks = _subjects(root, spec.label)
    no_ct = sorted(set(with_masks) - set(images))
    if no_ct:
        where = spec.image.format(subject=no_ct[0])
        raise FileNotFoundError(
            f"{len(no_ct)} subject(s) have segmentations but no CT, e.g. {no_ct[:5]}: expected {where!r} in "
            f"{root!r} (layout image pattern {spec.image!r}). Add the CT or remove the subject folder."
        )
    if not images:
        raise FileNotFoundError(
            f"no subject CT in {root!r}: expected files like {spec.image.format(subject='<subject>')!r}. Is this the "
            f"data set folder, and the right layout (one of {sorted(LAYOUTS)})?"
        )
    cases, missing = [], []
    for subject in sorted(images):
        mask = os.path.join(root, spec.label.format(subject=subject, label=label))
        if os.path.isfile(mask):
            cases.append({"image": images[subject], "label": mask, "subject": subject})
        else:
            missing.append(subject)
    if missing:
        folder = os.path.dirname(os.path.join(root, spec.label.format(subject=missing[0], label=label)))
        have = sorted(f[: -len(".nii.gz")] for f in os.listdir(folder) if f.endswith(".nii.gz")) \
            if os.path.isdir(folder) else []
        raise ValueError(
            f"{len(missing)} of {len(images)} subjects have no {label!r} mask, e.g. {missing[:5]} (no "
            f"{spec.label.format(subject=missing[0], label=label)!r}); classes there: {have[:12] or 'none'}. "
            "Check the class name (the file name without .nii.gz)."
        )
    return cases


def read_layout_split(dataset_dir: str, layout: str | SubjectLayout, subjects: list[str]) -> dict[str, list[str]] | None:
    """The layout's own split of ``subjects``, or None when the layout has no split file or it is absent.

    Returns:
        ``{"training": [...], "validation": [...], "test": [...]}`` of subject ids (validation empty when the
        file has no validation split, as newer TotalSegmentator releases); subjects the file does not name are
        left out.

    Raises:
        ValueError: the file lacks its id or split column, names a split it does not know, or names subjects
            that are not in the data set (listed).
    """
    spec = get_layout(layout)
    if spec.split_file is None:
        return None
    path = os.path.join(os.path.abspath(os.path.expanduser(str(dataset_dir))), spec.split_file)
    if not os.path.isfile(path):
        return None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter=spec.delimiter))
    columns = set(rows[0]) if rows else set()
    if not {spec.split_id_column, spec.split_column} <= columns:
        raise ValueError(f"{path!r} needs the columns {spec.split_id_column!r} and {spec.split_column!r} "
                         f"(separated by {spec.delimiter!r}), found {sorted(columns)}.")
    names = dict(spec.split_names)
    parts: dict[str, list[str]] = {"training": [], "validation": [], "test": []}
    known, unknown = set(subjects), []
    for row in rows:
        subject, name = row[spec.split_id_column].strip(), row[spec.split_column].strip()
        if name not in names:
            raise ValueError(f"{path!r}: subject {subject!r} has split {name!r}; known splits: {sorted(names)}.")
        if subject not in known:
            unknown.append(subject)
            continue
        parts[names[name]].append(subject)
    if unknown:
        raise ValueError(f"{path!r} names {len(unknown)} subject(s) that are not in the data set, e.g. "
                         f"{unknown[:5]}; fix the split file or restore those subjects.")
    return parts
