"""MONAI Label app serving t2d_monai bundles (hepatic_vessel) for annotation, with clear errors.

It is MONAI Label's ``monaibundle`` sample app (``BundleInferTask``/``BundleTrainTask`` on local bundles), with
what a served T2DNet bundle needs on top:

- bundles are only ever local: ``--conf models NAME[,NAME]`` names folders in ``<app>/model/``, else in the
  bundles folder (``--conf bundles_dir PATH``; default: the ``bundles/`` of the checkout the app sits in), or
  paths; ``--conf models all`` serves every bundle of both (``<app>/model/`` first on a name clash). The app
  never downloads from the model zoo, so no ``zoo_source`` setting and no network access are needed;
- each bundle serves several models (``t2d_monai.bundle.served``): ``NAME``, its own ``configs/inference.json``;
  when it has ``configs/inference_three_views.json`` also each view, ``NAME_axial``, ``NAME_coronal``,
  ``NAME_sagittal`` (``models/model.pt`` for coronal, ``models/model_<view>.pt``), and their majority vote
  ``NAME_three_views``; a package made with ``--view three_views`` serves its fusion as ``NAME``. Training
  ``NAME_<view>`` trains that view (``train.json`` with ``view``); the fusion has no trainer of its own;
- a model without weights (e.g. no ``models/model.pt`` nor ``models/model.ts``) is not served with a random network:
  the start-up log says so, ``GET /info/`` lists it under ``unavailable_models`` with the reason, and an
  inference request gets HTTP 503 with that reason; training it through MONAI Label is still offered, and once
  ``models/model.pt`` exists the model is served without a restart;
- the checkpoint's signature (view, num_slices, backbone, ...) is checked against ``configs/inference.json``
  before its weights are loaded, and the weights are loaded strictly (MONAI Label's default is not strict);
- errors caused by the input (a 2D or 4D image, a checkpoint that does not fit) come back as HTTP 422/409 with
  the bundle's message in ``detail``, instead of a bare "Internal Server Error"; the server keeps serving;
- the model is reported as 3D (``dimension`` 3): it takes whole volumes, though its network sees 2D slabs;
- training through ``POST /train/NAME`` runs the bundle's ``train.json`` (with the checkpoint signature in
  the pretrained-weights loader) on the datastore's labelled images; ``--conf skip_trainers true`` offers no
  training (an inference-only server), as in MONAI Label's sample apps;
- each validation of such a training also reports the evaluation's vessel metrics (HD95, surface Dice, clDice, as
  ``configs/evaluate.json`` defines them; ``--conf vessel_metrics false`` leaves them out, they cost time on large
  volumes), and ``GET /info/`` shows the last validation's metrics under ``train_stats`` (MONAI Label's field,
  which its bundle trainer leaves empty; 3D Slicer shows ``best_metric`` as the model's accuracy).

Start (see docs/monailabel.md)::

    monailabel start_server --app apps/t2d_label --studies STUDIES --conf models hepatic_vessel \\
        --host 127.0.0.1 --port 8000
"""

from __future__ import annotations

import copy
import glob
import importlib.util
import json
import logging
import os
from typing import Any, Dict

import torch


def _declare_torchvision_ops_if_unloadable() -> torch.library.Library | None:
    """Let ``import torchvision`` work beside the CPU build of torch.

    PyPI's torchvision wheels are CUDA builds; with ``torch==2.13.0+cpu`` their C extension does not load
    (``libc10_cuda.so`` is missing), and torchvision 0.28 then fails on import with "operator torchvision::nms
    does not exist", because it registers fake kernels for ``nms``/``qnms`` unconditionally. MONAI Label imports
    torchvision only for ``torchvision.utils.make_grid``; declaring the two schemas (no kernels) is enough.
    """
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return None
    try:
        for library in glob.glob(os.path.join(os.path.dirname(spec.origin), "_C*.so")):
            torch.ops.load_library(library)
        return None
    except OSError:
        fragment = torch.library.Library("torchvision", "FRAGMENT")
        for op in ("nms", "qnms"):
            fragment.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        return fragment


_TORCHVISION_SCHEMAS = _declare_torchvision_ops_if_unloadable()  # kept alive: the schemas live as long as it

