"""Load on a real MONAI Label server serving a bundle: concurrent inference requests (and a training request while
they run), each answer compared with the single-request answer for its input; throughput and latency percentiles.

Needs the ``monailabel`` extra (its own virtual environment, docs/monailabel.md)::

    python -m t2d_monai monailabel_load --docs docs/monailabel_load.md
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from t2d_monai.benchmarks.report import machine_description
from t2d_monai.bundle.paths import bundle_dir
from t2d_monai.utils.files import write_atomic, write_csv_atomic

__all__ = ["load_test", "monailabel_load", "prepare_app", "prepare_studies", "serve", "write_signed_checkpoint"]

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "apps" / "t2d_label"


def _requests():
    try:
        import requests
    except ImportError as e:
        raise ImportError(
            "the MONAI Label load test needs the monailabel extra (it brings `requests` and the server): "
            "pip install torch==2.13.0 torchvision==0.28.0 -e '.[monailabel]' in its own virtual environment "
            "(docs/monailabel.md)."
        ) from e
    return requests


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(app: Path, studies: Path, models: Sequence[str], log: Path, timeout: float = 180.0,
          conf: dict[str, str] | None = None) -> Iterator[str]:
    """
    Start ``python -m monailabel.main start_server`` for ``app`` (a folder with ``main.py`` and ``model/<bundle>``)
    on a free port of 127.0.0.1 (``conf``: more ``--conf NAME VALUE`` settings), wait until ``/info/`` answers,
    yield its URL, stop it (SIGTERM to its process group, SIGKILL after 30 s) on exit.

    Raises:
        RuntimeError: the server exited or did not answer within ``timeout`` seconds (with the end of its log).
    """
    requests = _requests()
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    cmd = [sys.executable, "-m", "monailabel.main", "start_server", "--app", str(app), "--studies", str(studies),
           "--conf", "models", ",".join(models), "--conf", "sam2", "false", "--host", "127.0.0.1", "--port", str(port)]
    for name, value in (conf or {}).items():
        cmd += ["--conf", str(name), str(value)]
    url = f"http://127.0.0.1:{port}"
    with open(log, "w") as out:
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            end = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"the MONAI Label server exited with {process.returncode}:\n"
                                       f"{log.read_text()[-5000:]}")
                try:
                    if requests.get(f"{url}/info/", timeout=5).ok:
                        break
                except requests.ConnectionError:
                    pass
                if time.monotonic() > end:
                    raise RuntimeError(f"the MONAI Label server did not answer in {timeout:.0f} s:\n"
                                       f"{log.read_text()[-5000:]}")
                time.sleep(0.5)
            yield url
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _infer(url: str, model: str, image: Path) -> dict[str, Any]:
    """One inference request: status, latency (s), the returned mask (None unless 200) and the error text."""
    requests = _requests()
    import nibabel as nib

    start = time.perf_counter()
    with open(image, "rb") as f:
        response = requests.post(f"{url}/infer/{model}", params={"output": "image"}, files={"file": (image.name, f)},
                                 data={"params": json.dumps({"device": "cpu"})}, timeout=600)
    latency = time.perf_counter() - start
    mask = None
    if response.ok:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "pred.nii.gz"
            path.write_bytes(response.content)
            mask = np.asarray(nib.load(str(path)).dataobj).copy()  # reads the whole file: a partial one fails here
    return {"status": response.status_code, "latency_s": latency, "mask": mask,
            "error": None if response.ok else response.text[:500]}


def load_test(url: str, images: Sequence[Path], model: str, requests: int = 16, concurrency: int = 16,
              train_model: str | None = None) -> dict[str, Any]:
    """
    Send one request per image, one at a time (the references), then ``requests`` concurrent inference requests
    (``concurrency`` at a time, cycling over ``images``) while, with ``train_model``, one training request
    (``POST /train/<train_model>``, one epoch, synchronous) runs beside them.

    Returns:
        ``rows`` (one per concurrent request: image, status, latency, equal to the reference), ``single_latency_s``
        (the references' latencies), ``wall_s`` of the burst, ``throughput_per_s``, latency percentiles
        ``p50_s``/``p90_s``/``p99_s``/``max_s``, ``answered`` and ``equal`` counts, ``training`` (status and
        seconds, or None) and ``serving_after`` (``/info/`` and one more inference answered).
    """
    req = _requests()
    images = [Path(p) for p in images]
    references = {str(p): _infer(url, model, p) for p in images}
    bad = {k: v["error"] for k, v in references.items() if v["status"] != 200}
    if bad:
        raise RuntimeError(f"single requests to /infer/{model} failed: {bad}")
    training: dict[str, Any] | None = None

    def train() -> None:
        nonlocal training
        start = time.perf_counter()
        response = req.post(f"{url}/train/{train_model}", params={"run_sync": "true"},
                            json={"max_epochs": 1, "val_split": 0.5, "device": "cpu", "multi_gpu": False}, timeout=900)
        training = {"status": response.status_code, "seconds": round(time.perf_counter() - start, 2),
                    "error": None if response.ok else response.text[:500]}

    trainer = threading.Thread(target=train) if train_model else None
    order = [images[i % len(images)] for i in range(int(requests))]
    start = time.perf_counter()
    if trainer is not None:
        trainer.start()
    with ThreadPoolExecutor(max_workers=int(concurrency)) as pool:
        results = list(pool.map(lambda p: _infer(url, model, p), order))
    wall = time.perf_counter() - start
    if trainer is not None:
        trainer.join(timeout=900)
    rows = []
    for image, result in zip(order, results):
        reference = references[str(image)]["mask"]
        equal = result["mask"] is not None and np.array_equal(result["mask"], reference)
        rows.append({"image": image.name, "status": result["status"], "latency_s": round(result["latency_s"], 3),
                     "equal_to_single_request": equal, "error": result["error"] or ""})
    latencies = np.array([r["latency_s"] for r in rows])
    after = _infer(url, model, images[0])
    return {
        "rows": rows,
        "single_latency_s": [round(v["latency_s"], 3) for v in references.values()],
        "wall_s": round(wall, 2),
        "throughput_per_s": round(len(rows) / wall, 3),
        **{f"p{q}_s": round(float(np.percentile(latencies, q)), 3) for q in (50, 90, 99)},
        "max_s": round(float(latencies.max()), 3),
        "answered": sum(r["status"] == 200 for r in rows),
        "equal": sum(bool(r["equal_to_single_request"]) for r in rows),
        "training": training,
        "serving_after": bool(req.get(f"{url}/info/", timeout=30).ok and after["status"] == 200
                              and np.array_equal(after["mask"], references[str(images[0])]["mask"])),
    }


def prepare_studies(work: Path, shape: Sequence[int], num_cases: int = 4) -> dict[str, Any]:
    """Synthetic cases in ``work/data``, a MONAI Label studies folder ``work/studies`` of links to them (every case
    but the last labelled, as in annotation work) and a copy of the app in ``work/app`` (the server writes into its
    app folder). Returns ``data``, ``studies``, ``images`` (sorted) and ``app``."""
    from t2d_monai.data.synthetic_layouts import synth

    data, studies, app = work / "data", work / "studies", work / "app"
    synth(out=str(data), num_cases=num_cases, num_test=0, seed=0, shape=list(shape))
    images = sorted((data / "imagesTr").glob("*.nii.gz"))
    (studies / "labels" / "final").mkdir(parents=True)
    for image in images:
        (studies / image.name).symlink_to(image)
        if image != images[-1]:
            (studies / "labels" / "final" / image.name).symlink_to(data / "labelsTr" / image.name)
    app.mkdir()
    shutil.copyfile(APP / "main.py", app / "main.py")
    return {"data": data, "studies": studies, "images": images, "app": app}


def write_signed_checkpoint(path: Path, overrides: dict[str, Any]) -> Any:
    """Save an untrained (seed 0), signed checkpoint of the bundle's ``inference.json`` + ``cpu_small.json`` with
    ``overrides`` at ``path``: enough to serve (the figures are about serving, not segmentation). Returns the
    config parser (network, preprocessing, inferer of the checkpoint's settings) and the network in eval mode."""
    import torch
    from monai.bundle import ConfigParser

    bundle = bundle_dir()
    parser = ConfigParser()
    parser.read_config([str(bundle / "configs" / "inference.json"), str(bundle / "configs" / "cpu_small.json")])
    parser.update({**overrides, "device": "$torch.device('cpu')", "bundle_root": str(path.parent)})
    torch.manual_seed(0)
    net = parser.get_parsed_content("network_def").eval()
    torch.save({"signature": parser.get_parsed_content("signature").state_dict(), "model": net.state_dict()}, path)
    return parser, net


def prepare_app(work: Path, shape: Sequence[int], num_cases: int = 4, checkpoint: str | None = None,
                overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """:func:`prepare_studies`, and in the app's ``model/`` the bundle packaged with ``checkpoint`` (None: an
    untrained, signed one) plus an ``untrained`` copy (no weights) for the training request. Returns the paths,
    the served bundle's as ``bundle``."""
    from t2d_monai.bundle import package_bundle

    paths = prepare_studies(work, shape, num_cases)
    app = paths["app"]
    bundle = bundle_dir()
    overrides = dict(overrides or {})
    if checkpoint is None:
        checkpoint = str(work / "model.pt")
        write_signed_checkpoint(Path(checkpoint), overrides)
    served = Path(package_bundle(str(bundle), str(app / "model" / "hepatic_vessel"), model=checkpoint,
                                 overlays="cpu_small.json", overrides=overrides))
    package_bundle(str(bundle), str(app / "model" / "untrained"), overlays="cpu_small.json", overrides=overrides)
    return {**paths, "bundle": served}


def _markdown(result: dict[str, Any], info: dict[str, Any]) -> str:
    training = result["training"]
    lines = [
        "# MONAI Label under load",
        "",
        "Written by the command below (`t2d_monai/benchmarks/monailabel_load.py`); do not edit by hand, run it again.",
        "A real MONAI Label server (apps/t2d_label) serves the hepatic_vessel bundle packaged with the CPU overlay on",
        "127.0.0.1. Each input is first sent alone (the reference); then the concurrent requests go out together",
        "while one training request (one epoch of the `untrained` bundle, synchronous) runs on the same server.",
        "",
        "```bash",
        info["command"],
        "```",
        "",
        f"- Machine: {info['machine']}. Load average at start {info['load_start']}, at end {info['load_end']}.",
        f"- Inputs: {info['num_images']} synthetic volumes of {info['shape']}; model: {info['model']}.",
        f"- Requests: {len(result['rows'])} at once (concurrency {info['concurrency']}); answered "
        f"{result['answered']} of {len(result['rows'])}, equal to the single-request answer for their input: "
        f"{result['equal']} of {len(result['rows'])}.",
        "- Training request during the burst: "
        + ("none" if training is None else f"HTTP {training['status']} after {training['seconds']} s"),
        f"- Serving afterwards (`/info/` and one more inference, equal to its reference): {result['serving_after']}.",
        "",
        "| single request, median (s) | burst wall time (s) | throughput (requests/s) | p50 (s) | p90 (s) | p99 (s) | max (s) |",
        "|---|---|---|---|---|---|---|",
        f"| {float(np.median(result['single_latency_s'])):.3f} | {result['wall_s']} | {result['throughput_per_s']} | "
        f"{result['p50_s']} | {result['p90_s']} | {result['p99_s']} | {result['max_s']} |",
        "",
        "Latency is per request, from sending to the complete answer, so under a burst it includes the time a",
        "request waits for the ones before it.",
    ]
    return "\n".join(lines) + "\n"


def monailabel_load(docs: str | None = None, work_dir: str | None = None, requests: int = 16, concurrency: int = 16,
                    shape: str | Sequence[int] = "96,96,48", num_images: int = 3, checkpoint: str | None = None,
                    train: bool = True) -> str:
    """
    Start a MONAI Label server with the hepatic_vessel bundle, send concurrent inference requests and one training
    request, check every answer against the single-request answer, report throughput and latency percentiles.

    Args:
        docs: write the report here (Markdown, and a CSV of the requests beside it); None: print it.
        work_dir: folder for data, app and logs (kept); None: a temporary folder, removed at the end.
        requests: concurrent inference requests. Defaults to 16.
        concurrency: requests in flight at once. Defaults to 16.
        shape: synthetic volume shape. Defaults to 96,96,48 (the CPU benchmark's).
        num_images: distinct inputs the requests cycle over. Defaults to 3.
        checkpoint: a trained ``model.pt`` of the CPU overlay to serve; None: an untrained, signed one (the
            figures are about serving, not about the segmentation).
        train: send the training request during the burst. Defaults to True.

    Returns:
        the path of the report, or the report itself when ``docs`` is None.

    Raises:
        ImportError: without the monailabel extra.
        ValueError: ``work_dir`` exists and is not empty.
        RuntimeError: the server did not start, or a single request failed.
    """
    from t2d_monai.benchmarks.runner import load_average

    _requests()
    dims = [int(s) for s in (shape.split(",") if isinstance(shape, str) else shape)]
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="t2d_monailabel_load_"))
    work.mkdir(parents=True, exist_ok=True)
    if work_dir and any(work.iterdir()):
        raise ValueError(f"work_dir {str(work)!r} is not empty; give a new or empty folder (nothing in it is overwritten).")
    load_start = load_average()
    try:
        paths = prepare_app(work, dims, num_cases=max(int(num_images) + 1, 3), checkpoint=checkpoint)
        images = paths["images"][-int(num_images):]
        print(f"[monailabel_load] starting the server ({work / 'server.log'})", flush=True)
        with serve(paths["app"], paths["studies"], ["hepatic_vessel", "untrained"], work / "server.log") as url:
            print(f"[monailabel_load] {requests} requests, {concurrency} at a time, training: {train}", flush=True)
            result = load_test(url, images, "hepatic_vessel", requests, concurrency, "untrained" if train else None)
    finally:
        if work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    import torch

    info = {
        "command": "python -m t2d_monai monailabel_load" + (f" --docs {docs}" if docs else ""),
        "machine": machine_description("cpu", torch.get_num_threads()), "load_start": load_start,
        "load_end": load_average(), "num_images": len(images), "shape": "x".join(map(str, dims)),
        "model": "untrained, signed (serving only)" if checkpoint is None else checkpoint, "concurrency": concurrency,
    }
    text = _markdown(result, info)
    if not docs:
        return text
    write_atomic(docs, text)
    write_csv_atomic(os.path.splitext(docs)[0] + ".csv", result["rows"],
                     ["image", "status", "latency_s", "equal_to_single_request", "error"])
    print(f"[monailabel_load] wrote {docs}", flush=True)
    return docs
