"""What ``gpu_check`` measures, built from the bundle's shipped configs: sizes (full and ``--tiny``), networks
and inferers parsed from ``configs/*.json``, a median-of-repeats timer with warm-up and peak memory, and one
training iteration of a recipe (autocast + ``GradScaler`` as MONAI's ``SupervisedTrainer`` does with ``amp``)."""

from __future__ import annotations

import contextlib
import copy
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from t2d_monai.benchmarks.inferers import PAPER_3D_PATCH, PAPER_TEST_CASE, scaled_patch

__all__ = [
    "FULL",
    "TINY",
    "Profile",
    "Timing",
    "autocast",
    "autocast_error",
    "bundle_parser",
    "measure",
    "peak_memory_mb",
    "ssa_fast_path_gap",
    "stage_times",
    "train_iterations",
    "tf32_off",
]

#: the configs each measured recipe is parsed from (paths under the bundle's ``configs`` folder)
T2D_INFERENCE = ("inference.json",)
THREE_VIEWS = ("inference.json", "inference_three_views.json")
SINGLE_SLICE = ("inference.json", "baselines/deeplab_k1.json")
T2D_TRAIN = ("train.json",)
UNET3D = ("train.json", "baselines/patch3d.json", "baselines/unet3d.json")


@dataclass(frozen=True)
class Profile:
    """Sizes of one ``gpu_check`` run: ``volume`` ``(H, W, D)`` sliced along D; ``overrides_2d``/``overrides_3d``
    applied on top of the bundle configs (empty: the shipped recipe); ``train_iterations`` timed after
    ``train_warmup``; ``check_depth`` slices of the volume for the cached-vs-uncached check; ``reserve_s`` of the
    time budget kept by the latency section for the later ones; ``compile_reserve_s`` needed to try
    ``torch.compile``."""

    name: str
    volume: tuple[int, int, int]
    overrides_2d: Mapping[str, Any] = field(default_factory=dict)
    overrides_3d: Mapping[str, Any] = field(default_factory=dict)
    train_iterations: int = 20
    train_warmup: int = 3
    check_depth: int = 48
    reserve_s: float = 60.0
    compile_reserve_s: float = 180.0

    @property
    def patch_3d(self) -> tuple[int, ...]:
        """The 3D patch: the paper's 128x128x64 at full size, scaled per axis to a tiny volume."""
        patch = self.overrides_3d.get("patch_size")
        return tuple(patch) if patch else PAPER_3D_PATCH


#: the paper's latency test case and the shipped GPU recipes (train.json, inference.json, the 3D overlays)
FULL = Profile("full", PAPER_TEST_CASE)

_TINY_VOLUME = (48, 40, 20)
#: CPU-sized stand-in: the same code paths on a 48x40x20 volume with ResNet-18, k = 6 and a 3-level 3D UNet
TINY = Profile(
    "tiny",
    _TINY_VOLUME,
    overrides_2d={"backbone": "resnet18", "num_slices": 6, "decoder_channels": 32, "infer_batch_size": 4,
                  "spatial_size": [32, 32], "volumes_per_batch": 1, "slabs_per_volume": 2},
    overrides_3d={"patch_size": list(scaled_patch(_TINY_VOLUME)), "network_def#channels": [8, 16, 32],
                  "network_def#strides": [2, 2], "infer_batch_size": 4, "volumes_per_batch": 1,
                  "slabs_per_volume": 2},
    train_iterations=2,
    train_warmup=1,
    check_depth=20,
    reserve_s=0.0,
    compile_reserve_s=0.0,
)


