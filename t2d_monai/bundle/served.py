"""The models a bundle folder can serve, one per view and the three-view fusion (what MONAI Label lists).

A bundle serves its own ``configs/inference.json`` under the bundle's name. A bundle that also has
``configs/inference_three_views.json`` (a source bundle, or a package made without ``--view``) serves each view
with that view's checkpoint (``<name>_axial``, ``<name>_coronal``, ``<name>_sagittal``: ``models/model.pt`` for
coronal, ``models/model_<view>.pt`` otherwise) and their majority vote (``<name>_three_views``). A package made
with ``--view three_views`` fuses in its own ``inference.json`` (it loads ``view_ckpt_files``); it serves that.
Each model states the files it needs, so a server can list the ones without weights with the reason, and the
config overrides that train it through MONAI Label (:func:`training_overrides`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from t2d_monai.bundle.layout import load_json
from t2d_monai.bundle.paths import VIEWS, checkpoint_filename
from t2d_monai.bundle.variants import THREE_VIEWS, THREE_VIEWS_OVERLAY

__all__ = ["ServedModel", "served_models", "training_overrides", "vessel_metric_overrides"]

#: the prefix of the config ids in ``evaluate.json`` that add a metric to the evaluation
_METRIC_IDS = "validate#additional_metrics#"


@dataclass(frozen=True)
class ServedModel:
    """One model of a bundle folder.

    Attributes:
        name: the model's name on the server, e.g. ``hepatic_vessel_axial``.
        bundle: the bundle folder.
        configs: config files (relative to ``configs/``), merged in order.
        view: the view written into the configs (``None``: the configs' own).
        checkpoints: the files the model loads (relative to the bundle folder), in ``VIEWS`` order for three views.
        three_views: whether the model is the fusion of the three view models (a ``torch.nn.ModuleDict``).
        torchscript: ``models/model.ts`` may stand in for the checkpoint (the bundle's own model, as MONAI Label
            loads it).
    """

    name: str
    bundle: str
    configs: tuple[str, ...]
    view: str | None
    checkpoints: tuple[str, ...]
    three_views: bool = False
    torchscript: bool = False

    @property
    def trainable(self) -> bool:
        """A single-view model is trained through ``train.json`` with its view; the fusion has nothing of its own."""
        return not self.three_views

    @property
    def stats_file(self) -> str:
        """Where training this model writes its validation statistics (:class:`~t2d_monai.handlers.TrainStatsWriter`):
        ``models/train_stats.json`` beside ``models/model.pt``, ``models/train_stats_<view>.json`` beside
        ``models/model_<view>.pt``; absolute."""
        stem = os.path.splitext(os.path.basename(self.checkpoints[0]))[0]
        return os.path.join(self.bundle, "models", f"train_stats{stem[len('model'):]}.json")

    def missing_weights(self) -> str | None:
        """Why the model cannot be served (its missing files and how to get them), or None."""
        missing = [c for c in self.checkpoints if not os.path.isfile(os.path.join(self.bundle, c))]
        if not missing or (self.torchscript and os.path.isfile(os.path.join(self.bundle, "models", "model.ts"))):
            return None
        how = (f"train each view (python -m monai.bundle run training ... --view VIEW, or POST /train/"
               f"{self.name[: -len(THREE_VIEWS)]}<view>)" if self.three_views else
               f"train it (POST /train/{self.name}, or python -m monai.bundle run training ...)")
        return (f"model {self.name!r} has no trained weights: {', '.join(missing)} missing in {self.bundle!r}. "
                f"It is not served with a random network. To serve it, {how}, or package it with its checkpoint "
                "(python -m t2d_monai package_bundle BUNDLE OUT --model model.pt).")


def served_models(bundle: str, name: str | None = None) -> list[ServedModel]:
    """The models of ``bundle`` (a folder with ``configs/inference.json``), the bundle's own first.

    Args:
        bundle: the bundle folder.
        name: the bundle's name on the server. Default: the folder's name.
    """
    bundle = os.path.abspath(bundle)
    name = name or os.path.basename(os.path.normpath(bundle))
    inference = load_json(os.path.join(bundle, "configs", "inference.json"))
    all_views = tuple(f"models/{checkpoint_filename(v)}" for v in VIEWS)
    if "view_ckpt_files" in inference:  # packaged with --view three_views: the fusion is its inference.json
        return [ServedModel(name, bundle, ("inference.json",), None, all_views, three_views=True)]
    models = [ServedModel(name, bundle, ("inference.json",), None, ("models/model.pt",), torchscript=True)]
    if os.path.isfile(os.path.join(bundle, "configs", THREE_VIEWS_OVERLAY)):
        models += [ServedModel(f"{name}_{v}", bundle, ("inference.json",), v, (f"models/{checkpoint_filename(v)}",))
                   for v in VIEWS]
        models.append(ServedModel(f"{name}_{THREE_VIEWS}", bundle, ("inference.json", THREE_VIEWS_OVERLAY), None,
                                  all_views, three_views=True))
    return models


def vessel_metric_overrides(bundle: str) -> dict[str, Any]:
    """The metrics that ``configs/evaluate.json`` adds to the evaluation (HD95, surface Dice, clDice: its
    ``validate#additional_metrics#...`` ids and ``surface_tolerance_mm``), as config overrides, so that a validation
    during training reports them too; read from the bundle, so they are defined once."""
    evaluate = load_json(os.path.join(bundle, "configs", "evaluate.json"))
    metrics = {k: v for k, v in evaluate.items() if k.startswith(_METRIC_IDS)}
    if metrics and "surface_tolerance_mm" in evaluate:
        metrics["surface_tolerance_mm"] = evaluate["surface_tolerance_mm"]
    return metrics


def training_overrides(model: ServedModel, vessel_metrics: bool = True) -> dict[str, Any]:
    """Config overrides of ``configs/train.json`` that train ``model`` as MONAI Label does: its view (when it has
    one), its validation statistics written to :attr:`ServedModel.stats_file` after every validation (appended to
    ``validate#handlers``), and with ``vessel_metrics`` the evaluation's vessel metrics in every validation
    (:func:`vessel_metric_overrides`; they cost time on large volumes).

    Raises:
        ValueError: ``model`` is the three-view fusion (train its views).
    """
    if not model.trainable:
        raise ValueError(f"model {model.name!r} is the three-view fusion; train each of its views instead.")
    train = load_json(os.path.join(model.bundle, "configs", "train.json"))
    handlers = list(train.get("validate", {}).get("handlers", []))  # a fresh read: nothing shared to copy
    handlers.append({"_target_": "t2d_monai.handlers.TrainStatsWriter", "_disabled_": "@is_not_rank0",
                     "path": model.stats_file})
    overrides: dict[str, Any] = {"validate#handlers": handlers}
    if model.view is not None:
        overrides["view"] = model.view
    if vessel_metrics:
        overrides.update(vessel_metric_overrides(model.bundle))
    return overrides
