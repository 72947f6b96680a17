"""Where does each row miss vessel? Recall of the true vessel voxels of the held-out cases, by local vessel radius.

For trained benchmark runs (``<out_dir>/<method>/seed<s>`` folders of ``python -m t2d_monai benchmark``), segment the
held-out cases of the run's split file with the row's own validation inferer and post-processing (as the benchmark's
evaluation does) and count, per true vessel voxel, whether it was predicted. A voxel's local radius is the local
thickness of the true mask (the radius of the largest ball inside the mask that covers the voxel, in mm, from the
case's voxel spacing); its orientation is the vessel axis of the smoothed mask's structure tensor, reported as in the
coronal slices (angle to Y above 60 degrees) or across them. Also: the share of predicted voxels that are not vessel,
and of those false positives the share that touches a true vessel voxel along Y (the coronal slab axis: a vessel
smeared into the next slice) and along X or Z (in the slice: a vessel drawn too wide).

The bundle's configs are today's: ``--set key=value`` (JSON values, repeatable) changes them for every run whose
config has that id, e.g. to evaluate a run with the settings it was made with.

Usage (each run as ``name=folder``; the first run's label is the reference, every run must share its split)::

    python docs/experiments/demo_recipe/recall_by_radius.py --out recall.md \\
        t2d=/work/runs/step22/demo_scale_t2d_depth4/t2d_k6/seed0 \\
        unet3d=/work/runs/step22/demo_scale_unet3d_seeds/unet3d/seed0
"""

import argparse
import json
import shlex
from pathlib import Path

import numpy as np
import torch
from monai.data import DataLoader, Dataset, decollate_batch
from monai.transforms import AsDiscreted, Compose
from scipy import ndimage

from t2d_monai.benchmarks.methods import resolve_method
from t2d_monai.benchmarks.evaluation import load_checkpoint
from t2d_monai.benchmarks.runner import MethodRun

BUNDLE = Path(__file__).resolve().parents[3] / "bundles" / "hepatic_vessel"
RADIUS_EDGES_MM = (1.2, 2.0)  # bins: below 1.2 mm, 1.2 to 2 mm, 2 mm and above
RUN_KEYS = ("bundle_root", "dataset_dir", "device", "amp", "seed")


def predict(folder: Path, cases: str = "test", probabilities: bool = False,
            **overrides) -> dict[str, tuple[np.ndarray, np.ndarray, tuple]]:
    """Per case of the split's ``cases`` list (``"test"``: the held-out cases): (prediction, label, spacing) as the
    benchmark's evaluation makes them, or with ``probabilities`` the vessel probability before the final
    binarisation; ``overrides`` change the run's config (e.g. ``weighting="gaussian"``) where it has the id."""
    return predict_lists(folder, (cases,), probabilities, **overrides)[cases]


def method_run(folder: Path, record: dict) -> MethodRun:
    """The run in ``folder`` (a benchmark's seed folder) as the benchmark built it, on the CPU, from its
    ``train_result.json`` (``record``): its method, seed and the overrides it was trained with."""
    given = record["overrides"]
    trained = {k: v for k, v in given.items() if k not in RUN_KEYS}
    return MethodRun(resolve_method(record["method"]), folder, given["dataset_dir"], trained, "cpu", BUNDLE,
                     seed=record["seed"])


def load_run(folder: Path, **overrides):
    """The trained run in ``folder`` (a benchmark's seed folder) as the benchmark built it: its config parser
    (``overrides`` applied where the config has the id), the overrides its ``train_result.json`` records, its
    network with the best checkpoint loaded (eval mode, CPU) and its validation inferer."""
    record = json.loads((folder / "train_result.json").read_text())
    given = record["overrides"]
    run = method_run(folder, record)
    parser = run.parser(run.train_files)
    parser.update({key: value for key, value in overrides.items() if key in parser})  # ids this row's config has
    network, inferer = parser.get_parsed_content("network"), parser.get_parsed_content("validate#inferer")
    load_checkpoint(parser.get_parsed_content("ckpt_file"), parser.get_parsed_content("signature"), network, "cpu")
    return parser, given, network.eval(), inferer


def predict_lists(folder: Path, lists: tuple[str, ...], probabilities: bool = False,
                  **overrides) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray, tuple]]]:
    """:func:`predict` for several of the split's lists (e.g. ``("validation", "test")``), the network loaded once:
    list name -> case -> (prediction or probability, label, spacing)."""
    parser, given, network, inferer = load_run(folder, **overrides)
    split = json.loads(Path(given["split_file"]).read_text())
    pre = parser.get_parsed_content("validate#preprocessing")
    post = parser.get_parsed_content("validate#postprocessing")
    if probabilities:  # every post-processing step but the binarisation
        post = Compose([t for t in post.transforms if not isinstance(t, AsDiscreted)])
    out = {name: {} for name in lists}
    with torch.no_grad():
        for name in lists:
            files = [{k: str(Path(given["dataset_dir"]) / v) for k, v in case.items()} for case in split[name]]
            for case, batch in zip(files, DataLoader(Dataset(files, transform=pre), batch_size=1, num_workers=0)):
                batch["pred"] = inferer(batch["image"], network)
                item = post(decollate_batch(batch)[0])
                spacing = tuple(float(s) for s in item["label"].pixdim[:3])
                pred = item["pred"][0].numpy()
                if probabilities and (pred.min() < 0 or pred.max() > 1):
                    raise ValueError(f"{folder}: the post-processed prediction is not a probability "
                                     f"(range {pred.min():.3g} to {pred.max():.3g}).")
                out[name][Path(case["image"]).name] = (pred if probabilities else pred > 0.5,
                                                       item["label"][0].numpy() > 0.5, spacing)
    return out


