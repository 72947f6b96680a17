"""Running a bundle workflow: as a user does (``python -m monai.bundle run`` in a subprocess, :func:`run_bundle`,
what the demo and ``merge_targets`` do), or on one input while observing what it did: the clear error it raised,
the files it wrote, the warnings it logged (:class:`Context`, what :mod:`t2d_monai.bundle.odd_inputs` builds its
cases on)."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SHAPE", "TINY", "Context", "Result", "clear_error", "describe", "refused", "run_bundle", "same_space"]

#: the volumes of the cases: non-cubic on purpose (coronal slices are X x Z = 48 x 20)
SHAPE = (48, 40, 20)
#: the tiny CPU recipe of the cases (the configs' own ids)
TINY: dict[str, Any] = {
    "num_slices": 6, "backbone": "resnet18", "decoder_channels": 64, "spatial_size": [48, 48], "num_iterations": 2,
    "iterations_per_epoch": 2, "val_interval": 1, "volumes_per_batch": 1, "slabs_per_volume": 2,
    "infer_batch_size": 8, "num_workers": 0,
}


def run_bundle(run_id: str, configs: Sequence[str | Path], step: str, **overrides: Any) -> float:
    """Run ``python -m monai.bundle run <run_id> --config_file "[...]" --<id> <value> ...`` in a subprocess, as a
    user would, after printing ``step`` and the command; its log streams to this terminal. Values that are not
    strings are passed as JSON. Without a ``bundle_root`` override the bundle root is the folder of the first
    config's ``configs/`` (the configs' ``bundle_root_from_argv``).

    Returns:
        the seconds the run took.

    Raises:
        subprocess.CalledProcessError: the run failed (its error is in the log above).
    """
    cmd = [sys.executable, "-m", "monai.bundle", "run", run_id, "--config_file", repr([str(c) for c in configs])]
    for key, value in overrides.items():
        cmd += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    print(f"\n=== {step}\n$ {shlex.join(cmd)}\n", flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - start


@dataclass
class Result:
    """What one bundle run did: the clear error it raised (None: it finished), its output files, the warnings
    logged by t2d_monai, and the workflow (for training cases)."""

    error: BaseException | None = None
    outputs: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    workflow: Any = None


class Context:
    """The work folder, the tiny trained models (one per view) and helpers to write inputs and run the bundle."""

    def __init__(self, work: Path, bundle: Path) -> None:
        self.work, self.bundle, self.configs = work, bundle, bundle / "configs"
        self._count = 0
        self.data = work / "data"
        self.root = work / "bundle_root"
        self.models: dict[str, Path] = {}

    def fresh(self, name: str) -> Path:
        """A new empty folder under the work folder."""
        self._count += 1
        path = self.work / f"{self._count:02d}_{name}"
        path.mkdir(parents=True)
        return path

    def workflow(self, kind: str, files: list[str], **overrides: Any):
        from monai.bundle import ConfigWorkflow

        return ConfigWorkflow(
            config_file=[str(self.configs / f) for f in files], meta_file=str(self.configs / "metadata.json"),
            logging_file=False, workflow_type=kind, **{**TINY, "bundle_root": str(self.root), **overrides},
        )

    def run(self, kind: str, files: list[str], out: Path | None = None, **overrides: Any) -> Result:
        """Run a workflow (initialize, run, finalize); the outputs are the files it left in ``out``."""
        result = Result()
        extra = {} if out is None else {"output_dir": str(out)}
        with _captured_warnings() as warnings:
            try:
                result.workflow = self.workflow(kind, files, **extra, **overrides)
                result.workflow.initialize()
                result.workflow.run()
                result.workflow.finalize()
            except Exception as e:  # the clear error is somewhere in the chain the bundle runner re-raises
                result.error = clear_error(e)
        result.warnings = warnings
        if out is not None and out.is_dir():
            result.outputs = sorted(p for p in out.iterdir() if p.is_file())
        return result

    def infer(self, source: Path, view: str = "coronal", ckpt: Path | None = None, **overrides: Any) -> Result:
        """Inference of ``source`` (a file or folder) into a fresh folder with ``ckpt`` (None: the view's tiny
        model, found by the config's own ``ckpt_file`` under the bundle root)."""
        out = overrides.pop("out", None) or self.fresh("out")
        if ckpt is not None:
            overrides["ckpt_file"] = str(ckpt)
        return self.run("infer", ["inference.json", "cpu_small.json"], out=out, dataset_dir=str(source), view=view,
                        **overrides)

    def nifti(self, name: str, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
        import nibabel as nib

        path = self.fresh(name) / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(data, np.diag([0.8, 0.8, 2.5, 1.0]) if affine is None else affine), str(path))
        return path

    def ct(self, shape: tuple[int, ...] = SHAPE, dtype: Any = np.int16, seed: int = 0) -> np.ndarray:
        """A CT-like volume in HU: the first synthetic test case cropped or tiled to ``shape``."""
        import nibabel as nib

        case = sorted((self.data / "imagesTs").glob("*.nii.gz"))[0]
        vol = np.asarray(nib.load(str(case)).dataobj).astype(np.float64)
        reps = [int(np.ceil(s / v)) for s, v in zip(shape[:3], vol.shape)]
        vol = np.tile(vol, reps)[tuple(slice(0, s) for s in shape[:3])]
        return vol.reshape(shape).astype(dtype)


@contextlib.contextmanager
def _captured_warnings() -> Iterator[list[str]]:
    """Messages of WARNING and above logged under ``t2d_monai`` inside the block."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler, logger = Collect(logging.WARNING), logging.getLogger("t2d_monai")
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def clear_error(error: BaseException) -> BaseException:
    """The error a user should read: the first one in the chain that is not the bundle runner's wrapper
    ("Failed to evaluate/instantiate ...") nor ignite's re-raise."""
    chain, e = [], error
    while e is not None and e not in chain:
        chain.append(e)
        e = e.__cause__ or e.__context__
    for e in chain:
        wrapper = r"Failed to (evaluate|instantiate)|Component to instantiate|applying transform"
        if not (type(e) is RuntimeError and re.match(wrapper, str(e))):
            return e
    return chain[-1]


def describe(error: BaseException) -> str:
    first = " ".join(str(error).split())
    return f"refused: {type(error).__name__}: {first[:300]}{'...' if len(first) > 300 else ''}"


def refused(result: Result, kind: type, pattern: str) -> tuple[str, str | None]:
    if result.error is None:
        return f"finished, outputs {[p.name for p in result.outputs]}", f"expected {kind.__name__} matching {pattern!r}"
    observed = describe(result.error)
    ok = isinstance(result.error, kind) and re.search(pattern, " ".join(str(result.error).split()))
    return observed, None if ok else f"expected {kind.__name__} matching {pattern!r}"


def same_space(result: Result, image: Path, warning: str | None = None) -> tuple[str, str | None]:
    """The one output has the input's shape (a trailing singleton 4th axis aside) and affine, and is binary."""
    import nibabel as nib

    if result.error is not None:
        return describe(result.error), "expected an output in the input's space"
    segs = [p for p in result.outputs if p.name.endswith("_seg.nii.gz")]
    if len(segs) != 1:
        return f"outputs {[p.name for p in result.outputs]}", "expected exactly one <name>_seg.nii.gz"
    src, pred = nib.load(str(image)), nib.load(str(segs[0]))
    want = src.shape[:3] if len(src.shape) == 4 and src.shape[3] == 1 else src.shape
    values = set(np.unique(np.asarray(pred.dataobj)).tolist())
    same_affine = np.allclose(pred.affine, src.affine, atol=1e-4)
    observed = f"written: shape {pred.shape}, affine {'kept' if same_affine else 'changed'}, values {sorted(values)}"
    problems = []
    if pred.shape != want:
        problems.append(f"shape {pred.shape} instead of {want}")
    if not same_affine:
        problems.append("affine changed")
    if not values <= {0, 1}:
        problems.append(f"values {sorted(values)} not binary")
    if warning is not None:
        found = [w for w in result.warnings if re.search(warning, w)]
        observed += f"; warning: {found[0][:200]}" if found else "; no warning"
        if not found:
            problems.append(f"no warning matching {warning!r}")
    return observed, "; ".join(problems) or None


