"""The web app's configuration and the limits every request is checked against.

Checks here run on the event loop before any work is queued, so they only look at cheap things:
the form values and the image *header* (Pillow's lazy ``Image.open`` reads the format and size
without decoding pixels). The full decode happens later, in a worker thread, through
:func:`gansr.data.io.read_image`, which enforces the same pixel limit again.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from gansr.errors import ConfigError
from gansr.serve.errors import ApiError

__all__ = [
    "ACCEPTED_FORMATS",
    "DECODERS",
    "MAX_OUTSCALE",
    "MIN_OUTSCALE",
    "OUTPUT_FORMATS",
    "OutputFormat",
    "ServeConfig",
    "output_size",
    "parse_format",
    "parse_outscale",
    "sniff_image",
]

MIN_OUTSCALE = 1.0
MAX_OUTSCALE = 8.0

# The Pillow decoders tried on an upload, and the format names they may report. MPO is the
# multi-picture JPEG many cameras and phones write: Pillow's JPEG decoder opens it and reports "MPO".
DECODERS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "BMP", "TIFF")
ACCEPTED_FORMATS: tuple[str, ...] = (*DECODERS, "MPO")
_ACCEPTED_NAMES = "PNG, JPEG, WebP, BMP or TIFF"


@dataclass(frozen=True)
class OutputFormat:
    """One encoding the API can return: Pillow's format name, MIME type and file suffix."""

    pil: str
    media_type: str
    suffix: str
    alpha: bool  # whether the format stores transparency


OUTPUT_FORMATS: dict[str, OutputFormat] = {
    "png": OutputFormat("PNG", "image/png", ".png", alpha=True),
    "jpeg": OutputFormat("JPEG", "image/jpeg", ".jpg", alpha=False),
    "webp": OutputFormat("WEBP", "image/webp", ".webp", alpha=True),
}


