"""Encoding an upscaled image to PNG, JPEG or WebP bytes in memory.

Pixels are quantized by :mod:`gansr.data.io` (``to_pil``; its 16-bit PNG encoder for 16-bit
sources), so the bytes match what ``gansr upscale`` writes to a file. JPEG has no alpha channel:
a transparent image is composited onto white, the usual rendering of transparency in viewers.
"""

from __future__ import annotations

import io

from gansr.data.io import LoadedImage, to_pil
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
    if spec.pil == "PNG" and image.bit_depth == 16:
        # PIL cannot hold 16-bit colour; gansr.data.io's PNG encoder writes it (no public bytes API).
        from gansr.data.io import _encode_png16, _hwc

        return _encode_png16(_hwc(pixels, alpha, 65535), image.icc_profile)
    options: dict[str, object] = {}
    if image.icc_profile:
        options["icc_profile"] = image.icc_profile
    if spec.pil == "JPEG":
        options.update(quality=JPEG_QUALITY, subsampling=0)
    elif spec.pil == "WEBP":
        options.update(quality=WEBP_QUALITY, method=4)
    buffer = io.BytesIO()
    to_pil(pixels, alpha).save(buffer, format=spec.pil, **options)
    return buffer.getvalue()
