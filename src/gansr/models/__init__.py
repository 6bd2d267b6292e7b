"""Generators, discriminators, and the two ways to get one: ``create`` and ``load``.

    >>> from gansr import models
    >>> g = models.create("rrdbnet", num_block=6, scale=4)
    >>> again = models.create(g.arch, **g.config)       # same structure
    >>> [a.name for a in models.architectures()][:3]
    ['mnist_sr', 'vae_cppn', 'srresnet']

* :func:`create` builds an architecture from its registry name and config, with fresh random
  weights: the start of training.
* :func:`load` is the one way from a name or path to a model with trained weights, ready for
  inference: a shipped model name, a gansr ``.safetensors`` checkpoint, a peer ``.pth`` (ESRGAN,
  Real-ESRGAN, BasicSR), an ``.onnx`` file, or the weightless ``bicubic``. An architecture name
  loads only with ``random_weights=True`` (seeded by ``seed``), the explicit way to get an
  untrained network for speed and memory benchmarks. :func:`require_generator` refuses anything
  that is not an SR generator (no integer ``scale``), such as a discriminator.

Every model has ``arch`` and ``config``; generators also ``scale``, ``in_channels``,
``out_channels`` and ``size_multiple`` (see :class:`gansr.models.blocks.Generator`). A loaded model
also has ``metadata``, which says where its weights came from.

``load`` / ``save`` / ``require_generator`` (:mod:`gansr.models.checkpoint`) and
``count_parameters`` / ``count_macs`` / ``profile_model`` (:mod:`gansr.models.profile`) are
re-exported lazily: they are imported on first use, which keeps ``import gansr.models`` light.
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
    "require_generator",
    "save",
]

# Lazily re-exported name -> the submodule that defines it.
_LAZY = {
    "load": "checkpoint",
    "save": "checkpoint",
    "require_generator": "checkpoint",
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