def parse_sets(pairs: list[str]) -> dict:
    """``["key=value", ...]`` (value JSON, or else a string) as config overrides."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {pair!r}.")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


def local_radius_at_least(label: np.ndarray, spacing: tuple, radius_mm: float) -> np.ndarray:
    """Vessel voxels covered by a ball of radius >= ``radius_mm`` inside the mask (local thickness >= radius)."""
    inside = ndimage.distance_transform_edt(label, sampling=spacing)
    core = inside >= radius_mm
    if not core.any():
        return np.zeros_like(label)
    return label & (ndimage.distance_transform_edt(~core, sampling=spacing) < radius_mm)


def across_coronal(label: np.ndarray, spacing: tuple) -> np.ndarray:
    """Per vessel voxel (in ``label[label]`` order): True where the vessel axis is within 60 degrees of Y."""
    smooth = ndimage.gaussian_filter(label.astype(np.float32), sigma=[1.5 / s for s in spacing])
    grads = np.gradient(smooth, *spacing)
    tensor = np.empty((int(label.sum()), 3, 3), np.float32)
    for i in range(3):
        for j in range(i, 3):
            t = ndimage.gaussian_filter(grads[i] * grads[j], sigma=[2.0 / s for s in spacing])[label]
            tensor[:, i, j] = tensor[:, j, i] = t
    axis = np.linalg.eigh(tensor)[1][:, :, 0]  # the smallest eigenvalue's vector runs along the tube
    return np.abs(axis[:, 1]) >= 0.5


def next_to(label: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Voxels one step from a ``label`` voxel along one of ``axes`` (face neighbours only)."""
    structure = np.zeros((3, 3, 3), bool)
    structure[1, 1, 1] = True
    for axis in axes:
        for end in (0, 2):
            index = [1, 1, 1]
            index[axis] = end
            structure[tuple(index)] = True
    return ndimage.binary_dilation(label, structure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="markdown file to write")
    parser.add_argument("--set", action="append", default=[], help="key=value config override for every run")
    parser.add_argument("runs", nargs="+", help="name=run folder (a seed folder of a benchmark)")
    args = parser.parse_args()
    runs = dict(spec.split("=", 1) for spec in args.runs)
    overrides = parse_sets(args.set)
    preds = {name: predict(Path(folder), **overrides) for name, folder in runs.items()}
    reference = next(iter(preds.values()))
    bins = ["r < 1.2 mm", "1.2 <= r < 2 mm", "r >= 2 mm"]
    hits = {name: np.zeros((3, 2)) for name in preds}  # radius bin x (in coronal slices, across them)
    totals = np.zeros((3, 2))
    false_pos = {name: [0, 0, 0, 0] for name in preds}  # false, predicted, next to vessel along Y, along X or Z
    for case, (_, label, spacing) in reference.items():
        radius_bin = np.zeros(label.shape, np.int64)
        for edge in RADIUS_EDGES_MM:
            radius_bin += local_radius_at_least(label, spacing, edge)
        rb, across = radius_bin[label], across_coronal(label, spacing).astype(np.int64)
        np.add.at(totals, (rb, across), 1)
        for name, by_case in preds.items():
            pred, other_label, _ = by_case[case]
            if not np.array_equal(other_label, label):
                raise ValueError(f"{name}: the label of {case} differs from the first run's; use runs of one split.")
            hit = pred[label]
            np.add.at(hits[name], (rb[hit], across[hit]), 1)
            wrong = pred & ~label
            false_pos[name][0] += int(wrong.sum())
            false_pos[name][1] += int(pred.sum())
            false_pos[name][2] += int((wrong & next_to(label, (1,))).sum())
            false_pos[name][3] += int((wrong & next_to(label, (0, 2))).sum())
    cols = [f"{b}, {o}" for b in bins for o in ("in coronal slices", "across")]
    lines = [
        f"Held-out cases: {', '.join(reference)}. Command: `python docs/experiments/demo_recipe/recall_by_radius.py "
        + " ".join(["--out", args.out] + [f"--set {shlex.quote(s)}" for s in args.set] + args.runs) + "`",
        "",
        "| row | " + " | ".join(cols) + " | all vessel voxels | predicted voxels that are not vessel "
        "| of those, next to a vessel along Y | along X or Z |",
        "|---" * (len(cols) + 5) + "|",
        "| true vessel voxels | " + " | ".join(str(int(t)) for t in totals.ravel()) + f" | {int(totals.sum())} | | | |",
    ]
    for name, h in hits.items():
        recall = [f"{a / t:.3f}" if t else "n/a" for a, t in zip(h.ravel(), totals.ravel())]
        fp, predicted, along_y, in_slice = false_pos[name]
        lines.append(f"| {name} recall | " + " | ".join(recall) + f" | {h.sum() / totals.sum():.3f} | "
                     f"{fp / max(predicted, 1):.3f} | {along_y / max(fp, 1):.3f} | {in_slice / max(fp, 1):.3f} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
