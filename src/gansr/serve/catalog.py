"""The models the web app offers: ``bicubic``, the shipped weights, and any the operator adds.

Requests choose a model by *name* from this list only; the name is looked up here and the
:class:`ModelEntry` says what to load, so no request value ever becomes a file system path.

Each entry's one-line description is the checkpoint's own ``description`` metadata when it has
one; otherwise it is assembled from what the metadata does say (architecture, scale, the input
it takes, the recipe it was trained with), so two models of one architecture still read apart.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gansr.errors import ConfigError, ModelError

__all__ = ["ModelEntry", "build_catalog", "describe"]

logger = logging.getLogger("gansr.serve")

MAX_DESCRIPTION = 200  # characters: one line in the picker


@dataclass(frozen=True)
class ModelEntry:
    """One model the app can run.

    Attributes:
        name: what requests pass as ``model``.
        description: one line for the model picker.
        scale: the model's native upscaling factor.
        default: whether requests without ``model`` use it.
        source: what :class:`gansr.upscale.Upscaler` loads (``"bicubic"`` or a checkpoint path).
    """

    name: str
    description: str
    scale: int
    default: bool
    source: str | Path


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_DESCRIPTION else line[: MAX_DESCRIPTION - 1].rstrip() + "\u2026"


def describe(meta: Mapping[str, Any], *, scale: int, fallback_arch: str = "model") -> str:
    """One line about a model: its ``description`` metadata, or one made from the other fields.

    >>> describe({"arch": "msrresnet", "in_channels": 1, "recipe_preset": "mnist_x4_plus"}, scale=4)
    'msrresnet x4 for grayscale images (recipe mnist_x4_plus)'
    """
    given = meta.get("description")
    if isinstance(given, str) and given.strip():
        return _one_line(given)
    arch = str(meta.get("arch") or fallback_arch)
    kinds = {1: " for grayscale images", 3: " for colour images"}
    channels = meta.get("in_channels")
    kind = kinds.get(channels, "") if isinstance(channels, int) else ""
    recipe = meta.get("recipe_preset")
    trained = f" (recipe {recipe})" if isinstance(recipe, str) and recipe.strip() else ""
    return _one_line(f"{arch} x{scale}{kind}{trained}")


def _bicubic() -> ModelEntry:
    from gansr.models import architectures

    info = next(a for a in architectures() if a.name == "bicubic")
    scale = int(info.default_config.get("scale", 4))
    return ModelEntry("bicubic", info.description, scale, False, "bicubic")


def _shipped() -> list[ModelEntry]:
    """Shipped generators, from their file headers (no weights are read)."""
    from gansr.models.checkpoint import read_metadata, shipped_models

    entries = []
    for name, path in shipped_models().items():
        try:
            meta = read_metadata(path)
        except ModelError as exc:  # a damaged file must not take the whole app down
            logger.warning("skipping shipped model %s: %s", name, exc)
            continue
        scale = meta.get("scale")
        if not isinstance(scale, int) or scale < 1:
            continue  # not a generator (a discriminator or a metadata-only file)
        entries.append(ModelEntry(name, describe(meta, scale=scale), scale, False, path))
    return entries


def _extra(spec: str | os.PathLike[str]) -> ModelEntry:
    """A checkpoint given by the operator (``gansr serve --model PATH``), named by its file stem."""
    from gansr import models

    path = Path(spec)
    if not path.exists():
        raise ConfigError(f"--model {spec}: no such checkpoint file")
    # Loaded once to learn the scale and to fail at start-up, not per request.
    model = models.require_generator(models.load(path))
    arch = getattr(model, "arch", type(model).__name__)
    name = path.parent.name if path.name == "model.safetensors" else path.stem
    meta: Mapping[str, Any] = {}
    if path.suffix == ".safetensors":  # gansr checkpoints carry metadata; peer .pth files do not
        from gansr.models.checkpoint import read_metadata

        try:
            meta = read_metadata(path)
        except ModelError:
            meta = {}
    description = describe({**meta, "arch": arch}, scale=int(model.scale))
    if "description" not in meta:
        description = _one_line(f"{description} ({path.name})")
    return ModelEntry(name, description, int(model.scale), False, path)


def build_catalog(
    extra: Sequence[str | os.PathLike[str]] = (), *, default: str | None = None
) -> tuple[ModelEntry, ...]:
    """Every model the app offers, in picker order: extra checkpoints, shipped models, ``bicubic``.

    Args:
        extra: checkpoint paths added by the operator.
        default: the name requests without ``model`` use; ``None`` picks
            :data:`gansr.upscale.DEFAULT_MODEL` when offered, else the first model.

    Raises:
        ConfigError: an extra checkpoint is missing or two models share a name, or ``default``
            names no offered model.
        ModelError: an extra checkpoint cannot be loaded.
    """
    from gansr.upscale import DEFAULT_MODEL

    entries = [_extra(spec) for spec in extra] + _shipped() + [_bicubic()]
    names = [e.name for e in entries]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"two models are named {name!r}; rename one of the checkpoint files")
    chosen = default if default is not None else (DEFAULT_MODEL if DEFAULT_MODEL in names else names[0])
    if chosen not in names:
        raise ConfigError(f"default model {chosen!r} is not offered; choose one of {', '.join(names)}")
    return tuple(replace(e, default=e.name == chosen) for e in entries)
