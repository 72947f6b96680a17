"""What each trained row predicts on a window of constant input, and how often its training saw one.

The synthetic volumes' first and last coronal slices are air, below the HU window, so after windowing a slab there
is one constant value (end_padding.md). Where every convolution is followed by instance norm without a learnt shift
(the CPU recipe's ``norm: instance``), a constant input gives zero features whatever the convolutions' biases, so the
network's output on it is its head's bias, unless a layer with a learnt shift comes after the last norm. Per row
and seed (each row's chosen learning rate):

- the network's logit at each window position on one window of air (its mean in-plane; inner positions, those the
  slab loss trains),
  and whether it is the bias of the slice head's 1x1 convolution alone (every feature before it zero);
- the vessel share predicted on a constant volume (a held-out case preprocessed as the benchmark does, every voxel
  then set to its air value, the case's minimum), segmented by the row's own inferer and post-processing: a row that
  predicts vessel there floods every window of air;
- the share of the row's training crops (its ``train#preprocessing``: vessel- and background-centred crops, then
  slabs) whose image is constant, over ``DRAWS`` passes of the training volumes.

Usage (from the folder the benchmark ran in; ``<out_dir>`` of the step-27 benchmark command, see README.md)::

    python docs/experiments/step27_thickness/constant_window.py runs/step27/thickness \
        deeplab_k1 early_k3 early_k6 early_k9 early_k15 t2d_k3 t2d_k6 t2d_k9 t2d_k15 > constant_window.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from monai.bundle import ConfigParser
from monai.data import decollate_batch, list_data_collate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "demo_recipe"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from end_padding import seed_folders  # noqa: E402
from recall_by_radius import load_run  # noqa: E402

DRAWS = 5  # passes over the training volumes when counting constant crops


def constant_response(folder: Path) -> tuple[float, float, torch.Tensor, bool, ConfigParser]:
    """Percent of the voxels predicted vessel on the first held-out case with every voxel set to its air value, and
    the mean vessel probability the inferer gives there (before the threshold); the network's logit per window
    position on one window of air (its in-plane mean); whether those logits are the head's 1x1 convolution bias
    alone (constant in-plane, every feature before the head zero); and the run's config parser."""
    parser, given, network, inferer = load_run(folder)
    case = json.loads(Path(given["split_file"]).read_text())["test"][0]
    batch = list_data_collate([parser.get_parsed_content("validate#preprocessing")(
        {k: str(Path(given["dataset_dir"]) / v) for k, v in case.items()})])
    batch["image"][:] = batch["image"].min()  # the air value after windowing: one constant everywhere
    with torch.no_grad():
        batch["pred"] = inferer(batch["image"], network)
        window = network(torch.full((1, parser.get_parsed_content("num_slices"), *parser.get_parsed_content(
            "train_crop")), float(batch["image"].min())))[0]
    pred = parser.get_parsed_content("validate#postprocessing")(decollate_batch(batch)[0])["pred"]
    logits = window.mean(dim=(1, 2))  # per window position; constant in-plane where every feature is zero
    constant = torch.equal(window.amax(dim=(1, 2)), window.amin(dim=(1, 2)))
    share = float(100 * (torch.as_tensor(pred) > 0.5).float().mean())
    probability = batch["pred"]  # the validation inferer's output is a probability (it applies the sigmoid)
    if probability.min() < 0 or probability.max() > 1:
        raise SystemExit(f"{folder}: the inferer's output is not a probability.")
    return (share, float(probability.mean()), logits,
            constant and torch.allclose(logits, getattr(network.head, "conv", network.head).bias, atol=1e-5), parser)


def constant_crop_share(parser: ConfigParser) -> tuple[float, int]:
    """Percent of the training crops (``parser``'s ``train#preprocessing``) whose image is one constant value, and the
    number of crops drawn."""
    transform = parser.get_parsed_content("train#preprocessing")
    transform.set_random_state(seed=0)
    files = parser.get_parsed_content("datasplit")["training"]
    constant = total = 0
    for _ in range(DRAWS):
        for case in files:
            out = transform(dict(case))
            for crop in out if isinstance(out, list) else [out]:
                image = torch.as_tensor(crop["image"])
                constant += bool(image.max() == image.min())
                total += 1
    return 100 * constant / total, total


def row_line(out_dir: Path, row: str) -> str:
    """One Markdown row: the chosen rate, per seed the vessel share on a constant volume, then constant crops."""
    lr, seeds = seed_folders(out_dir, row)
    shares, probabilities, logits, bias_only, parsers = zip(*(constant_response(folder) for folder in seeds))
    inner = [f"{float(x[1:-1].min()):.2f} to {float(x[1:-1].max()):.2f}" if len(x) > 2 else f"{float(x[0]):.2f}"
             for x in logits]
    crops, total = constant_crop_share(parsers[0])  # the crops depend on the row's config, not on the seed's network
    volume = " / ".join(f"{s:.1f} ({p:.3f})" for s, p in zip(shares, probabilities))
    return (f"| {row} | {lr if lr is not None else 'config'} | {volume}"
            + " | " + " / ".join(inner) + f" | {'yes' if all(bias_only) else 'no'} | {crops:.2f} ({total} crops) |")


def main(out_dir: str, rows: list[str]) -> None:
    print("| row | lr | vessel % predicted on a constant volume (mean probability), per seed "
          "| logit on a window of air, inner positions, per seed | that logit is the head's bias alone "
          "| constant training crops % |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(row_line(Path(out_dir), row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
