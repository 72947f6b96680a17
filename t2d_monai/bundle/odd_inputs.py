"""Every odd input we know of, run through a bundle's own configs: what the product does with each.

``python -m t2d_monai odd_inputs --docs docs/odd_inputs.md`` trains a tiny CPU model per view on synthetic data
(a few iterations: the cases test the pipeline, not the model), then runs each case with
:class:`monai.bundle.ConfigWorkflow` on ``inference.json`` + ``cpu_small.json`` (``train.json`` for the training
cases), exactly as ``python -m monai.bundle run`` would, and writes one table row per case: the input, what the
product is documented to do, what it did, and whether the two agree.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from t2d_monai.bundle.bundle_run import SHAPE, TINY, Context, describe, refused, same_space
from t2d_monai.bundle.paths import bundle_dir, checkpoint_filename
from t2d_monai.utils.files import write_atomic, write_csv_atomic

__all__ = ["CASES", "COLUMNS", "Case", "odd_inputs"]

COLUMNS = ["case", "input", "documented behaviour", "observed", "as documented"]


@dataclass(frozen=True)
class Case:
    """One odd input. ``check(ctx)`` runs it and returns ``(observed, problem)``: what happened in words, and
    what differs from ``documented`` (None when nothing does)."""

    name: str
    input: str
    documented: str
    check: Callable[[Context], tuple[str, str | None]]


# --- the cases ----------------------------------------------------------------------------------------------


def _singleton(shape: tuple[int, int, int], view: str) -> Callable[[Context], tuple[str, str | None]]:
    def check(ctx: Context) -> tuple[str, str | None]:
        image = ctx.nifti("singleton", ctx.ct(shape))
        return same_space(ctx.infer(image, view=view), image)

    return check


def _space_kept(shape: tuple[int, ...], dtype: Any = np.int16, affine: np.ndarray | None = None):
    def check(ctx: Context) -> tuple[str, str | None]:
        image = ctx.nifti("volume", ctx.ct(shape, dtype), affine)
        return same_space(ctx.infer(image), image)

    return check


def _bad_image(shape: tuple[int, ...], pattern: str):
    def check(ctx: Context) -> tuple[str, str | None]:
        return refused(ctx.infer(ctx.nifti("bad", np.zeros(shape, np.int16))), ValueError, pattern)

    return check


def _nan_patch(ctx: Context) -> tuple[str, str | None]:
    vol = ctx.ct(dtype=np.float32)
    vol[20:30, 10:20, 8] = np.nan  # a 10 x 10 patch of one axial slice
    image = ctx.nifti("nan_patch", vol)
    # threshold 0: every voxel with a finite probability is foreground, a NaN one would be background
    result = ctx.infer(image, threshold=0.0)
    observed, problem = same_space(result, image, warning=r"100 non-finite voxel\(s\).*replaced by -100")
    if result.error is None and problem is None:
        import nibabel as nib

        lost = int((np.asarray(nib.load(str(result.outputs[0])).dataobj) == 0).sum())
        observed += f"; voxels lost to NaN at threshold 0: {lost}"
        problem = None if lost == 0 else f"{lost} voxels lost"
    return observed, problem


def _all_nan(ctx: Context) -> tuple[str, str | None]:
    image = ctx.nifti("all_nan", np.full(SHAPE, np.nan, np.float32))
    return refused(ctx.infer(image), ValueError, r"every voxel \(\d+\) is NaN or infinite")


def _thin(ctx: Context) -> tuple[str, str | None]:
    image = ctx.nifti("thin", ctx.ct((32, 3, 12)), np.diag([0.8, 2.0, 2.5, 1.0]))
    return same_space(ctx.infer(image), image)


def _output_is_input_folder(ctx: Context) -> tuple[str, str | None]:
    image = ctx.nifti("same_folder", ctx.ct())
    before = image.read_bytes()
    result = ctx.infer(image, out=image.parent)
    observed, problem = same_space(result, image)
    untouched = image.read_bytes() == before
    observed += f"; input {'unchanged' if untouched else 'MODIFIED'}"
    return observed, problem if untouched else (problem or "") + " input modified"


def _no_images(ctx: Context) -> tuple[str, str | None]:
    folder = ctx.fresh("pngs")
    for i in range(3):
        (folder / f"slice_{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return refused(ctx.infer(folder), FileNotFoundError, r"no images \(.*\) found in")


def _view_typo(ctx: Context) -> tuple[str, str | None]:
    image = ctx.nifti("volume", ctx.ct())
    return refused(ctx.infer(image, view="coronl"), ValueError, r"did you mean 'coronal'\?.*Available options are")


def _stride_beyond_margin(ctx: Context) -> tuple[str, str | None]:
    image = ctx.nifti("volume", ctx.ct())
    return refused(ctx.infer(image, stride=6), ValueError, r"stride=6 with 6-slice windows.*--stride 4 or less")


def _missing_model(ctx: Context) -> tuple[str, str | None]:
    image = ctx.nifti("volume", ctx.ct())
    return refused(ctx.infer(image, ckpt=ctx.work / "nowhere" / "model.pt"), FileNotFoundError, r"no trained model at .*Train one first")


def _bad_checkpoint(make: Callable[[Context, Path], None], kind_name: str, pattern: str):
    def check(ctx: Context) -> tuple[str, str | None]:
        from t2d_monai.handlers import CheckpointMismatchError, CheckpointReadError

        path = ctx.fresh("ckpt") / "model.pt"
        make(ctx, path)
        kind = {"read": CheckpointReadError, "mismatch": CheckpointMismatchError}[kind_name]
        return refused(ctx.infer(ctx.nifti("volume", ctx.ct()), ckpt=path), kind, pattern)

    return check


def _truncated(ctx: Context, path: Path) -> None:
    data = ctx.models["coronal"].read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _text_file(ctx: Context, path: Path) -> None:
    path.write_text("not a checkpoint\n")


def _nifti_file(ctx: Context, path: Path) -> None:
    shutil.copyfile(ctx.nifti("volume", ctx.ct()), path)


def _pickled_module(ctx: Context, path: Path) -> None:
    import torch

    torch.save(torch.nn.Conv2d(1, 1, 1), path)


def _with_signature(**changes: Any) -> Callable[[Context, Path], None]:
    def make(ctx: Context, path: Path) -> None:
        import torch

        state = torch.load(str(ctx.models["coronal"]), map_location="cpu", weights_only=True)
        signature = changes["_replace"] if "_replace" in changes else {**state["signature"], **changes}
        torch.save({**state, "signature": signature}, path)

    return make


def _training_nan(ctx: Context) -> tuple[str, str | None]:
    import nibabel as nib

    data = ctx.fresh("nan_training") / "data"
    shutil.copytree(ctx.data, data)
    images = sorted((data / "imagesTr").glob("*.nii.gz"))
    for path in images:
        img = nib.load(str(path))
        vol = np.asarray(img.dataobj).astype(np.float32)
        vol[:, :, 0] = np.nan  # a whole axial slice of every training case
        nib.save(nib.Nifti1Image(vol, img.affine), str(path))
    root = data.parent / "bundle_root"
    result = ctx.run("train", ["train.json", "cpu_small.json"], bundle_root=str(root), dataset_dir=str(data))
    if result.error is not None:
        return describe(result.error), "expected training to finish"
    loss = float(result.workflow.parser.get_parsed_content("train#trainer").state.output[0]["loss"])
    warned = [w for w in result.warnings if "non-finite voxel" in w]
    observed = f"trained {TINY['num_iterations']} iterations, last loss {loss:.4f}; {len(warned)} warning(s), e.g. " \
               f"{warned[0][:160] if warned else 'none'}"
    problem = None if np.isfinite(loss) and warned else "expected a finite loss and a warning"
    return observed, problem


def _label_mismatch(ctx: Context) -> tuple[str, str | None]:
    import nibabel as nib

    data = ctx.fresh("label_mismatch") / "data"
    shutil.copytree(ctx.data, data)
    label = sorted((data / "labelsTr").glob("*.nii.gz"))[0]
    img = nib.load(str(label))
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[:, :, :-1], img.affine), str(label))
    result = ctx.run("train", ["train.json", "cpu_small.json"], bundle_root=str(data.parent / "root"), dataset_dir=str(data))
    return refused(result, ValueError, r"label .* has shape \(48, 40, 19\) but image .* has shape \(48, 40, 20\)")


_OBLIQUE = np.array([[0.78, -0.17, 0.0, 10.0], [0.17, 0.78, 0.0, -5.0], [0.0, 0.0, 2.5, 3.0], [0, 0, 0, 1.0]])
_CKPT_FIX = "the file, the problem and the fix (copy again or retrain)"

#: every case, in the order of the table
CASES: list[Case] = [
    *[
        Case(f"one voxel thick along {axis}, {view} model", f"{shape} NIfTI", "prediction of exactly the input's shape "
             "and affine (slices narrower than 2 x output_stride are padded for the network and cropped back)",
             _singleton(shape, view))
        for axis, shape in (("Z", (48, 40, 1)), ("Y", (48, 1, 20)), ("X", (1, 40, 20)))
        for view in ("axial", "coronal", "sagittal")
    ],
    Case("trailing singleton 4th axis", "(48, 40, 20, 1) NIfTI", "accepted as 3D; the prediction is (48, 40, 20)",
         _space_kept((48, 40, 20, 1))),
    Case("2D image", "(48, 40) NIfTI", "refused: names the file and says a 3D volume is needed",
         _bad_image((48, 40), r"is a 2D image of shape \(48, 40\)")),
    Case("4D image (two phases)", "(48, 40, 20, 2) NIfTI", "refused: names the file and says to save one phase as 3D",
         _bad_image((48, 40, 20, 2), r"is a 4D image .*save the phase you want as 3D")),
    Case("odd in-plane size", "(33, 29, 7) NIfTI", "prediction of the input's shape", _space_kept((33, 29, 7))),
    Case("volume thinner than the slab", "(32, 3, 12), coronal (3 slices < k = 6)",
         "padded along the slices and cropped back: the input's shape", _thin),
    Case("uint8 image", "(48, 40, 20) uint8", "read as HU like any other type", _space_kept(SHAPE, np.uint8)),
    Case("float64 image", "(48, 40, 20) float64", "read as HU like any other type", _space_kept(SHAPE, np.float64)),
    Case("LPS affine", "diag(-0.8, -0.8, 2.5)", "reoriented to RAS for the network, written back in the input's affine",
         _space_kept(SHAPE, affine=np.diag([-0.8, -0.8, 2.5, 1.0]))),
    Case("oblique affine", "12 degrees in-plane rotation", "the prediction keeps the input's affine",
         _space_kept(SHAPE, affine=_OBLIQUE)),
    Case("NaN patch", "10 x 10 NaN voxels in one slice", "NaN and inf replaced by the HU window's lower bound "
         "(-100) with a warning naming the file and the count; no slice's prediction is lost", _nan_patch),
    Case("all voxels NaN", "(48, 40, 20) of NaN", "refused: nothing to segment", _all_nan),
    Case("output folder = input folder", "--output_dir next to the image", "the input is never modified; the "
         "prediction is written beside it as <name>_seg.nii.gz", _output_is_input_folder),
    Case("folder without images", "a folder of PNG files", "refused: lists the image types it looks for", _no_images),
    Case("view typo", "--view coronl", "refused: lists the valid views", _view_typo),
    Case("window stride beyond the supervised slices", "--stride 6 (6-slice windows, slab_margin 1)", "refused: "
         "names the stride, the margin and the largest stride that fits", _stride_beyond_margin),
    Case("no trained model", "--ckpt_file to a missing file", "refused before any data is read: names the file and "
         "the training command", _missing_model),
    Case("truncated checkpoint", "model.pt cut in half", "refused before any data is read: " + _CKPT_FIX,
         _bad_checkpoint(_truncated, "read", r"model.pt.*truncated or corrupted.*retrain it")),
    Case("text file as checkpoint", "model.pt holding text", "refused: not a PyTorch checkpoint, " + _CKPT_FIX,
         _bad_checkpoint(_text_file, "read", r"model.pt.*not a PyTorch checkpoint")),
    Case("NIfTI as checkpoint", "model.pt that is a CT volume", "refused: not a PyTorch checkpoint",
         _bad_checkpoint(_nifti_file, "read", r"model.pt.*not a PyTorch checkpoint")),
    Case("pickled network as checkpoint", "torch.save(module)", "refused: state dicts only (weights_only=True), "
         "says how to save one", _bad_checkpoint(_pickled_module, "read", r"holds Python objects.*state_dict")),
    Case("checkpoint of another slab thickness", "signature num_slices = 15", "refused: names both settings and the "
         "override", _bad_checkpoint(_with_signature(num_slices=15), "mismatch",
                                     r"num_slices: the checkpoint was trained with 15, the config asks for 6")),
    Case("checkpoint of another view", "signature view = axial", "refused: names both views",
         _bad_checkpoint(_with_signature(view="axial"), "mismatch",
                         r"view: the checkpoint was trained with 'axial', the config asks for 'coronal'")),
    Case("checkpoint of another network family", "a 3D U-Net checkpoint", "refused: names the family and the overlays "
         "to run it with", _bad_checkpoint(
             _with_signature(_replace={"network": "UNet", "spatial_dims": 3, "patch_size": "32x32x32"}), "mismatch",
             r"another network family \(network='UNet'.*patch3d.json")),
    Case("NaN in training images (training)", "a NaN slice in every training case", "training runs: the voxels are "
         "replaced (warning per case), the loss stays finite", _training_nan),
    Case("label of another shape (training)", "label (48, 40, 19) for image (48, 40, 20)", "refused: names both files "
         "and shapes", _label_mismatch),
]


def _train_models(ctx: Context) -> None:
    """The synthetic data and one tiny model per view (a few iterations: the cases test the pipeline)."""
    from t2d_monai.data.synthetic_layouts import synth

    synth(out=str(ctx.data), num_cases=5, num_test=1, seed=0, shape=list(SHAPE))
    for view in ("coronal", "axial", "sagittal"):
        result = ctx.run("train", ["train.json", "cpu_small.json"], dataset_dir=str(ctx.data), view=view)
        if result.error is not None:
            raise RuntimeError(f"training the tiny {view} model failed: {result.error}") from result.error
        ctx.models[view] = ctx.root / "models" / checkpoint_filename(view)


def _markdown(rows: list[dict[str, str]], command: str, seconds: float) -> str:
    ok = sum(r["as documented"] == "yes" for r in rows)
    lines = [
        "# Odd inputs: what the bundle does with each",
        "",
        "Written by the command below (`t2d_monai/bundle/odd_inputs.py`); do not edit by hand, run it again.",
        "Every case runs through the bundle's own configs with `monai.bundle.ConfigWorkflow`, as",
        "`python -m monai.bundle run` does: `inference.json` + `cpu_small.json` (`train.json` + `cpu_small.json` for the",
        "training cases), with a tiny model per view trained for a few iterations on synthetic data (the cases test",
        "the pipeline, not the model).",
        "",
        "```bash",
        command,
        "```",
        "",
        f"{ok} of {len(rows)} cases as documented; {seconds:.0f} s in all.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for r in rows:
        lines.append("| " + " | ".join(str(r[c]).replace("|", "\\|") for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def odd_inputs(docs: str | None = None, work_dir: str | None = None, bundle: str = "hepatic_vessel",
               cases: str | None = None) -> str:
    """
    Run every odd-input case through the bundle's configs and report what happened (progress on stdout).

    Args:
        docs: write the table here as Markdown (and a CSV beside it); None: print it only.
        work_dir: folder for the data, models and outputs (kept); None: a temporary folder, removed at the end.
        bundle: a bundle folder name under ``bundles/`` or a path. Defaults to ``hepatic_vessel``.
        cases: comma-separated substrings; only cases whose name contains one of them run (default: all).

    Raises:
        ValueError: ``work_dir`` exists and is not empty.

    Returns:
        the path of the Markdown table (``docs``), or the table itself when ``docs`` is None. One row per case:
        ``case``, ``input``, ``documented behaviour``, ``observed``, ``as documented`` (``yes``, or
        ``NO: what differs``); the CSV beside the Markdown has the same columns.

    Example::

        python -m t2d_monai odd_inputs --docs docs/odd_inputs.md
    """
    start = time.perf_counter()
    chosen = [c for c in CASES if not cases or any(s.strip() in c.name for s in str(cases).split(","))]
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="t2d_odd_inputs_"))
    work.mkdir(parents=True, exist_ok=True)
    if work_dir and any(work.iterdir()):
        raise ValueError(f"work_dir {str(work)!r} is not empty; give a new or empty folder (nothing in it is overwritten).")
    rows = []
    try:
        ctx = Context(work, Path(bundle) if os.path.isdir(bundle) else bundle_dir(bundle))
        print(f"[odd_inputs] training a tiny model per view in {work}", flush=True)
        _train_models(ctx)
        for i, case in enumerate(chosen, 1):
            observed, problem = case.check(ctx)
            observed = observed.replace(str(work), "<work>")  # the same table from any work folder
            rows.append({"case": case.name, "input": case.input, "documented behaviour": case.documented,
                         "observed": observed, "as documented": "yes" if problem is None else f"NO: {problem}"})
            print(f"[odd_inputs] {i}/{len(chosen)} {case.name}: {rows[-1]['as documented']}", flush=True)
    finally:
        if work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    command = "python -m t2d_monai odd_inputs" + (f" --docs {docs}" if docs else "")
    text = _markdown(rows, command, time.perf_counter() - start)
    if not docs:
        return text
    write_atomic(docs, text)
    write_csv_atomic(os.path.splitext(docs)[0] + ".csv", rows, COLUMNS)
    print(f"[odd_inputs] wrote {docs}", flush=True)
    return docs
