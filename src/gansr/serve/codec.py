"""Encoding an upscaled image to PNG, JPEG or WebP bytes in memory.

Pixels are encoded by :func:`gansr.data.io.encode_image` (16-bit PNG for 16-bit sources), so
the bytes match what ``gansr upscale`` writes to a file. JPEG has no alpha channel: a
transparent image is composited onto white, the usual rendering of transparency in viewers.
"""

from __future__ import annotations

from gansr.data.io import LoadedImage, encode_image
from gansr.serve.limits import OUTPUT_FORMATS

__all__ = ["JPEG_QUALITY", "WEBP_QUALITY", "encode"]

JPEG_QUALITY = 95
WEBP_QUALITY = 92


def encode(image: LoadedImage, fmt: str) -> bytes:
    """Encode ``image`` as ``fmt`` (a key of :data:`~gansr.serve.limits.OUTPUT_FORMATS`).

    PNG keeps alpha and 16-bit depth; WebP keeps alpha (8 bits); JPEG drops alpha onto white and
    is written without chroma subsampling, since SR output is about fine detail. The ICC profile,
    when the image carries one, is embedded.
    """
    spec = OUTPUT_FORMATS[fmt]
    pixels, alpha = image.pixels, image.alpha
    if alpha is not None and not spec.alpha:
        pixels, alpha = pixels * alpha + (1.0 - alpha), None  # composite onto white
    return encode_image(
        pixels,
        spec.pil,
        alpha=alpha,
        bit_depth=image.bit_depth if spec.pil == "PNG" else 8,
        icc_profile=image.icc_profile,
        quality=WEBP_QUALITY if spec.pil == "WEBP" else JPEG_QUALITY,
    )