def bundle_parser(files: Sequence[str], overrides: Mapping[str, Any], device: torch.device,
                  overlay_wins: bool = False, bundle: str | None = None):
    """A ``ConfigParser`` over the bundle's ``configs/<files>`` (later ones override) with ``device`` and
    ``overrides`` set (keys such as ``network_def#channels`` reach nested values). ``overlay_wins``: the keys
    that ``files[1:]`` set are not overridden (``deeplab_k1.json``'s ``num_slices`` 1 against a tiny k = 6)."""
    from t2d_monai.bundle.layout import load_json, parse_configs
    from t2d_monai.bundle.paths import bundle_dir

    root = bundle_dir(path=bundle)
    paths = [root / "configs" / f for f in files]
    kept = {k for p in paths[1:] for k in load_json(p)} if overlay_wins else set()
    return parse_configs(paths, root, {**{k: v for k, v in overrides.items() if k not in kept}, "device": device})


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``dtype`` on ``device``'s type; a no-op context for ``dtype`` None (float32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def autocast_error(device: torch.device, dtype: torch.dtype | None) -> str | None:
    """Why autocast to ``dtype`` cannot run a convolution on ``device`` (None: it can)."""
    if dtype is None:
        return None
    try:
        conv = torch.nn.Conv2d(2, 2, 3).to(device)
        with torch.no_grad(), autocast(device, dtype):
            conv(torch.zeros(1, 2, 8, 8, device=device))
    except Exception as e:  # noqa: BLE001 (any failure means: not supported here)
        return f"{dtype} autocast not supported on {device.type}: {type(e).__name__}: {str(e).splitlines()[0]}"
    return None