import monailabel  # noqa: E402
from fastapi import HTTPException  # noqa: E402
from monailabel.interfaces.app import MONAILabelApp  # noqa: E402
from monailabel.interfaces.exception import MONAILabelException  # noqa: E402
from monailabel.interfaces.tasks.infer_v2 import InferTask  # noqa: E402
from monailabel.interfaces.tasks.strategy import Strategy  # noqa: E402
from monailabel.interfaces.tasks.train import TrainTask  # noqa: E402
from monailabel.tasks.activelearning.first import First  # noqa: E402
from monailabel.tasks.activelearning.random import Random  # noqa: E402
from monai.bundle import ConfigParser  # noqa: E402
from monailabel.tasks.infer.bundle import BundleConstants as InferConstants  # noqa: E402
from monailabel.tasks.infer.bundle import BundleInferTask  # noqa: E402
from monailabel.tasks.train.bundle import BundleTrainTask  # noqa: E402
from monailabel.utils.others.generic import strtobool  # noqa: E402

from t2d_monai.bundle.paths import VIEWS  # noqa: E402
from t2d_monai.bundle.served import ServedModel, served_models, training_overrides  # noqa: E402
from t2d_monai.handlers import CheckpointMismatchError, CheckpointReadError, read_checkpoint, read_train_stats  # noqa: E402
from t2d_monai.handlers import ViewCheckpointsLoader  # noqa: E402

logger = logging.getLogger(__name__)



def _in_chain(error: BaseException, kind: type) -> BaseException | None:
    """The first exception of ``kind`` among ``error`` and its causes."""
    seen = []
    while error is not None and error not in seen:
        if isinstance(error, kind):
            return error
        seen.append(error)
        error = error.__cause__ or error.__context__
    return None


def _is_bundle(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "configs", "inference.json"))


def _bundle_names(folder: str) -> list[str]:
    """Bundle folders of ``folder`` (``configs/inference.json``); ``_recipe`` and other ``_`` folders are not."""
    if not os.path.isdir(folder):
        return []
    return sorted(n for n in os.listdir(folder) if not n.startswith(("_", ".")) and _is_bundle(os.path.join(folder, n)))


def _bundles_dir(app_dir: str, conf: Dict[str, str]) -> str:
    """``--conf bundles_dir``, else the ``bundles/`` of the checkout the app sits in (``apps/t2d_label``)."""
    return conf.get("bundles_dir") or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(app_dir))), "bundles")


def _load_config(model: ServedModel, key_bundle_root: str) -> ConfigParser:
    """The model's configs merged in order (as ``monai.bundle run`` merges them), its view written in."""
    parser = ConfigParser()
    parser.read_config([os.path.join(model.bundle, "configs", c) for c in model.configs])
    parser.config.update({key_bundle_root: model.bundle})  # type: ignore
    if model.view is not None:
        parser.config["view"] = model.view  # type: ignore
    return parser


class _InferConstants(InferConstants):
    """MONAI Label's bundle file names and ids, for one served model: its checkpoint, and for the fusion the
    ``nn.ModuleDict`` of view networks instead of ``network_def``."""

    def __init__(self, model: ServedModel) -> None:
        self.model = model

    def model_pytorch(self) -> str:
        return os.path.basename(self.model.checkpoints[0])

    def key_network_def(self) -> str:
        return "view_networks" if self.model.three_views else super().key_network_def()


class T2DBundleInferTask(BundleInferTask):
    """``BundleInferTask`` for one model of a bundle (a view, or the three-view fusion) with strict,
    signature-checked loading, a 3D ``dimension`` and the labels of the written label map (metadata
    ``segmentation_labels``)."""

    def __init__(self, model: ServedModel, conf: Dict[str, str], **kwargs: Any) -> None:
        self.model = model
        super().__init__(model.bundle, conf, const=_InferConstants(model), load_strict=True, **kwargs)
        if self.valid:
            self.dimension = 3  # metadata describes the network's 2D slabs; the task takes whole volumes
            self.labels = _segmentation_labels(model.bundle)
            # MONAI Label offers every models/*.pt as "model_filename" and loads the first by default (model.pt):
            # offer, and load, this model's own file; another one asked for is checked against the signature
            self._config["model_filename"] = [os.path.basename(c) for c in model.checkpoints]
            if model.view or model.three_views:
                what = "three views, majority vote" if model.three_views else f"{model.view} view"
                self.description = f"{self.description} ({what})"

    def _load_bundle_config(self, path, config):
        return _load_config(self.model, self.const.key_bundle_root())

    def _get_network(self, device, data):
        if self.model.three_views:
            return self._view_networks(device)
        model_path = self.get_path()
        asked = data.get("model_filename") if data else None  # where MONAI Label's loader will read, as it decides
        asked = asked if isinstance(asked, str) or not asked else asked[0]
        if asked and model_path and os.path.isfile(os.path.join(os.path.dirname(model_path), asked)):
            model_path = os.path.join(os.path.dirname(model_path), asked)
        if self.network is not None and model_path and model_path.endswith(".pt"):
            checkpoint = read_checkpoint(model_path, "cpu")  # a clear error for a truncated or foreign file
            if "signature" in checkpoint and self.bundle_config.get("signature") is not None:
                signature = self.bundle_config.get_parsed_content("signature", instantiate=True)
                signature.load_state_dict(checkpoint["signature"])  # raises CheckpointMismatchError
        return super()._get_network(device, data)

    def _view_networks(self, device):
        """The three view networks, each loaded strictly from its checkpoint after its signature is checked
        (reloaded when any of the files changes, e.g. after training a view)."""
        files = {view: os.path.join(self.model.bundle, c) for view, c in zip(VIEWS, self.model.checkpoints)}
        stamp = tuple(os.stat(f).st_mtime for f in files.values())
        cached = self._networks.get(device)
        if cached and cached[1] == stamp:
            return cached[0]
        network = copy.deepcopy(self.network)
        signature = self.bundle_config.get_parsed_content("signature", instantiate=True)
        ViewCheckpointsLoader(files, network, signature)  # checks every file and signature before loading any
        for view, path in files.items():
            network[view].load_state_dict(read_checkpoint(path, "cpu")["model"], strict=True)
        network = network.to(torch.device(device)).eval()
        self._networks[device] = (network, stamp)
        return network


