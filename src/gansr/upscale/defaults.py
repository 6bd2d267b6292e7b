"""Defaults of ``gansr upscale`` that the CLI needs before (and without) importing torch."""

from __future__ import annotations

__all__ = ["DEFAULT_MODEL", "OUTPUT_EXTS"]

#: The model used when none is given: the shipped general-purpose x4 photo model (PSNR-oriented,
#: see ``gansr/weights/README.md``).
DEFAULT_MODEL = "realsr-x4"

#: Output formats of ``gansr upscale --ext`` (``auto`` keeps PNG/JPEG/WebP inputs' format, else PNG).
OUTPUT_EXTS: tuple[str, ...] = ("auto", "png", "jpg", "webp")
