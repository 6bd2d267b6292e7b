"""The web app's configuration and the limits every request is checked against.

Checks here run on the event loop before any work is queued, so they only look at cheap things:
the form values and the image *header* (Pillow's lazy ``Image.open`` reads the format, size, bands
and sample depth without decoding pixels). The header is also what a request's memory cost is
estimated from (:func:`gansr.serve.worker.job_cost`). The full decode happens later, in a worker
thread, through :func:`gansr.data.io.read_image`, which enforces the same pixel limit again.
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
    "ImageHeader",
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

    Requests are admitted by what they cost, not by how many there are: each upload's memory
    need (its bytes, the decoded and upscaled pixels, the model's forward pass) is estimated from
    the image header and reserved in a memory budget before any work starts (see
    :mod:`gansr.serve.admission`). Cheap requests therefore queue in large numbers; expensive
    ones queue only while the budget has room for them.

    Attributes:
        host: interface to bind; loopback by default, since the app has no authentication.
        port: TCP port (0 lets the OS pick a free one).
        workers: inference threads running at the same time.
        queue: requests that may wait for *memory* (their cost does not fit the budget now);
            beyond that, or after ``max_wait_s``, the app answers 503 with ``Retry-After``.
            Requests that fit wait only for a worker thread and are not counted here.
        max_upload_mb: largest accepted image file, in MB (10**6 bytes).
        max_pixels: largest accepted input image, in pixels (checked from the header).
        max_output_pixels: largest result, in pixels (input pixels times the scale squared).
        device: torch device for inference (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``).
        default_model: the model used when a request names none (``None``: the catalog's default).
        memory_budget_mb: memory, in MB, that requests in progress may hold at once (uploads
            being received, and the estimated cost of admitted jobs). ``None``: half of the RAM
            available when the app starts (at least 256 MB). A single request whose cost
            exceeds the whole budget gets 413.
        max_wait_s: longest a complete upload waits for memory and a worker before it gets 503.
        body_timeout_s: longest the whole request body may take to arrive (408 after that).
        body_idle_s: longest the body may pause between two chunks (408 after that).

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
    memory_budget_mb: float | None = None
    max_wait_s: float = 30.0
    body_timeout_s: float = 120.0
    body_idle_s: float = 15.0

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host.strip():
            raise ConfigError("host must be a non-empty interface name or address")
        _check_int("port", self.port, 0, 65535)
        _check_int("workers", self.workers, 1, 64)
        _check_int("queue", self.queue, 0, 10_000)
        _check_int("max_pixels", self.max_pixels, 1, None)
        _check_int("max_output_pixels", self.max_output_pixels, 1, None)
        _check_positive("max_upload_mb", self.max_upload_mb)
        if self.memory_budget_mb is not None:
            _check_positive("memory_budget_mb", self.memory_budget_mb)
        _check_positive("max_wait_s", self.max_wait_s)
        _check_positive("body_timeout_s", self.body_timeout_s)
        _check_positive("body_idle_s", self.body_idle_s)

    @property
    def max_upload_bytes(self) -> int:
        """The upload limit in bytes."""
        return int(self.max_upload_mb * 1_000_000)

    def memory_budget_bytes(self) -> int:
        """The memory budget in bytes (reads the available RAM when it is not set)."""
        if self.memory_budget_mb is not None:
            return int(self.memory_budget_mb * 1_000_000)
        from gansr.engine.device import available_ram

        return max(AUTO_BUDGET_MIN, available_ram() // 2)


# The automatic memory budget never goes below this, so a busy machine still serves small images.
AUTO_BUDGET_MIN = 256 * 1_000_000


def _check_positive(name: str, value: object) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value <= 0:  # type: ignore[operator]
        raise ConfigError(f"{name} must be a positive number, got {value!r}")


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


@dataclass(frozen=True)
class ImageHeader:
    """What an upload's header says, read without decoding its pixels.

    Attributes:
        format: a Pillow format name from :data:`ACCEPTED_FORMATS`.
        width / height: the size in pixels (before any EXIF rotation).
        channels: colour channels once decoded (1 gray, 3 colour).
        alpha: whether the image has (or may have) transparency.
        bits: bits per sample of the source, 8 or 16.
    """

    format: str
    width: int
    height: int
    channels: int = 3
    alpha: bool = False
    bits: int = 8


def sniff_image(data: bytes, *, max_pixels: int) -> ImageHeader:
    """Identify an upload by its content and check its size from the header alone.

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
                header = _header(img, data)
    except UnidentifiedImageError:
        raise _unidentified(data) from None
    except Image.DecompressionBombError:
        raise ApiError(413, f"the image has too many pixels (the limit is {max_pixels:,})") from None
    except Exception as exc:  # a damaged header: Pillow raises OSError, SyntaxError, struct.error, ...
        raise ApiError(422, f"the image header is corrupt ({type(exc).__name__})") from None
    width, height = header.width, header.height
    if width * height > max_pixels:
        raise ApiError(
            413,
            f"the image is {width}x{height} = {width * height:,} pixels, "
            f"more than the limit of {max_pixels:,}",
        )
    return header


def _header(img: Image.Image, data: bytes) -> ImageHeader:
    """Bands and depth of a lazily opened image, erring on the costly side where unsure."""
    mode = img.mode
    bands = img.getbands()
    # A tRNS key colour (PNG) also decodes to an alpha plane, as does an alpha band.
    alpha = "A" in bands or "a" in bands or "transparency" in img.info
    # A palette decodes to RGB (or to L when it is gray: counting RGB errs on the costly side).
    channels = 1 if mode in ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F") else 3
    bits = 16 if mode.startswith(("I", "F")) else 8
    if img.format == "PNG" and len(data) > 24 and data[24] == 16:  # IHDR bit depth
        bits = 16  # Pillow opens 16-bit colour PNGs as 8-bit RGB; gansr decodes all 16 bits
    elif img.format == "TIFF":
        per_sample = img.tag_v2.get(258, (8,))  # BitsPerSample
        per_sample = per_sample if isinstance(per_sample, tuple) else (per_sample,)
        bits = 16 if max(int(b) for b in per_sample) > 8 else bits
    return ImageHeader(str(img.format), img.size[0], img.size[1], channels, alpha, bits)


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