def _segmentation_labels(path: str) -> Dict[str, int]:
    """Name -> value of the label map the bundle writes (metadata ``segmentation_labels``). MONAI Label's
    default reads the network's output ``channel_def``, which for a slab network names per-slice logits."""
    with open(os.path.join(path, "configs", "metadata.json")) as f:
        labels = json.load(f).get("segmentation_labels")
    if not isinstance(labels, dict) or not labels:
        raise ValueError(f"bundle {path!r}: metadata.json needs segmentation_labels, e.g. {{\"vessel\": 1}}.")
    return {str(k): int(v) for k, v in labels.items()}


class T2DBundleTrainTask(BundleTrainTask):
    """``BundleTrainTask`` for one view model of a bundle: ``train.json`` with that view (so it writes and starts
    from that view's checkpoint), the pretrained checkpoint's signature checked, and ``dataset_dir`` pointed at
    the datastore (the bundle's ``initialize`` checks that folder; the data itself comes from the datastore)."""

    def __init__(self, model: ServedModel, conf: Dict[str, str], studies: str) -> None:
        self.model = model
        super().__init__(model.bundle, conf, load_strict=True)
        self.studies = studies

    def __call__(self, request, datastore):
        # the pretrained weights of the view being trained (MONAI Label's default is models/model.pt)
        request = {"model_filename": os.path.basename(self.model.checkpoints[0]), **request}
        return super().__call__(request, datastore)

    def _load_checkpoint(self, model_pytorch, pretrained, train_handlers):
        if pretrained and os.path.exists(model_pytorch) and not any(
            t.get("_target_") == "CheckpointLoader" for t in train_handlers
        ):
            logger.info(f"Add Checkpoint Loader (signature checked) for Path: {model_pytorch}")
            train_handlers.insert(
                0,
                {
                    "_target_": "CheckpointLoader",
                    "load_path": model_pytorch,
                    "load_dict": {"signature": "@signature", "model": "@network"},
                    "strict": True,
                    "map_location": "@device",
                },
            )

    def _update_overrides(self, overrides):
        overrides["dataset_dir"] = self.studies
        # the view, the validation statistics for stats(), and (unless --conf vessel_metrics false) HD95, surface
        # Dice and clDice in every validation
        overrides.update(training_overrides(self.model, strtobool(self.conf.get("vessel_metrics", "true"))))
        return overrides

    def stats(self):
        """The last validation's metrics (MONAI Label's ``train_stats``; ``BundleTrainTask`` reports none)."""
        return read_train_stats(self.model.stats_file)


