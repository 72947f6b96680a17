"""Can a k-slice network keep its slices apart? The paper's Sec. 3.2 argument, measured on a toy task.

Run ``python -m t2d_monai slice_mapping``; it writes ``slice_mapping.md`` and ``.csv`` into ``out_dir``
(default ``docs``).

Every slice of a window is independent smooth noise and its mask is that slice above a threshold, so
the only thing to learn is to give slice ``s`` the mask of slice ``s``: no inter-slice context helps.
Yu et al. (Sec. 3.2) argue that a 2D network fed many slices as channels loses this one-to-one
relationship (early fusion), and that Early-Stage Multiplexing and slice-sensitive attention restore
it. Each variant (a :class:`~t2d_monai.networks.T2DNet`) is trained from the same seed with the same
optimiser and the same number of iterations, then scored on fresh windows: Dice over all slices, and
the worst slice position's Dice (a network that mixes slices up fails some positions).
"""

from __future__ import annotations

import os
import time
from typing import Any

import torch
import torch.nn.functional as F

from t2d_monai.benchmarks.machine import cpu_name
from t2d_monai.utils.files import write_atomic, write_csv_atomic

__all__ = ["SLICE_MAPPING_VARIANTS", "slice_mapping", "toy_windows"]

#: label -> T2DNet keyword arguments (``num_slices`` None: the benchmark's ``num_slices``)
SLICE_MAPPING_VARIANTS: dict[str, dict[str, Any]] = {
    "single slice (k=1)": {"num_slices": 1, "fusion": "early", "attention": None},
    "early fusion": {"num_slices": None, "fusion": "early", "attention": None},
    "ESM": {"num_slices": None, "fusion": "esm", "attention": None},
    "ESM + SSA": {"num_slices": None, "fusion": "esm", "attention": "ssa"},
}


def toy_windows(
    batch: int, num_slices: int, size: int, generator: torch.Generator, threshold: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(batch, num_slices, size, size)`` standardised smooth noise, independent per slice, and its mask above ``threshold``."""
    noise = torch.rand(batch * num_slices, 1, size, size, generator=generator)
    x = F.avg_pool2d(noise, 5, 1, 2).reshape(batch, num_slices, size, size)
    x = (x - x.mean()) / x.std()
    return x, (x > threshold).float()


def slice_mapping(
    out_dir: str = "docs",
    num_slices: int = 15,
    iterations: int = 300,
    backbone: str = "resnet18",
    decoder_channels: int = 64,
    size: int = 64,
    batch: int = 2,
    learning_rate: float = 2e-3,
    eval_windows: int = 8,
    threads: int | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Train each variant of :data:`SLICE_MAPPING_VARIANTS` on the toy task and write the table.

    Args:
        out_dir: folder of ``slice_mapping.md`` and ``.csv`` (default ``docs``).
        num_slices: slices per window k for the thick variants (default 15, the paper's).
        iterations: training iterations per variant (AdamW, the slab Dice loss summed over the batch).
        backbone, decoder_channels: network size (default the CPU bundle overlay's: resnet18, 64).
        size: side of the square slices.
        batch: windows per iteration.
        learning_rate: AdamW learning rate (weight decay 1e-4, as the CPU overlay).
        eval_windows: fresh windows to score each variant on.
        threads: ``torch.set_num_threads`` (default torch's).
        seed: seed of the weights and of the toy data (the same for every variant).

    Returns:
        the rows (also written as CSV).
    """
    from monai.metrics import compute_dice

    from t2d_monai.losses import SlabDiceLoss
    from t2d_monai.networks import T2DNet

    if int(iterations) < 1 or int(num_slices) < 1:
        raise ValueError(f"iterations and num_slices must be >= 1, got {iterations!r} and {num_slices!r}.")
    if threads:
        torch.set_num_threads(int(threads))
    rows = []
    for label, kwargs in SLICE_MAPPING_VARIANTS.items():
        k = int(kwargs["num_slices"] or num_slices)
        torch.manual_seed(seed)
        net = T2DNet(
            k, 1, backbone=backbone, decoder_channels=decoder_channels, fusion=kwargs["fusion"],
            attention=kwargs["attention"],
        )
        optimizer = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=1e-4)
        loss_fn = SlabDiceLoss(sigmoid=True, batch=True)
        data = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        net.train()
        for i in range(int(iterations)):
            x, y = toy_windows(batch, k, size, data)
            loss = loss_fn(net(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if (i + 1) % max(1, int(iterations) // 4) == 0:
                print(f"[slice_mapping] {label}: iteration {i + 1}/{iterations}, loss {float(loss):.3f}", flush=True)
        seconds = time.perf_counter() - start
        net.eval()
        test = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            x, y = toy_windows(int(eval_windows), k, size, test)
            pred = (net(x) > 0).float()
        # (1, k, windows * H * W): one Dice per slice position, and one over everything
        per_position = compute_dice(pred.transpose(0, 1).reshape(1, k, -1), y.transpose(0, 1).reshape(1, k, -1))
        overall = compute_dice(pred.reshape(1, 1, -1), y.reshape(1, 1, -1))
        rows.append({
            "variant": label,
            "slices": k,
            "dice": round(float(overall), 4),
            "worst_position_dice": round(float(per_position.min()), 4),
            "parameters": sum(p.numel() for p in net.parameters()),
            "train_seconds": round(seconds, 1),
        })
        print(f"[slice_mapping] {label}: Dice {rows[-1]['dice']:.3f}", flush=True)
    _write(out_dir, rows, num_slices, iterations, backbone, decoder_channels, size, batch, learning_rate, seed)
    return rows


def _write(out_dir, rows, num_slices, iterations, backbone, decoder_channels, size, batch, lr, seed) -> None:
    write_csv_atomic(os.path.join(out_dir, "slice_mapping.csv"), rows, list(rows[0]))
    md = [
        "# Slice mapping: can a k-slice network keep its slices apart?",
        "",
        "Written by `python -m t2d_monai slice_mapping` (t2d_monai/benchmarks/slice_mapping.py); do not edit by hand.",
        "",
        f"Toy task: windows of independent {size}x{size} slices of smooth noise, each slice's mask is that slice "
        f"above one standard deviation; no inter-slice context helps, the network only has to keep slice s's "
        f"output on slice s (the paper's Sec. 3.2). Every variant: T2DNet with {backbone}, decoder width "
        f"{decoder_channels}, random initialisation (seed {seed}), {iterations} iterations of AdamW (lr {lr}, "
        f"weight decay 1e-4) on batches of {batch} windows with the slab Dice loss, then scored on fresh windows. "
        f"Machine: {cpu_name()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}.",
        "",
        "| variant | slices | Dice | worst slice position's Dice | parameters | train time (s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    md += [
        f"| {r['variant']} | {r['slices']} | {r['dice']:.3f} | {r['worst_position_dice']:.3f} | {r['parameters']:,} | "
        f"{r['train_seconds']} |"
        for r in rows
    ]
    md += [
        "",
        f"The single-slice row is the reference: it has one slice to predict per window. The others predict "
        f"{num_slices} slices at once from one fused feature after the same number of iterations.",
        "",
    ]
    write_atomic(os.path.join(out_dir, "slice_mapping.md"), "\n".join(md))
    print("\n".join(md))
