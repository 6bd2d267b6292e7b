"""Building losses from config entries: the table of loss types, :func:`build_loss` and
:func:`build_adversarial`. The registry imports the loss modules, never the other way round."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from gansr.errors import ConfigError
from gansr.losses._options import build_from_options, check_options, check_range
from gansr.losses.adversarial import ADVERSARIAL_TYPES, AdversarialLoss
from gansr.losses.artifacts import LDLLoss
from gansr.losses.base import Loss
from gansr.losses.feature_matching import FeatureMatchingLoss
from gansr.losses.gradient import GradientLoss
from gansr.losses.kl import KLLoss
from gansr.losses.perceptual import PerceptualLoss
from gansr.losses.pixel import CharbonnierLoss, L1Loss, MSELoss
from gansr.losses.structural import MSSSIMLoss, SSIMLoss

__all__ = ["LOSS_TYPES", "MIX_KEYS", "build_adversarial", "build_loss", "parse_entry"]

LOSS_TYPES: dict[str, type[Loss]] = {
    "l1": L1Loss,
    "mse": MSELoss,
    "charbonnier": CharbonnierLoss,
    "perceptual": PerceptualLoss,
    "ssim": SSIMLoss,
    "ms_ssim": MSSSIMLoss,
    "feature_matching": FeatureMatchingLoss,
    "kl": KLLoss,
    "ldl": LDLLoss,
    "gradient": GradientLoss,
    **ADVERSARIAL_TYPES,
}
"""Every ``type`` a loss config entry may name; the class's keyword arguments are its options."""

MIX_KEYS = ("type", "name", "weight")
"""Keys of a config entry that belong to the mix rather than to the loss."""

_MIX_SCHEMA = {"name": str, "weight": float}


def parse_entry(cfg: Any, where: str = "loss") -> tuple[str, str, float, Loss]:
    """Check one config entry and build its loss: returns ``(type, name, weight, loss)``.

    ``name`` defaults to the type; ``weight`` defaults to 1 and must be >= 0.
    """
    if not isinstance(cfg, Mapping):
        raise ConfigError(
            f"{where}: expected a mapping like {{type: l1, weight: 1.0}}, got {type(cfg).__name__}"
        )
    kind = cfg.get("type")
    if kind is None:
        raise ConfigError(f"{where}: missing key 'type' (one of {', '.join(LOSS_TYPES)})")
    if kind not in LOSS_TYPES:
        raise ConfigError(f"{where}: unknown loss type {kind!r} (known: {', '.join(LOSS_TYPES)})")
    owner = f"{where} {kind!r}" if where != "loss" else f"loss {kind!r}"
    mix = check_options(owner, {key: cfg[key] for key in ("name", "weight") if key in cfg}, _MIX_SCHEMA)
    name = mix.get("name", kind)
    if not name or "." in name:
        raise ConfigError(f"{owner}: option 'name' must be a non-empty string without '.', got {name!r}")
    weight = check_range(owner, "weight", mix.get("weight", 1.0), low=0.0)
    options = {key: value for key, value in cfg.items() if key not in MIX_KEYS}
    loss = build_from_options(LOSS_TYPES[kind], options, owner)
    return kind, name, weight, loss


def build_loss(cfg: Mapping[str, Any]) -> Loss:
    """Build one loss from a config entry such as ``{"type": "charbonnier", "eps": 1e-3}``.

    ``type`` is a key of :data:`LOSS_TYPES`; the other keys are the loss class's keyword options.
    The mix-level keys ``weight`` and ``name`` are checked but not applied here (a
    :class:`~gansr.losses.MixLoss` applies them), so a mix entry can be built on its own.

    Raises:
        ConfigError: unknown type, unknown option, mistyped or out-of-range value; the one-line
            message names the key.
    """
    return parse_entry(cfg)[3]


def build_adversarial(cfg: Mapping[str, Any]) -> AdversarialLoss:
    """Build an adversarial loss from ``{"type": "vanilla" | "lsgan" | "wgan_gp" | "ragan", ...}``.

    The other keys are the class's options (e.g. ``label_smoothing``, ``lambda_gp``, ``drift``,
    ``n_critic``); the mix-level keys ``weight`` and ``name`` are accepted and ignored, so a mix
    entry can be passed as is. Unknown types, unknown options and mistyped values raise
    :class:`~gansr.errors.ConfigError` naming the key.
    """
    if not isinstance(cfg, Mapping) or cfg.get("type") not in ADVERSARIAL_TYPES:
        got = cfg.get("type") if isinstance(cfg, Mapping) else cfg
        raise ConfigError(
            f"adversarial loss: 'type' must be one of {', '.join(map(repr, ADVERSARIAL_TYPES))}, got {got!r}"
        )
    return cast(AdversarialLoss, build_loss(cfg))