class MyApp(MONAILabelApp):
    """MONAI Label app for local t2d_monai bundles (``--conf models hepatic_vessel``)."""

    def __init__(self, app_dir: str, studies: str, conf: Dict[str, str]) -> None:
        names = [m.strip() for m in conf.get("models", "").split(",") if m.strip()]
        if not names:
            raise ValueError("no bundle given: start the server with --conf models NAME (a folder in <app>/model/ "
                             "or in the bundles folder), or --conf models all.")
        folders = [os.path.join(app_dir, "model"), _bundles_dir(app_dir, conf)]
        if names == ["all"]:
            names = sorted({n for folder in folders for n in _bundle_names(folder)})
            if not names:
                raise FileNotFoundError(f"--conf models all: no bundle (a folder with configs/inference.json) in "
                                        f"{folders}.")
        self.bundles: Dict[str, str] = {}
        for name in names:
            candidates = [name] if os.path.isdir(name) else [os.path.join(folder, name) for folder in folders]
            path = next((c for c in candidates if _is_bundle(c)), None)
            if path is None:
                raise FileNotFoundError(
                    f"bundle {name!r}: none of {candidates} is a bundle folder with configs/inference.json. Put the "
                    f"bundle (python -m t2d_monai package_bundle ...) in {folders[0]!r}, or point --conf bundles_dir "
                    f"at the folder that holds it."
                )
            self.bundles[os.path.basename(os.path.normpath(path))] = os.path.abspath(path)
        # every model of every bundle: its own inference.json, each view and the three-view fusion
        self.models: Dict[str, ServedModel] = {m.name: m for name, path in self.bundles.items()
                                               for m in served_models(path, name)}
        self.unavailable: Dict[str, str] = {}
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name=f"t2d_monai bundles - MONAI Label ({monailabel.__version__})",
            description="Thickened 2D networks (t2d_monai bundles) for CT segmentation",
            version=monailabel.__version__,
        )

    def _infer_task(self, name: str) -> InferTask | None:
        model = self.models[name]
        reason = model.missing_weights()
        if reason:
            self.unavailable[name] = reason
            logger.error(f"+++ NOT serving {name}: {reason}")
            return None
        self.unavailable.pop(name, None)
        task = T2DBundleInferTask(model, self.conf)
        logger.info(f"+++ Adding Inferer:: {name} => {task}")
        return task

    def init_infers(self) -> Dict[str, InferTask]:
        infers = {name: self._infer_task(name) for name in self.models}
        return {name: task for name, task in infers.items() if task is not None}

    def init_trainers(self) -> Dict[str, TrainTask]:
        if self._skip_trainers():  # MONAI Label's switch for inference-only servers
            logger.info("+++ skip_trainers: no trainer offered")
            return {}
        trainers: Dict[str, TrainTask] = {}
        for name, model in self.models.items():
            if not model.trainable:  # the fusion: train its views (<bundle>_<view>)
                continue
            task = T2DBundleTrainTask(model, self.conf, self.studies)
            if task.is_valid():
                logger.info(f"+++ Adding Trainer:: {name} => {task}")
                trainers[name] = task
        return trainers

    def _skip_trainers(self) -> bool:
        return strtobool(self.conf.get("skip_trainers", "false"))

    def train(self, request):
        if self._skip_trainers():
            raise HTTPException(status_code=409, detail="training is switched off on this server (--conf skip_trainers "
                                                        "true); start it without that setting to train")
        return super().train(request)

    def init_strategies(self) -> Dict[str, Strategy]:
        return {"random": Random(), "first": First()}

    def info(self) -> Dict[str, Any]:
        meta = super().info()
        meta["unavailable_models"] = dict(self.unavailable)
        return meta

    def infer(self, request, datastore=None):
        name = request.get("model")
        if name in self.unavailable:  # weights may have appeared since (training through MONAI Label)
            task = self._infer_task(name)
            if task is None:
                raise HTTPException(status_code=503, detail=self.unavailable[name])
            self._infers[name] = task
        try:
            return super().infer(request, datastore)
        except HTTPException:
            raise
        except MONAILabelException as e:
            raise HTTPException(status_code=400, detail=e.msg) from e
        except Exception as e:
            # transforms re-raise as RuntimeError("applying transform ..."): answer with the bundle's own message
            mismatch, bad_input = _in_chain(e, CheckpointMismatchError), _in_chain(e, ValueError)
            unreadable = _in_chain(e, CheckpointReadError)
            if unreadable is not None:  # the served weights, not the request, are at fault
                raise HTTPException(status_code=503, detail=f"model {name!r}: {unreadable}") from e
            if mismatch is not None:
                raise HTTPException(status_code=409, detail=f"model {name!r}: {mismatch}") from e
            if bad_input is not None:
                detail = f"model {name!r} cannot segment this input: {bad_input}"
                raise HTTPException(status_code=422, detail=detail) from e
            logger.exception(f"inference with {name!r} failed")
            raise HTTPException(status_code=500, detail=f"model {name!r} failed: {type(e).__name__}: {e}") from e
