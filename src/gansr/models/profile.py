"""Parameter and multiply-accumulate (MAC) counts.

MACs are counted by forward hooks on the layers that hold nearly all the arithmetic of these
networks: ``Conv1d/2d/3d``, ``ConvTranspose1d/2d/3d`` and ``Linear`` (bias additions excluded, the
usual convention). Not counted: activations, normalisation, pooling, interpolation, pixel
(un)shuffle, element-wise adds/multiplies and the bicubic resizes inside ``bicubic``/``srcnn``;
for the convolutional SR networks here they are well under 1% of the total.

The hooks are hand-written (about 30 lines) rather than taken from ``thop``/``fvcore``/``ptflops``:
those add a dependency for the same arithmetic and differ in what they count.

:func:`profile_model` builds a registry model on PyTorch's ``meta`` device when it can: parameters
have shapes but no storage and the forward pass only propagates shapes, so even the 16.7 M-parameter
``rrdbnet`` (73 GMACs at 64x64) is profiled exactly at full size, padding to ``size_multiple``
included, in well under a second (after a one-time set-up of the meta kernels, 1-3 s per process).
Models whose construction or forward pass needs real data (``srcnn``'s MATLAB resize has no meta
kernel) fall back to a real CPU build.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from gansr.errors import ConfigError, ModelError

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameters (only those with ``requires_grad`` when ``trainable_only``).

    Buffers (BatchNorm running statistics, spectral-norm vectors) are never counted. Shared
    parameters are counted once.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _layer_macs(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> int:
    if isinstance(module, _CONV):
        kernel = math.prod(module.kernel_size)
        return output.numel() * (module.in_channels // module.groups) * kernel
    if isinstance(module, _CONV_T):
        # Every input element is scattered through a kernel into out_channels/groups outputs.
        kernel = math.prod(module.kernel_size)
        return inputs[0].numel() * (module.out_channels // module.groups) * kernel
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


def _device_of(model: nn.Module) -> torch.device:
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _input_size(model: nn.Module, input_size: tuple[int, ...] | None) -> tuple[int, ...]:
    if input_size is not None:
        return tuple(int(s) for s in input_size)
    channels = getattr(model, "in_channels", None)
    if not isinstance(channels, int):
        raise ConfigError(f"{type(model).__name__} has no in_channels: pass input_size=(N, C, H, W)")
    return (1, channels, 64, 64)


@torch.no_grad()
def _forward_with_hooks(model: nn.Module, x: Tensor) -> tuple[int, Tensor]:
    total = 0

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        nonlocal total
        total += _layer_macs(module, inputs, output)

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, _CONV + _CONV_T + (nn.Linear,))
    ]
    was_training = model.training
    model.eval()  # no BatchNorm statistic updates or spectral-norm power iterations as a side effect
    try:
        out = model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    if isinstance(out, tuple | list):  # e.g. a discriminator returning (logits, features)
        out = out[0]
    return total, out


def count_macs(model: nn.Module, input_size: tuple[int, ...] | None = None) -> int:
    """Multiply-accumulates of one forward pass on a zero input of ``input_size`` ``(N, C, H, W)``.

    ``input_size`` defaults to ``(1, model.in_channels, 64, 64)``. The input is created on the
    model's device, so a model on the ``meta`` device is counted without any arithmetic. See the
    module docstring for which layers are counted.
    """
    size = _input_size(model, input_size)
    macs, _ = _forward_with_hooks(model, torch.zeros(size, device=_device_of(model)))
    return macs


def _build(name: str, kwargs: dict[str, Any]) -> tuple[nn.Module, str]:
    from gansr.models import create

    try:
        with torch.device("meta"):
            return create(name, **kwargs), "meta"
    except (ConfigError, ModelError):
        raise
    except Exception:  # an init or layer that needs real storage: build it for real instead
        return create(name, **kwargs), "cpu"


def _kind(model: nn.Module) -> str:
    return "generator" if isinstance(getattr(model, "scale", None), int) else "discriminator"


def profile_model(
    name_or_model: str | nn.Module, input_hw: tuple[int, int] = (64, 64), **kwargs: Any
) -> dict[str, Any]:
    """Parameter and MAC counts of a model at one input size.

    Args:
        name_or_model: a registry architecture name (built with ``kwargs``) or a model.
        input_hw: input height and width (the LR size for generators).

    Returns:
        ``{"name", "kind" ("generator"/"discriminator"), "parameters" (trainable), "total_parameters",
        "input_size" [N, C, H, W], "output_size", "macs", "gmacs_per_output_mpixel" (generators;
        GMACs per million output pixels, i.e. independent of the input size for fully
        convolutional nets), "device" (where it was evaluated: "meta" or the model's device)}``.
    """
    h, w = (int(v) for v in input_hw)
    if h < 1 or w < 1:
        raise ConfigError(f"input size must be positive, got {h}x{w}")
    if isinstance(name_or_model, str):
        model, device = _build(name_or_model, kwargs)
        name = name_or_model
    else:
        model, device = name_or_model, str(_device_of(name_or_model))
        name = getattr(model, "arch", None) or type(model).__name__
    channels = getattr(model, "in_channels", None)
    if not isinstance(channels, int):
        channels = int(getattr(model, "config", {}).get("in_channels", 3))
    size = (1, channels, h, w)

    def run(m: nn.Module) -> tuple[int, Tensor]:
        return _forward_with_hooks(m, torch.zeros(size, device=_device_of(m)))

    try:
        macs, out = run(model)
    except Exception:
        if device != "meta":
            raise
        # Some op has no meta kernel (e.g. a NumPy step); count on a real CPU build instead.
        from gansr.models import create

        model, device = create(name, **kwargs), "cpu"
        try:
            macs, out = run(model)
        except (MemoryError, RuntimeError) as exc:  # a real forward pass at a user-chosen size
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ModelError(
                f"{name}: counting MACs at {h}x{w} needs a real forward pass on the CPU, which failed "
                f"({reason}); use a smaller input size"
            ) from None
    kind = _kind(model)
    result: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "parameters": count_parameters(model),
        "total_parameters": count_parameters(model, trainable_only=False),
        "input_size": list(size),
        "output_size": list(out.shape),
        "macs": int(macs),
        "gmacs_per_output_mpixel": None,
        "device": device,
    }
    if kind == "generator" and out.ndim == 4:
        result["gmacs_per_output_mpixel"] = macs / (out.shape[-2] * out.shape[-1]) / 1e3
    return result
