"""Command line of t2d_monai, built with fire.

Usage::

    python -m t2d_monai                      # list the commands
    python -m t2d_monai <command> --help     # arguments of one command
    python -m t2d_monai synth --out data/synth --num_cases 8 --seed 0

Each command lives in the module that owns its concept and is imported only when called,
so that ``python -m t2d_monai synth`` does not pay for importing the networks.
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable, Sequence

import fire

__all__ = ["COMMANDS", "main"]

#: command name -> ("module:function", one-line summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": (
        "t2d_monai.data.synthetic_layouts:synth",
        "write a synthetic CT data set (MSD Task08 hepatic vessel, or another target's data set layout)",
    ),
    "threshold_baseline": (
        "t2d_monai.benchmarks.threshold_baseline:threshold_baseline",
        "Dice of the best single global HU threshold on a data set (how hard the data is)",
    ),
    "split": ("t2d_monai.data.datalist:split", "reproducible train/validation/test split of a data set (MSD or subject folders), saved as JSON"),
    "preview": ("t2d_monai.visualize:preview", "preview PNG of a case: MIPs and slices with TP/FP/FN overlays"),
    "network_benchmark": (
        "t2d_monai.benchmarks.networks:network_benchmark",
        "parameter counts and CPU forward time of DeepLabV3+, ESM and ESM+SSA",
    ),
    "inferer_benchmark": (
        "t2d_monai.benchmarks.inferers:inferer_benchmark",
        "thick-slice inferer (with/without f1 cache) against 3D sliding window and 2D slice inference",
    ),
    "gpu_check": (
        "t2d_monai.benchmarks.gpu_check:gpu_check",
        "one GPU session (8 min): latency vs 3D sliding window, fast path/cache checks, training it/s -> docs/gpu.md",
    ),
    "slice_mapping": (
        "t2d_monai.benchmarks.slice_mapping:slice_mapping",
        "toy check of the paper's Sec. 3.2: can early fusion, ESM and ESM+SSA keep k slices apart?",
    ),
    "benchmark": (
        "t2d_monai.benchmarks.comparison:benchmark",
        "train and evaluate 2D, thickened 2D and 3D baselines side by side: Dice, latency, parameters",
    ),
    "monailabel_load": (
        "t2d_monai.benchmarks.monailabel_load:monailabel_load",
        "concurrent inference and a training request on a real MONAI Label server: equality, throughput, latency",
    ),
    "demo": ("t2d_monai.demo:demo", "synthesise data, train, evaluate and infer with the hepatic_vessel bundle on CPU"),
    "package_bundle": (
        "t2d_monai.bundle.packaging:package_bundle",
        "copy a bundle into the model-zoo layout (folder or zip), with overlays baked in and the checkpoint checked",
    ),
    "render_bundles": (
        "t2d_monai.bundle.recipe:render_bundles",
        "write every target bundle from bundles/_recipe and its target.json (--check: only compare)",
    ),
    "odd_inputs": (
        "t2d_monai.bundle.odd_inputs:odd_inputs",
        "run every odd input (singleton axes, NaN, bad checkpoints, ...) through a bundle's configs; table of outcomes",
    ),
    "merge_targets": (
        "t2d_monai.bundle.multi_target:merge_targets_command",
        "one label map of several targets for a CT: each bundle's probabilities, the most confident target wins",
    ),
    "zoo_check": (
        "t2d_monai.bundle.zoo_check:zoo_check",
        "offline model-zoo CI checks: files, changelog, schema, verify_net_in_out, TorchScript and ONNX export",
    ),
}


def _load(spec: str) -> Callable:
    module_name, function_name = spec.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: python -m t2d_monai <command> [--help | arguments]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Dispatch ``argv`` (default: ``sys.argv[1:]``) to one command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return
    name = argv[0]
    if name not in COMMANDS:
        print(f"unknown command {name!r}.\n\n{_usage()}", file=sys.stderr)
        raise SystemExit(2)
    args = argv[1:]
    own = args[: args.index("--")] if "--" in args else args
    if any(a in ("-h", "--help") for a in own):
        # fire reads --help as a value of a command's **overrides (benchmark) and would start the command;
        # after "--" it is fire's own flag: print the help, start nothing
        args = ["--", "--help"]
    fire.Fire(_load(COMMANDS[name][0]), command=args, name=name)


if __name__ == "__main__":
    main()
