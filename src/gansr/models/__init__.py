"""Generators, discriminators and the registry that builds them by name.

    >>> from gansr import models
    >>> g = models.create("rrdbnet", num_block=6, scale=4)
    >>> again = models.create(g.arch, **g.config)       # same structure
    >>> [a.name for a in models.architectures()][:3]
    ['mnist_sr', 'vae_cppn', 'srresnet']

Every model has ``arch`` and ``config``; generators also ``scale``, ``in_channels``,
``out_channels`` and ``size_multiple`` (see :class:`gansr.models.blocks.Generator`).

``load`` / ``save`` (:mod:`gansr.models.checkpoint`) and ``count_parameters`` / ``count_macs`` /
``profile_model`` (:mod:`gansr.models.profile`) are re-exported lazily: they are imported on first
use, which keeps ``import gansr.models`` light and lets those modules evolve on their own.
"""

from __future__ import annotations

import importlib
from typing import Any

from gansr.models.registry import REGISTRY, ArchInfo, architectures, create

__all__ = [
    "REGISTRY",
    "ArchInfo",
    "architectures",
    "count_macs",
    "count_parameters",
    "create",
    "load",
    "profile_model",
    "save",
]

# Lazily re-exported name -> the submodule that defines it.
_LAZY = {
    "load": "checkpoint",
    "save": "checkpoint",
    "count_parameters": "profile",
    "count_macs": "profile",
    "profile_model": "profile",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