@contextlib.contextmanager
def tf32_off() -> Iterator[None]:
    """float32 convolutions and matmuls in full precision (no TF32) inside the block; the flags are restored."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mb(device: torch.device) -> float | None:
    """Peak GPU memory allocated since the last reset, in MiB (None off CUDA)."""
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


@dataclass
class Timing:
    """Median seconds of ``runs`` timed calls (the last warm-up's time when ``runs`` is 0), the warm-up calls'
    seconds, and the peak memory of the timed calls (MiB, None off CUDA; the warm-up's when ``runs`` is 0)."""

    seconds: float
    runs: int
    warmup_s: list[float]
    peak_mb: float | None


def measure(fn: Callable[[], Any], device: torch.device, repeats: int, time_left: Callable[[], float],
            warmups: int = 1) -> Timing:
    """Time ``fn``: ``warmups`` untimed calls, then up to ``repeats`` timed ones, as many as fit in
    ``time_left()`` seconds at the last warm-up's pace (0 when even one does not: the warm-up's time is reported).
    CUDA is synchronised around each call; outputs are dropped at once."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    warm = []
    for _ in range(max(1, int(warmups))):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        warm.append(time.perf_counter() - start)
    runs = min(int(repeats), int(time_left() // max(warm[-1], 1e-9)))
    if device.type == "cuda" and runs > 0:  # the peak of the timed calls: cuDNN's algorithm search left out
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(max(runs, 0)):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times) if times else warm[-1]
    return Timing(seconds, len(times), warm, peak_memory_mb(device))


def stage_times(net: torch.nn.Module, methods: Sequence[str], fn: Callable[[], Any],
                device: torch.device) -> dict[str, float]:
    """Seconds spent in each of ``net``'s ``methods`` (e.g. ``encode_group``, ``decode``) during one call of
    ``fn``, and the call's ``total``: each method is wrapped, on the instance and for that call only, by a timer
    synchronised with the device before and after (the synchronisations add their own cost to the total)."""
    spent = dict.fromkeys(methods, 0.0)

    def timed(name: str, method: Callable) -> Callable:
        def call(*args: Any, **kwargs: Any) -> Any:
            _sync(device)
            start = time.perf_counter()
            out = method(*args, **kwargs)
            _sync(device)
            spent[name] += time.perf_counter() - start
            return out
        return call

    for name in methods:
        setattr(net, name, timed(name, getattr(net, name)))
    try:
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        total = time.perf_counter() - start
    finally:
        for name in methods:
            vars(net).pop(name, None)  # the class's method again
    return {**spent, "total": total}


def train_iterations(parser, batch_shape: Sequence[int], device: torch.device, iterations: int, warmup: int,
                     time_left: Callable[[], float], seed: int = 0) -> dict[str, Any]:
    """Iterations per second of the recipe in ``parser`` (its ``network``, ``loss``, ``optimizer`` and ``amp``) on
    one random batch of ``batch_shape`` (image in [0, 1], binary label of the same shape) kept on ``device``: no
    data loading. With ``amp`` on CUDA each step runs under ``torch.autocast("cuda")`` (float16) with a
    ``GradScaler``, as ``SupervisedTrainer(amp=True)`` does. ``warmup`` untimed steps, then up to ``iterations``
    timed ones, as many as fit in ``time_left()``.

    Returns:
        ``iterations_per_s``, ``iterations`` timed, ``amp`` used, ``peak_mb`` (None off CUDA), ``loss`` (last).
    """
    torch.manual_seed(seed)
    network = parser.get_parsed_content("network").train()
    loss_fn = parser.get_parsed_content("loss")
    optimizer = parser.get_parsed_content("optimizer")
    amp = bool(parser.get_parsed_content("amp")) and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if amp else None
    image = torch.rand(*batch_shape, device=device)
    label = (torch.rand(*batch_shape, device=device) > 0.9).float()

    def step() -> float:
        optimizer.zero_grad(set_to_none=False)  # SupervisedTrainer's default (optim_set_to_none=False)
        with autocast(device, torch.float16 if amp else None):
            loss = loss_fn(network(image), label)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        return float(loss.detach())

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    start = time.perf_counter()
    for _ in range(max(1, int(warmup))):
        last = step()
    _sync(device)
    per_step = (time.perf_counter() - start) / max(1, int(warmup))
    count = max(1, min(int(iterations), int(time_left() // max(per_step, 1e-9))))
    start = time.perf_counter()
    for _ in range(count):
        last = step()
    _sync(device)
    elapsed = time.perf_counter() - start
    return {"iterations_per_s": count / elapsed, "iterations": count, "amp": amp, "peak_mb": peak_memory_mb(device),
            "loss": last}


def ssa_fast_path_gap(net: torch.nn.Module, x: torch.Tensor, device: torch.device, dtype: torch.dtype | None,
                      seed: int = 0) -> tuple[float, float]:
    """Max |fast path - block forward| of a T2DNet's SSA head (``SSAGroupSliceHead``: eval-mode folding against
    ``forward_blocks``) on the head inputs of one forward of ``x`` ``(B, k, H, W)``, under autocast to ``dtype``,
    on a copy of ``net`` whose SSA norm is given trained-looking statistics (SSA starts as the identity);
    returns the difference and ``max(1, max |logit|)`` of the block forward.

    Raises:
        TypeError: when the network's head has no fast path.
    """
    from t2d_monai.networks.blocks import SSAGroupSliceHead

    net = copy.deepcopy(net).eval()
    if not isinstance(getattr(net, "head", None), SSAGroupSliceHead):
        raise TypeError(f"the network's head is {type(getattr(net, 'head', None)).__name__}, not SSAGroupSliceHead: "
                        "no fast path to check")
    torch.manual_seed(seed)
    with torch.no_grad():  # as tests/networks/test_t2dnet.py: a norm that is not the identity
        for name, t in list(net.head.block.norm.named_parameters()) + list(net.head.block.norm.named_buffers()):
            if name == "running_var":
                t.uniform_(0.5, 2.0)
            elif t.is_floating_point():
                t.normal_()
    captured: list[Any] = []
    hook = net.head.register_forward_pre_hook(lambda module, args: captured.append(args))
    with torch.no_grad(), autocast(device, dtype):
        net(x)
        hook.remove()
        fast, blocks = net.head(*captured[0]).float(), net.head.forward_blocks(*captured[0]).float()
    return float((fast - blocks).abs().max()), max(1.0, float(blocks.abs().max()))
