"""Upscaling images with a trained model: the :class:`Upscaler` API behind ``gansr upscale``.

``Upscaler`` (in :mod:`gansr.upscale.upscaler`) runs a model on paths, PIL images, NumPy arrays
and tensors of any mode and size (tiled when large); :mod:`gansr.upscale.batch` runs it over files
and folders. Both are imported lazily so that ``import gansr.upscale`` (and the CLI's start-up)
does not pay for torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gansr.upscale.defaults import DEFAULT_MODEL, OUTPUT_EXTS

__all__ = ["DEFAULT_MODEL", "OUTPUT_EXTS", "Upscaler"]

if TYPE_CHECKING:
    from gansr.upscale.upscaler import Upscaler


def __getattr__(name: str) -> Any:
    if name == "Upscaler":
        from gansr.upscale.upscaler import Upscaler

        return Upscaler
    raise AttributeError(f"module 'gansr.upscale' has no attribute {name!r}")
