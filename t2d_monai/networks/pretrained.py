"""ImageNet initialisation from a local torchvision-format ResNet state-dict file (nothing is downloaded)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

__all__ = ["adapt_input_conv", "adapt_resnet_state_dict", "load_resnet_state_dict"]


def adapt_input_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """
    Adapt a first-convolution kernel ``(O, I, kH, kW)`` (``I`` = 3 for RGB ImageNet weights) to
    ``in_channels`` inputs. Pure function: returns a new tensor.

    - ``in_channels == I``: the kernel unchanged (a 3-slice group sees the RGB kernel, as 2.5D
      networks initialised from ImageNet usually do);
    - otherwise: the kernel averaged over its input channels, repeated ``in_channels`` times and
      rescaled by ``I / in_channels``, so an input whose channels are all equal (neighbouring CT
      slices of a homogeneous region) gives the same response as a grey image did before. For one
      channel this is the sum of the RGB kernels (timm's ``adapt_input_conv`` for 1 channel).

    Args:
        weight: kernel ``(O, I, kH, kW)``.
        in_channels: number of input channels wanted, >= 1.

    Raises:
        ValueError: when ``weight`` is not 4D or ``in_channels < 1``.

    Example::

        >>> adapt_input_conv(torch.randn(64, 3, 7, 7), 12).shape
        torch.Size([64, 12, 7, 7])
    """
    if weight.dim() != 4:
        raise ValueError(f"weight must be a conv kernel (O, I, kH, kW), got shape {list(weight.shape)}.")
    if int(in_channels) < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels!r}.")
    source_channels = weight.shape[1]
    if in_channels == source_channels:
        return weight.clone()
    mean = weight.float().mean(dim=1, keepdim=True)
    adapted = mean.repeat(1, int(in_channels), 1, 1) * (source_channels / float(in_channels))
    return adapted.to(weight.dtype)


def adapt_resnet_state_dict(
    state_dict: Mapping[str, torch.Tensor], in_channels: int, first_conv: str = "conv1.weight"
) -> dict[str, torch.Tensor]:
    """
    Map a torchvision-format ResNet state dict onto :class:`~t2d_monai.networks.nets.ResNetEncoder` keys.
    Pure function: returns a new dict.

    A leading ``"module."`` (DataParallel/DDP checkpoints) is removed, the classifier (``fc.*``) is
    dropped, and the first convolution is adapted with :func:`adapt_input_conv`.

    Args:
        state_dict: torchvision ``resnet*`` state dict (``conv1.weight``, ``bn1.*``, ``layer1.0.conv1.weight``, ...).
        in_channels: input channels of the encoder.
        first_conv: key of the first convolution. Defaults to ``"conv1.weight"``.

    Raises:
        KeyError: when ``first_conv`` is not in ``state_dict``.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key.startswith("module."):
            key = key[len("module.") :]
        if key.startswith("fc."):
            continue
        out[key] = value
    if first_conv not in out:
        raise KeyError(
            f"{first_conv!r} not in the state dict (first keys: {sorted(out)[:5]}); "
            "expected a torchvision-format ResNet state dict."
        )
    out[first_conv] = adapt_input_conv(out[first_conv], in_channels)
    return out


def load_resnet_state_dict(module: nn.Module, path: str | os.PathLike, in_channels: int) -> None:
    """
    Load a local torchvision-format ResNet state-dict file (e.g. saved with
    ``torch.save(torchvision.models.resnet50(weights="IMAGENET1K_V1").state_dict(), "resnet50.pth")``)
    into ``module`` (a :class:`~t2d_monai.networks.nets.ResNetEncoder`), adapting the first convolution
    to ``in_channels`` (and leaving ``layer4`` out for an encoder of ``depth=4``). A file holding
    ``{"state_dict": ...}`` or ``{"model": ...}`` is also accepted.

    Raises:
        FileNotFoundError: when ``path`` does not exist (nothing is downloaded).
        ValueError: when the file is not a state dict or does not match the module (missing or
            unexpected keys, tensor shapes), e.g. resnet18 weights for a resnet50 encoder.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"pretrained={path!r}: no such file. Nothing is downloaded at run time; save a torchvision "
            "ResNet state dict there first, e.g. torch.save(torchvision.models.resnet50(weights='IMAGENET1K_V1')"
            ".state_dict(), path), or pass pretrained=None."
        )
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in many types
        raise ValueError(f"pretrained={path!r} could not be read as a torch state dict: {e}") from e
    for wrapper_key in ("state_dict", "model"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(wrapper_key), Mapping):
            loaded = loaded[wrapper_key]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise ValueError(f"pretrained={path!r} does not hold a state dict (a mapping of names to tensors).")
    try:
        adapted = adapt_resnet_state_dict(loaded, in_channels)
    except KeyError as e:
        raise ValueError(f"pretrained={path!r}: {e.args[0]}") from e
    expected = module.state_dict()
    if not any(k.startswith("layer4.") for k in expected):  # an encoder that stops after layer3 (``depth=4``)
        adapted = {k: v for k, v in adapted.items() if not k.startswith("layer4.")}
    optional = {k for k in expected if k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(adapted) - optional)
    unexpected = sorted(set(adapted) - set(expected))
    mismatched = [
        f"{k}: file {list(adapted[k].shape)} vs model {list(expected[k].shape)}"
        for k in sorted(set(adapted) & set(expected))
        if adapted[k].shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        raise ValueError(
            f"pretrained={path!r} does not match the encoder ({getattr(module, 'backbone', type(module).__name__)}): "
            f"{len(missing)} missing keys {missing[:5]}, {len(unexpected)} unexpected keys {unexpected[:5]}, "
            f"{len(mismatched)} shape mismatches {mismatched[:5]}. Use the torchvision weights of the same "
            "ResNet depth and norm='batch'."
        )
    module.load_state_dict(adapted, strict=False)
