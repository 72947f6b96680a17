"""What a checkpoint was trained for (view, slab thickness, ...), checked before its weights are loaded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ModelSignature", "CheckpointMismatchError", "ADDED_FIELDS"]

#: fields added to the bundles' signature after checkpoints were saved without them, with the value that every
#: such checkpoint was trained with (a checkpoint that does not record the field is read as having that value)
ADDED_FIELDS: dict[str, object] = {"encoder_depth": 5}


class CheckpointMismatchError(ValueError):
    """A checkpoint was trained for another view, slab thickness or architecture than the config asks for."""


class ModelSignature:
    """A small state-dict object saved beside the weights so that a checkpoint says what it was trained for.

    Put it *first* in the ``save_dict`` of a checkpoint saver and in the ``load_dict`` of
    :class:`monai.handlers.CheckpointLoader`: ignite loads objects in dict order, so a checkpoint for the
    coronal view with 15-slice slabs fails with a message that names both settings, before the network
    weights meet a size-mismatch error deep inside ``torch.nn.Module.load_state_dict``.

    Args:
        fields: the settings that must match, e.g. ``view="coronal", num_slices=15, backbone="resnet50"``.
            Values must be plain JSON-like data: str, int, float, bool, None, or lists and str-keyed dicts of
            them (a norm such as ``["group", {"num_groups": 16}]``); tuples are stored as lists.

    Example::

        signature = ModelSignature(view="coronal", num_slices=15)
        checkpoint = {"signature": signature.state_dict(), "model": net.state_dict()}
        ModelSignature(view="axial", num_slices=15).load_state_dict(checkpoint["signature"])  # raises
    """

    def __init__(self, **fields: Any) -> None:
        self.fields = {name: _plain(name, value) for name, value in fields.items()}

    def state_dict(self) -> dict[str, Any]:
        return dict(self.fields)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> None:
        """Check ``state_dict`` (the checkpoint's signature) against this one.

        Raises:
            CheckpointMismatchError: when a field differs; with ``strict``, also when one is missing (a field of
                :data:`ADDED_FIELDS` that the checkpoint does not record counts as its value there).
        """
        problems = []
        for name, wanted in self.fields.items():
            if name not in state_dict and name in ADDED_FIELDS:
                state_dict = {**state_dict, name: ADDED_FIELDS[name]}
            if name not in state_dict:
                if strict:
                    problems.append(f"{name}: the config asks for {wanted!r}, the checkpoint does not record it")
                continue
            if state_dict[name] != wanted:
                problems.append(f"{name}: the checkpoint was trained with {state_dict[name]!r}, the config asks for {wanted!r}")
        if problems:
            unknown = sorted(set(state_dict) - set(self.fields))
            if unknown:  # e.g. a 3D U-Net checkpoint (network, spatial_dims, patch_size) for a T2DNet config
                raise CheckpointMismatchError(
                    "checkpoint does not match the config: it was trained for another network family "
                    f"({', '.join(f'{k}={state_dict[k]!r}' for k in unknown)}), settings this config does not have. "
                    "Run it with the overlays it was trained with (for example configs/baselines/patch3d.json and "
                    "configs/baselines/unet3d.json for the 3D U-Net), or retrain with these configs. Differences:\n  - "
                    + "\n  - ".join(problems)
                )
            raise CheckpointMismatchError(
                "checkpoint does not match the config:\n  - "
                + "\n  - ".join(problems)
                + "\nUse the checkpoint trained for these settings, or override the config to match the checkpoint "
                "(for example --view or --num_slices)."
            )

    def __repr__(self) -> str:
        return f"ModelSignature({', '.join(f'{k}={v!r}' for k, v in self.fields.items())})"


def _plain(name: str, value: Any) -> Any:
    """``value`` as JSON-like data (tuples become lists), or a TypeError naming the field."""
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(name, v) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _plain(name, v) for k, v in value.items()}
    raise TypeError(
        f"ModelSignature field {name!r} must be str/int/float/bool/None or a list/dict of them, got {type(value)}."
    )
