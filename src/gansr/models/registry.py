"""The architecture registry: one explicit table of every model gansr can build by name.

Adding a model means adding one row to :data:`REGISTRY`; there are no import-time decorators, so
the table is the single place that says what exists.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from torch import nn

from gansr.errors import ConfigError, ModelError
from gansr.models.baselines import SRCNN, Bicubic
from gansr.models.blocks import jsonable
from gansr.models.compact import Compact
from gansr.models.discriminators import MnistFeatureD, PatchDiscriminator, SRGANDiscriminator, WGANCritic
from gansr.models.mnist import MnistSR
from gansr.models.msrgan import MSRGANGenerator
from gansr.models.rrdbnet import RRDBNet
from gansr.models.srresnet import MSRResNet, SRResNet
from gansr.models.vae_cppn import VAECPPN

__all__ = ["REGISTRY", "ArchInfo", "architectures", "create"]

Kind = Literal["generator", "discriminator", "baseline"]


@dataclass(frozen=True)
class ArchInfo:
    """What :func:`architectures` reports about one registered model.

    Attributes:
        name: the registry name passed to :func:`create`.
        kind: ``"generator"``, ``"discriminator"`` or ``"baseline"``.
        description: one line.
        default_config: the complete JSON-able kwargs :func:`create` uses when given none.
    """

    name: str
    kind: Kind
    description: str
    default_config: dict[str, Any] = field(default_factory=dict)


# name -> (class or factory, one-line description, kind). Read-only: a MappingProxyType.
REGISTRY: Mapping[str, tuple[Callable[..., nn.Module], str, Kind]] = MappingProxyType(
    {
        "mnist_sr": (MnistSR, "MNIST 4x GAN generator (residual conv/BN/ReLU, 56,547 params)", "generator"),
        "vae_cppn": (VAECPPN, "VAE encoder + CPPN decoder on LR features; any output size", "generator"),
        "srresnet": (SRResNet, "SRGAN generator (SRResNet: BN residual blocks, PixelShuffle)", "generator"),
        "msrresnet": (MSRResNet, "BasicSR modified SRResNet (no BN), the common PSNR baseline", "generator"),
        "rrdbnet": (RRDBNet, "ESRGAN / Real-ESRGAN generator (RRDB, 16.7 M params at x4)", "generator"),
        "compact": (
            Compact,
            "Real-ESRGAN SRVGGNetCompact: plain conv + PReLU at LR size, one PixelShuffle (fastest)",
            "generator",
        ),
        "msrgan": (MSRGANGenerator, "modified SRGAN: multi-kernel, ELU blocks, upsizing conv", "generator"),
        "bicubic": (Bicubic, "MATLAB-compatible bicubic upscaling (no weights)", "baseline"),
        "srcnn": (SRCNN, "SRCNN 9-1-5 (Dong et al. 2015) on the bicubic-upscaled input", "baseline"),
        "mnist_feature_d": (MnistFeatureD, "MNIST GAN feature discriminator (feature map)", "discriminator"),
        "srgan_d": (SRGANDiscriminator, "SRGAN VGG-style discriminator (logit per image)", "discriminator"),
        "wgan_critic": (WGANCritic, "BN-free WGAN-GP critic (linear score per image)", "discriminator"),
        "patch_d": (
            PatchDiscriminator,
            "Real-ESRGAN U-Net D (spectral norm), per-pixel logits",
            "discriminator",
        ),
    }
)


def _entry(name: str) -> tuple[Callable[..., nn.Module], str, Kind]:
    entry = REGISTRY.get(name) if isinstance(name, str) else None
    if entry is None:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(REGISTRY)}")
    return entry


def _parameters(factory: Callable[..., nn.Module]) -> Mapping[str, inspect.Parameter]:
    return inspect.signature(factory).parameters


def create(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name`` with constructor options ``kwargs``.

    ``create(model.arch, **model.config)`` rebuilds any gansr model with the same structure.

    Raises:
        ModelError: ``name`` is not registered (the message lists the names).
        ConfigError: an option is unknown for this model (the message lists the valid ones) or
            has an invalid value.
    """
    factory, _, _ = _entry(name)
    valid = list(_parameters(factory))
    for key in kwargs:
        if key not in valid:
            raise ConfigError(f"unknown option {key!r} for model {name!r}; valid: {', '.join(valid)}")
    return factory(**kwargs)


def architectures() -> list[ArchInfo]:
    """Every registered model, in registry order, with its kind, description and default config."""
    infos = []
    for name, (factory, description, kind) in REGISTRY.items():
        defaults = {key: p.default for key, p in _parameters(factory).items()}
        infos.append(ArchInfo(name, kind, description, jsonable(defaults)))
    return infos