@dataclass(frozen=True)
class ServeConfig:
    """Settings of one ``gansr serve`` app.

    Attributes:
        host: interface to bind; loopback by default, since the app has no authentication.
        port: TCP port (0 lets the OS pick a free one).
        workers: inference threads running at the same time.
        queue: requests allowed to wait for a worker; beyond ``workers + queue`` requests in
            progress the app answers 503 with ``Retry-After``.
        max_upload_mb: largest accepted image file, in MB (10**6 bytes).
        max_pixels: largest accepted input image, in pixels (checked from the header).
        max_output_pixels: largest result, in pixels (input pixels times the scale squared).
        device: torch device for inference (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``).
        default_model: the model used when a request names none (``None``: the catalog's default).

    Raises:
        ConfigError: a value is out of range.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    queue: int = 4
    max_upload_mb: float = 20.0
    max_pixels: int = 4096 * 4096
    max_output_pixels: int = 8192 * 8192
    device: str = "auto"
    default_model: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host.strip():
            raise ConfigError("host must be a non-empty interface name or address")
        _check_int("port", self.port, 0, 65535)
        _check_int("workers", self.workers, 1, 64)
        _check_int("queue", self.queue, 0, 10_000)
        _check_int("max_pixels", self.max_pixels, 1, None)
        _check_int("max_output_pixels", self.max_output_pixels, 1, None)
        mb = self.max_upload_mb
        if isinstance(mb, bool) or not isinstance(mb, int | float) or not math.isfinite(mb) or mb <= 0:
            raise ConfigError(f"max_upload_mb must be a positive number, got {mb!r}")

    @property
    def max_upload_bytes(self) -> int:
        """The upload limit in bytes."""
        return int(self.max_upload_mb * 1_000_000)

    @property
    def capacity(self) -> int:
        """Requests that may be in progress at once (running plus waiting)."""
        return self.workers + self.queue


def _check_int(name: str, value: object, low: int, high: int | None) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    if not ok or (high is not None and value > high):  # type: ignore[operator]
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{name} must be an integer {bound}, got {value!r}")


# --------------------------------------------------------------------------- request values


def parse_outscale(text: str | None) -> float | None:
    """The ``outscale`` form value as a float in ``[MIN_OUTSCALE, MAX_OUTSCALE]``, ``None`` if absent.

    Raises:
        ApiError: 400 for a value that is not a finite number in range.
    """
    if text is None or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise ApiError(400, f"outscale must be a number, got {text[:40]!r}") from None
    if not math.isfinite(value) or not MIN_OUTSCALE <= value <= MAX_OUTSCALE:
        raise ApiError(
            400, f"outscale must be between {MIN_OUTSCALE:g} and {MAX_OUTSCALE:g}, got {text[:40]}"
        )
    return value


def parse_format(text: str | None) -> str:
    """The ``format`` form value (``png`` when absent; ``jpg`` is taken for ``jpeg``).

    Raises:
        ApiError: 400 for an unknown format.
    """
    if text is None or not text.strip():
        return "png"
    name = text.strip().lower()
    name = "jpeg" if name == "jpg" else name
    if name not in OUTPUT_FORMATS:
        raise ApiError(400, f"format must be one of {', '.join(OUTPUT_FORMATS)}, got {text[:40]!r}")
    return name


def output_size(height: int, width: int, *, scale: int, outscale: float | None) -> tuple[int, int]:
    """The result's ``(height, width)``: the model's ``scale``, or ``outscale`` when given.

    Rounds as :meth:`gansr.upscale.Upscaler.output_size` does, so the limit checked here is the
    size that will actually be produced.
    """
    if outscale is None:
        return height * scale, width * scale
    return max(1, round(height * outscale)), max(1, round(width * outscale))


# --------------------------------------------------------------------------- the upload


def sniff_image(data: bytes, *, max_pixels: int) -> tuple[str, int, int]:
    """Identify an upload by its content and check its size from the header alone.

    Returns:
        ``(format, width, height)`` with ``format`` a Pillow name from :data:`ACCEPTED_FORMATS`.

    Raises:
        ApiError: 400 empty, 415 not an image or a type outside the allow-list, 413 more pixels
            than ``max_pixels``, 422 a header Pillow cannot parse.
    """
    if not data:
        raise ApiError(400, "the uploaded image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # The pixel limit below replaces Pillow's warning; its hard limit still raises.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # Only the allow-listed decoders are tried, so exotic plugins never see the bytes.
            with Image.open(io.BytesIO(data), formats=DECODERS) as img:
                fmt, (width, height) = str(img.format), img.size
    except UnidentifiedImageError:
        raise _unidentified(data) from None
    except Image.DecompressionBombError:
        raise ApiError(413, f"the image has too many pixels (the limit is {max_pixels:,})") from None
    except Exception as exc:  # a damaged header: Pillow raises OSError, SyntaxError, struct.error, ...
        raise ApiError(422, f"the image header is corrupt ({type(exc).__name__})") from None
    if width * height > max_pixels:
        raise ApiError(
            413,
            f"the image is {width}x{height} = {width * height:,} pixels, "
            f"more than the limit of {max_pixels:,}",
        )
    return fmt, width, height


def _unidentified(data: bytes) -> ApiError:
    """Why the allow-listed decoders refused ``data``: a damaged header of an accepted type (422),
    a known but unsupported type (415), or not an image at all (415).

    Uses only the plugins' signature checks on the first 16 bytes (what ``Image.open`` itself
    reads first), so no decoder outside the allow-list parses anything.
    """
    Image.init()
    prefix = data[:16]
    for name, (_factory, accept) in Image.OPEN.items():
        if accept is not None and accept(prefix):
            if name in DECODERS:
                return ApiError(422, f"the {name} image is corrupt (its header cannot be read)")
            return ApiError(415, f"unsupported image type {name}; upload {_ACCEPTED_NAMES}")
    return ApiError(415, f"the upload is not an image (its content is not {_ACCEPTED_NAMES})")
