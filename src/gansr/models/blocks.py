"""Shared building blocks: model base classes, config checks, padding and common layers.

Every gansr model derives from :class:`Generator` or :class:`Discriminator`, which carry the
attributes the rest of the package relies on (``arch``, ``config`` and, for generators, ``scale``,
``in_channels``, ``out_channels``, ``size_multiple``). Constructors validate their arguments with
the ``check_*`` helpers so a bad value becomes a one-line :class:`~gansr.errors.ConfigError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gansr.errors import ConfigError, ModelError

__all__ = [
    "Discriminator",
    "Generator",
    "ResidualBlockNoBN",
    "check_choice",
    "check_int",
    "check_kernel_sizes",
    "check_power_of_two",
    "crop_to",
    "default_init_weights",
    "jsonable",
    "layer",
    "make_layer",
    "norm_layer",
    "num_doublings",
    "pad_to_multiple",
]

M = TypeVar("M", bound=nn.Module)


# --------------------------------------------------------------------------- config checks


def check_int(
    arch: str,
    name: str,
    value: Any,
    *,
    minimum: int | None = 1,
    choices: Iterable[int] | None = None,
) -> int:
    """Return ``value`` if it is an int (not a bool) within ``minimum`` / ``choices``.

    Raises:
        ConfigError: naming the model and the option, e.g.
            ``model 'rrdbnet': scale must be one of 1, 2, 4, 8, got 3``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"model {arch!r}: {name} must be an integer, got {value!r}")
    if choices is not None:
        options = tuple(choices)
        if value not in options:
            listed = ", ".join(str(c) for c in options)
            raise ConfigError(f"model {arch!r}: {name} must be one of {listed}, got {value}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"model {arch!r}: {name} must be >= {minimum}, got {value}")
    return value


def check_power_of_two(arch: str, name: str, value: Any) -> int:
    """Return ``value`` if it is an integer power of two >= 2 (2, 4, 8, ...)."""
    check_int(arch, name, value, minimum=2)
    if value & (value - 1):
        raise ConfigError(f"model {arch!r}: {name} must be a power of two (2, 4, 8, ...), got {value}")
    return value


def check_choice(arch: str, name: str, value: Any, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of the string ``choices``."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"model {arch!r}: {name} must be one of {listed}, got {value!r}")
    return value


def check_kernel_sizes(arch: str, name: str, value: Any) -> list[int]:
    """Return ``value`` as a non-empty list of odd positive ints (so 'same' padding is exact)."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or not value:
        raise ConfigError(f"model {arch!r}: {name} must be a non-empty list of odd integers, got {value!r}")
    for k in value:
        check_int(arch, name, k, minimum=1)
        if k % 2 == 0:
            raise ConfigError(f"model {arch!r}: {name} must hold odd kernel sizes, got {k}")
    return list(value)


def jsonable(config: dict[str, Any]) -> dict[str, Any]:
    """Copy ``config`` with tuples turned into lists, so it survives a JSON round trip unchanged."""

    def convert(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [convert(x) for x in v]
        return v

    return {k: convert(v) for k, v in config.items()}


# --------------------------------------------------------------------------- base classes


def _check_batch(arch: str, in_channels: int, x: Tensor) -> None:
    # A gray image fed to an RGB model is a user mistake: say so instead of a conv shape error.
    if x.ndim != 4 or x.shape[1] != in_channels:
        raise ModelError(
            f"model {arch!r} expects input of shape (N, {in_channels}, H, W), got {tuple(x.shape)}"
        )


class Generator(nn.Module):
    """Base class of the SR generators: ``(N, C, H, W)`` in ``[0, 1]`` -> ``(N, C, sH, sW)``.

    Attributes:
        arch: the registry name; ``gansr.models.create(arch, **config)`` rebuilds the model.
        config: the complete, JSON-able constructor arguments.
        scale: the upscaling factor.
        in_channels / out_channels: 1 (gray) or 3 (RGB) in practice; any positive count works.
        size_multiple: inputs are padded internally to a multiple of this (1 when any size works).
        arbitrary_scale: True when ``forward`` also accepts ``size=(H, W)`` (``vae_cppn``).
    """

    arch: ClassVar[str] = ""
    arbitrary_scale: ClassVar[bool] = False

    def __init__(
        self,
        config: dict[str, Any],
        *,
        scale: int,
        in_channels: int,
        out_channels: int,
        size_multiple: int = 1,
    ) -> None:
        super().__init__()
        self.config: dict[str, Any] = jsonable(config)
        self.scale = scale
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.size_multiple = size_multiple

    def check_input(self, x: Tensor) -> None:
        """Raise :class:`ModelError` unless ``x`` is a ``(N, in_channels, H, W)`` batch."""
        _check_batch(self.arch, self.in_channels, x)

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, scale={self.scale}"


class Discriminator(nn.Module):
    """Base class of the discriminators / critics: input ``(N, C, H, W)`` in ``[0, 1]``.

    Attributes:
        arch: the registry name; ``gansr.models.create(arch, **config)`` rebuilds the model.
        config: the complete, JSON-able constructor arguments.
        in_channels: the number of image channels it judges.
    """

    arch: ClassVar[str] = ""

    def __init__(self, config: dict[str, Any], *, in_channels: int) -> None:
        super().__init__()
        self.config: dict[str, Any] = jsonable(config)
        self.in_channels = in_channels

    def check_input(self, x: Tensor) -> None:
        """Raise :class:`ModelError` unless ``x`` is a ``(N, in_channels, H, W)`` batch."""
        _check_batch(self.arch, self.in_channels, x)


# --------------------------------------------------------------------------- padding


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Pad the bottom/right of ``x`` (reflect) so its height and width are multiples of ``multiple``.

    Reflection needs the pad to be smaller than the side; tiny inputs fall back to replicate.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def crop_to(x: Tensor, height: int, width: int) -> Tensor:
    """Crop ``x`` to its top-left ``height`` x ``width`` (undoes :func:`pad_to_multiple`)."""
    if x.shape[-2] == height and x.shape[-1] == width:
        return x
    return x[..., :height, :width]


# --------------------------------------------------------------------------- layers


def make_layer(block: Callable[[], nn.Module], count: int) -> nn.Sequential:
    """Stack ``count`` blocks built by ``block()`` (state-dict keys ``0.``, ``1.``, ... as in BasicSR)."""
    return nn.Sequential(*(block() for _ in range(count)))


def layer(parent: nn.Module, path: str, kind: type[M], *, of: int | None = None) -> M:
    """The submodule at ``path`` (dotted, as in state-dict keys: ``"conv1"``, ``"body.2"``), checked
    to be a ``kind``; with ``of``, its container must hold exactly that many layers.

    Code that depends on a model's structure (its fused inference form) reads layers through this,
    by name, so a layer swapped, reordered, added or removed fails loudly instead of being
    silently computed as something else.

    Raises:
        ModelError: e.g. ``_BNResidualBlock.body.2 is ReLU, expected PReLU``.
    """
    where = f"{type(parent).__name__}.{path}"
    container_path, _, name = path.rpartition(".")
    container = parent.get_submodule(container_path) if container_path else parent
    if of is not None and len(container) != of:
        raise ModelError(f"{where.rpartition('.')[0]} has {len(container)} layers, expected {of}")
    child = getattr(container, name, None)
    if not isinstance(child, kind):
        got = "missing" if child is None else type(child).__name__
        raise ModelError(f"{where} is {got}, expected {kind.__name__}")
    return child


def norm_layer(
    parent: nn.Module, path: str, *, batch_norm: bool, of: int | None = None
) -> nn.BatchNorm2d | None:
    """The optional normalisation at ``path`` (see :func:`layer`): the ``BatchNorm2d`` when
    ``batch_norm``, else None, checking that the layer is a ``BatchNorm2d`` / ``nn.Identity``
    accordingly (ModelError otherwise)."""
    if batch_norm:
        return layer(parent, path, nn.BatchNorm2d, of=of)
    layer(parent, path, nn.Identity, of=of)
    return None


@torch.no_grad()
def default_init_weights(
    modules: nn.Module | Iterable[nn.Module], scale: float = 1.0, bias_fill: float = 0.0
) -> None:
    """Kaiming-normal init of every conv/linear weight, scaled by ``scale`` (BasicSR's recipe).

    Scaling the residual branches down (``scale=0.1``) keeps deep residual generators close to
    the identity at the start, which is what makes RRDB/MSRResNet trainable without BN.
    """
    if isinstance(modules, nn.Module):
        modules = [modules]
    for module in modules:
        for m in module.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight)
                m.weight.mul_(scale)
                if m.bias is not None:
                    m.bias.fill_(bias_fill)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1.0)
                nn.init.constant_(m.bias, bias_fill)


class ResidualBlockNoBN(nn.Module):
    """``x + res_scale * conv2(relu(conv1(x)))`` (EDSR / BasicSR block; keys ``conv1``, ``conv2``)."""

    def __init__(self, num_feat: int = 64, res_scale: float = 1.0) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.relu = nn.ReLU()
        default_init_weights([self.conv1, self.conv2], 0.1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.relu(self.conv1(x))) * self.res_scale


def num_doublings(scale: int) -> int:
    """``log2(scale)`` for a power of two."""
    return int(math.log2(scale))
