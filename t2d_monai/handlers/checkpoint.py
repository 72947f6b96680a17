"""Checkpoints that are never half-written, and resuming from them."""

from __future__ import annotations

import logging
import os
import pickle
import zipfile
from collections.abc import Mapping
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.handlers import CheckpointLoader

from t2d_monai.handlers.model_signature import ModelSignature
from t2d_monai.utils import atomic_output, remove_partial_writes, unwrap_parallel

__all__ = [
    "AtomicCheckpointSaver",
    "CheckpointReadError",
    "ResumeCheckpointLoader",
    "ViewCheckpointsLoader",
    "read_checkpoint",
    "save_atomically",
]

#: what to do about a checkpoint that cannot be used, appended to every error about one
_CHECKPOINT_FIX = (
    "Copy or download it again, or retrain it: python -m monai.bundle run training --config_file "
    "<bundle>/configs/train.json --dataset_dir DIR [--view VIEW] (a bundle trained with overlays needs them here too)."
)


class CheckpointReadError(ValueError):
    """A checkpoint file that cannot be read (truncated, corrupted, not a PyTorch file) or is not one of this
    project's checkpoints (no ``model`` state dict)."""


def read_checkpoint(path: str, map_location: Any = "cpu", keys: tuple[str, ...] = ("model",)) -> dict[str, Any]:
    """
    ``torch.load(path, weights_only=True)`` with errors that name the file, what is wrong and the fix. The
    tensors of a valid checkpoint are memory-mapped (read when used), so a check costs little I/O.

    Args:
        path: the checkpoint file.
        map_location: passed to ``torch.load``.
        keys: entries the checkpoint must have (the bundles' ``model.pt`` has ``signature`` and ``model``,
            ``checkpoint.pt`` the whole training state).

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointReadError: an empty, truncated or corrupted file, a file that is not a PyTorch checkpoint, a
            pickled object other than tensors and plain data (a whole ``nn.Module``), or a checkpoint without
            ``keys``.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}. {_CHECKPOINT_FIX}")
    size = os.path.getsize(path)
    try:
        # a complete zip checkpoint (torch's format) is memory-mapped: checking one reads its structure, not every
        # tensor, so the loader that follows does not pay for the check; anything else takes torch's plain reader,
        # whose errors say what the file is
        state = torch.load(path, map_location=map_location, weights_only=True, mmap=zipfile.is_zipfile(path))
    except (EOFError, zipfile.BadZipFile, RuntimeError) as e:  # RuntimeError: torch's zip reader
        raise CheckpointReadError(
            f"cannot read the checkpoint {path!r} ({size} bytes): it is empty, truncated or corrupted (an "
            f"interrupted copy or download?). {_CHECKPOINT_FIX}"
        ) from e
    except pickle.UnpicklingError as e:
        if "Unsupported global" in str(e):
            raise CheckpointReadError(
                f"cannot read the checkpoint {path!r}: it holds Python objects, not only tensors (a whole pickled "
                "model?); the bundles load state dicts only (torch.load(weights_only=True)). Save "
                "{'model': net.state_dict()} instead. " + _CHECKPOINT_FIX
            ) from e
        raise CheckpointReadError(
            f"cannot read the checkpoint {path!r} ({size} bytes): it is not a PyTorch checkpoint. {_CHECKPOINT_FIX}"
        ) from e
    except (KeyError, ValueError, UnicodeDecodeError) as e:  # what torch's legacy reader raises on other files
        raise CheckpointReadError(
            f"cannot read the checkpoint {path!r} ({size} bytes): it is not a PyTorch checkpoint. {_CHECKPOINT_FIX}"
        ) from e
    missing = [k for k in keys if not isinstance(state, Mapping) or k not in state]
    if missing:
        found = sorted(map(str, state))[:8] if isinstance(state, Mapping) else type(state).__name__
        raise CheckpointReadError(
            f"{path!r} is a PyTorch file but not a checkpoint of this project: it lacks {missing} (it has {found}). "
            "Use the models/model*.pt that training writes ({'signature': ..., 'model': state_dict}). "
            + _CHECKPOINT_FIX
        )
    return state


def save_atomically(obj: Any, path: str) -> None:
    """``torch.save`` through :func:`~t2d_monai.utils.atomic_output`: readers see the old or the new file, never half."""
    with atomic_output(path) as f:
        torch.save(obj, f)


class AtomicCheckpointSaver:
    """Save ``save_dict`` (network, optimizer, trainer, ...) to fixed file names, atomically.

    MONAI's :class:`~monai.handlers.CheckpointSaver` writes in place, so a run killed mid-write leaves a
    truncated file. This handler writes through :func:`save_atomically` and keeps two kinds of file:

    - ``latest_filename``: the whole training state, every ``save_interval`` epochs and at completion,
      for resuming (:class:`ResumeCheckpointLoader`). Epoch boundaries only, so a resumed run restarts at
      the beginning of an epoch, as ignite resumes best.
    - ``key_metric_filename``: ``key_metric_dict`` (usually the signature and the network) whenever the
      key metric of ``metric_engine`` improves (higher is better), e.g. ``model.pt`` for the model zoo.

    Args:
        save_dir: folder for both files (created).
        save_dict: name -> object with ``state_dict()``; saved to ``latest_filename``.
        latest_filename: file name of the resumable state; ``None`` disables it.
        save_interval: epochs between saves of the resumable state.
        key_metric_dict: name -> object saved when the key metric improves (default: ``save_dict``).
        key_metric_filename: file name for the best model; ``None`` disables it.
        metric_engine: the evaluator whose ``state.metrics[key_metric_name]`` is compared; attach this
            handler to the trainer and pass the evaluator here.
        key_metric_name: name of the metric; default: the evaluator's ``state.key_metric_name``.
        engine_key: the engine this handler is attached to is added to ``save_dict`` under this name
            (so a bundle config need not reference the trainer from inside its own handler list,
            which would be a circular reference); None: do not save the engine.
    """

    def __init__(
        self,
        save_dir: str,
        save_dict: Mapping[str, Any],
        latest_filename: str | None = "checkpoint.pt",
        save_interval: int = 1,
        key_metric_dict: Mapping[str, Any] | None = None,
        key_metric_filename: str | None = None,
        metric_engine: Engine | None = None,
        key_metric_name: str | None = None,
        engine_key: str | None = "trainer",
    ) -> None:
        if not save_dict:
            raise ValueError("save_dict must name at least one object to save.")
        if save_interval < 1:
            raise ValueError(f"save_interval must be >= 1 epoch, got {save_interval}.")
        if key_metric_filename is not None and metric_engine is None:
            raise ValueError("key_metric_filename needs metric_engine (the evaluator whose metric decides).")
        self.save_dir = save_dir
        self.save_dict = dict(save_dict)
        self.latest_filename = latest_filename
        self.save_interval = save_interval
        self.key_metric_dict = dict(key_metric_dict) if key_metric_dict is not None else self.save_dict
        self.key_metric_filename = key_metric_filename
        self.metric_engine = metric_engine
        self.key_metric_name = key_metric_name
        self.engine_key = engine_key
        self.best_metric: float | None = None
        self.logger = logging.getLogger(__name__)

    @staticmethod
    def _state(objects: Mapping[str, Any]) -> dict[str, Any]:
        return {name: unwrap_parallel(obj).state_dict() for name, obj in objects.items()}

    def attach(self, engine: Engine) -> None:
        self._remove_stale_temporaries()
        if self.engine_key is not None:
            self.save_dict[self.engine_key] = engine
        if self.latest_filename is not None:
            engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.save_interval), self.save_latest)
            engine.add_event_handler(Events.COMPLETED, self.save_latest)
        if self.key_metric_filename is not None and self.metric_engine is not None:
            self.metric_engine.add_event_handler(Events.EPOCH_COMPLETED, self.save_if_best)

    def _remove_stale_temporaries(self) -> None:
        """Delete what processes killed while writing this saver's files left behind
        (:func:`~t2d_monai.utils.remove_partial_writes`); the files themselves are complete, old or new."""
        for name in (self.latest_filename, self.key_metric_filename):
            if name is not None:
                for stale in remove_partial_writes(os.path.join(self.save_dir, name)):
                    self.logger.info(f"removed {stale}, a partial write of {name} by an interrupted run")

    def save_latest(self, engine: Engine) -> None:
        path = os.path.join(self.save_dir, self.latest_filename)
        save_atomically(self._state(self.save_dict), path)
        self.logger.info(f"saved resumable state at epoch {engine.state.epoch} to {path}")

    def save_if_best(self, engine: Engine) -> None:
        name = self.key_metric_name or getattr(engine.state, "key_metric_name", None)
        if name is None or name not in engine.state.metrics:
            return
        value = float(engine.state.metrics[name])
        if self.best_metric is not None and value <= self.best_metric:
            return
        self.best_metric = value
        path = os.path.join(self.save_dir, self.key_metric_filename)
        save_atomically(self._state(self.key_metric_dict), path)
        self.logger.info(f"new best {name}={value:.4f}: saved {path}")


class ResumeCheckpointLoader(CheckpointLoader):
    """MONAI's :class:`~monai.handlers.CheckpointLoader` that is switched by a flag and tolerates a first run.

    With ``enabled=False`` nothing happens (a fresh run). With ``enabled=True`` the state at ``load_path``
    is restored when the trainer starts; if there is no file yet, a warning says so and training starts
    from scratch, so the same ``--resume true`` command serves the first run and every restart.
    The engine it is attached to is added to ``load_dict`` as ``engine_key`` (default ``"trainer"``),
    matching :class:`AtomicCheckpointSaver`.
    """

    def __init__(
        self, load_path: str, load_dict: dict, enabled: bool = True, engine_key: str | None = "trainer", **kwargs: Any
    ) -> None:
        super().__init__(load_path=load_path, load_dict=dict(load_dict), **kwargs)
        self.enabled = bool(enabled)
        self.engine_key = engine_key

    def attach(self, engine: Engine) -> None:
        if not self.enabled:
            return
        if self.engine_key is not None:
            self.load_dict[self.engine_key] = engine
        super().attach(engine)

    def __call__(self, engine: Engine) -> None:
        if not os.path.isfile(self.load_path):
            self.logger.warning(f"resume requested but {self.load_path} does not exist yet: starting from scratch.")
            return
        try:
            read_checkpoint(self.load_path, "cpu", keys=tuple(self.load_dict))
        except CheckpointReadError as e:
            raise CheckpointReadError(
                f"cannot resume: {e} To start training from scratch instead, move {self.load_path!r} away "
                "(or run without --resume true)."
            ) from e
        super().__call__(engine)
        self.logger.info(f"resumed at epoch {engine.state.epoch}, iteration {engine.state.iteration}")


class ViewCheckpointsLoader:
    """Load one checkpoint per view into an ``nn.ModuleDict`` of view models, checking each one's signature.

    Each view's checkpoint (``ckpt_files[v]``; in the bundle configs ``model.pt`` for coronal,
    ``model_axial.pt``, ``model_sagittal.pt``, as written by training with ``--view v``) must carry a
    :class:`~t2d_monai.handlers.ModelSignature` equal to ``signature`` with ``view=v``.

    Args:
        ckpt_files: view name -> checkpoint file.
        networks: view name -> model (e.g. ``nn.ModuleDict``); every view needs a file in ``ckpt_files``.
        signature: the settings every view model must have been trained with (its ``view`` field, if any,
            is replaced by each view's name); None checks nothing.
        map_location: passed to ``torch.load``.

    Raises:
        FileNotFoundError: at construction, listing every missing view checkpoint and how to train it.
        CheckpointReadError: at construction, for a view checkpoint that cannot be read (:func:`read_checkpoint`).
        CheckpointMismatchError: at construction, for a view checkpoint trained with other settings.
        KeyError: a view of ``networks`` without an entry in ``ckpt_files``.
    """

    def __init__(
        self,
        ckpt_files: Mapping[str, str],
        networks: Mapping[str, torch.nn.Module],
        signature: ModelSignature | None = None,
        map_location: Any = None,
    ) -> None:
        unknown = [view for view in networks if view not in ckpt_files]
        if unknown:
            raise KeyError(f"ckpt_files has no checkpoint for the view(s) {unknown}; it has {sorted(ckpt_files)}.")
        self.paths = {view: str(ckpt_files[view]) for view in networks}
        missing = [f"{view}: {path}" for view, path in self.paths.items() if not os.path.isfile(path)]
        if missing:
            raise FileNotFoundError(
                "three-view inference needs a trained model for every view; missing:\n  "
                + "\n  ".join(missing)
                + "\nTrain each with: python -m monai.bundle run training --config_file <bundle>/configs/train.json "
                "--dataset_dir DIR --view VIEW"
            )
        fields = dict(signature.fields) if signature is not None else None
        for view, path in self.paths.items():  # unreadable or mismatched files fail here, before any data loads
            state = read_checkpoint(path, "cpu", keys=("model",) if fields is None else ("signature", "model"))
            if fields is not None:
                ModelSignature(**{**fields, "view": view}).load_state_dict(state["signature"])
            del state
        self.loaders = [
            CheckpointLoader(
                load_path=self.paths[view],
                load_dict={
                    **({"signature": ModelSignature(**{**fields, "view": view})} if fields is not None else {}),
                    "model": net,
                },
                map_location=map_location,
            )
            for view, net in networks.items()
        ]

    def attach(self, engine: Engine) -> None:
        for loader in self.loaders:
            loader.attach(engine)
