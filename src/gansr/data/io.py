"""Reading and writing images in every common mode, with atomic writes.

:func:`read_image` turns any PNG/JPEG/BMP/TIFF/WebP (and whatever else Pillow opens) into a
``float32`` ``(C, H, W)`` tensor in ``[0, 1]`` with ``C`` 1 or 3, the alpha channel split off,
EXIF orientation applied and the ICC profile kept. :func:`write_image` does the reverse, writing
to a temporary file in the destination folder that is ``os.replace``\\ d into place.

Pillow reads 16-bit RGB, RGBA and gray+alpha PNGs as 8-bit images (it keeps only the high byte
of each sample), so those three PNG kinds are decoded here: the PNG filters work byte by byte
with an offset of one whole pixel, so each 16-bit channel of the filtered stream is by itself a
valid 16-bit *gray* PNG stream, which Pillow does decode at full precision. Writing 16-bit PNGs
(which Pillow can only do for gray) uses a small encoder with the Paeth filter.

Truncated files are rejected because Pillow's ``ImageFile.LOAD_TRUNCATED_IMAGES`` is ``False``
by default and the whole image is decoded inside the error handling; code that sets that global
to ``True`` opts out of the check.
"""

from __future__ import annotations

import errno
import io
import os
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Literal

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from gansr.data.atomic import atomic_write, remove_stale_temporaries
from gansr.errors import DataError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "LoadedImage",
    "atomic_write",
    "encode_image",
    "from_pil",
    "image_size",
    "list_images",
    "read_image",
    "remove_stale_temporaries",
    "to_pil",
    "write_image",
]

IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
"""Lower-case file suffixes that :func:`list_images` treats as images."""

DEFAULT_MAX_PIXELS: int = 89_478_485
"""Decompression-bomb limit in pixels, checked from the header before decoding: Pillow's own
default warning threshold (``1024 * 1024 * 1024 // 4 // 3``, about 9459 x 9459), which this
check replaces with a :class:`DataError`. A larger ``max_pixels`` is honoured up to Pillow's hard
limit (twice that), which still raises (as a :class:`DataError` too).
"""

Channels = Literal["keep", "rgb", "gray"]
ImageSource = str | os.PathLike[str] | bytes | bytearray | BinaryIO | Image.Image

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# errno values that mean the file could not be read at all (reported as the OS says, not as damage).
_SYSTEM_ERRNOS = frozenset({errno.EIO, errno.ENAMETOOLONG, errno.ENOTDIR, errno.ENXIO, errno.ENODEV})
# Pillow rawmodes of the 16-bit PNG kinds it reduces to 8 bits; value: samples per pixel.
_PNG16_RAWMODES = {"RGB;16B": 3, "RGBA;16B": 4, "LA;16B": 2}
# Adam7 passes: (x0, y0, dx, dy).
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}


@dataclass
class LoadedImage:
    """An image read by :func:`read_image`.

    Attributes:
        pixels: ``float32`` ``(C, H, W)`` in ``[0, 1]``, ``C`` in ``{1, 3}``.
        alpha: ``float32`` ``(1, H, W)`` in ``[0, 1]``, or ``None`` when the source has no alpha.
        bit_depth: 8 or 16, the precision of the source samples.
        mode: the source's PIL mode (``"RGB"``, ``"L"``, ``"P"``, ``"CMYK"``, ``"I;16"``, ...);
            16-bit PNGs report ``"RGB"``, ``"RGBA"`` or ``"LA"`` with ``bit_depth`` 16.
        format: the PIL format name (``"PNG"``, ``"JPEG"``, ...), ``None`` for in-memory images.
        icc_profile: the embedded ICC profile, or ``None`` (also ``None`` after a CMYK source was
            converted to sRGB, since a CMYK profile does not describe the RGB pixels).
        path: the file it came from, when read from a path.
        frames: how many frames the source holds (an animated GIF, WebP or PNG has more than
            one); only the first is decoded.
    """

    pixels: torch.Tensor
    alpha: torch.Tensor | None
    bit_depth: int
    mode: str
    format: str | None
    icc_profile: bytes | None
    path: Path | None
    frames: int = 1

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return int(self.pixels.shape[-2])

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return int(self.pixels.shape[-1])


# --------------------------------------------------------------------------- reading


def read_image(
    source: ImageSource, *, channels: Channels = "keep", max_pixels: int = DEFAULT_MAX_PIXELS
) -> LoadedImage:
    """Read an image into a ``float32`` ``(C, H, W)`` tensor in ``[0, 1]``.

    Args:
        source: a path, the encoded bytes, a binary file object or a ``PIL.Image.Image``.
        channels: ``"keep"`` (gray stays 1 channel, colour is 3), ``"rgb"`` (gray replicated to
            3 channels) or ``"gray"`` (colour reduced to ITU-R 601 luma exactly as PIL's ``"L"``
            conversion, at the source's precision).
        max_pixels: refuse images with more pixels than this, checked from the header before
            any pixel data is decoded.

    Returns:
        A :class:`LoadedImage`; alpha (``LA``, ``RGBA``, ``PA``, ``P`` or ``L``/``RGB`` with a
        transparency key) is split off into ``.alpha``.

    Raises:
        DataError: ``"<name>: <reason>"`` for a missing, empty, unreadable, corrupt, truncated,
            non-image or too large source.
    """
    if channels not in ("keep", "rgb", "gray"):
        raise ValueError(f"channels must be 'keep', 'rgb' or 'gray', not {channels!r}")
    if not isinstance(
        source, str | os.PathLike | bytes | bytearray | memoryview | Image.Image
    ) and not hasattr(source, "read"):
        raise TypeError(f"cannot read an image from a {type(source).__name__}")
    name, path = _describe(source)
    try:
        if isinstance(source, Image.Image):
            arr, alpha, bit_depth, mode, icc = _decode(source, name, max_pixels)
            fmt, frames = source.format, _frame_count(source)
        else:
            if path is not None and path.is_file() and path.stat().st_size == 0:
                raise DataError(f"{name}: empty file")
            stream = _as_stream(source)
            with warnings.catch_warnings():
                # max_pixels replaces Pillow's warning; its hard limit still raises (caught below).
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img = Image.open(stream if stream is not None else path)
            with img:
                frames = _frame_count(img)  # before decoding: seeking frames after load() reloads
                arr, alpha, bit_depth, mode, icc = _decode(img, name, max_pixels)
                fmt = img.format
    except (DataError, MemoryError):
        raise
    except Exception as exc:
        raise _open_error(name, exc, "corrupt or truncated image") from None
    loaded = _finish(arr, alpha, bit_depth, mode, fmt, icc, path, channels)
    loaded.frames = frames
    return loaded


def _frame_count(img: Image.Image) -> int:
    """Frames in an (animated) image, from the header where the format allows; 1 when unknown."""
    try:
        return max(1, int(getattr(img, "n_frames", 1) or 1))
    except Exception:  # counting GIF frames scans the file: damage shows up in the decode instead
        return 1


def from_pil(
    img: Image.Image, *, channels: Channels = "keep", max_pixels: int = DEFAULT_MAX_PIXELS
) -> LoadedImage:
    """Convert a ``PIL.Image.Image`` into a :class:`LoadedImage` (same rules as :func:`read_image`)."""
    return read_image(img, channels=channels, max_pixels=max_pixels)


def _describe(source: ImageSource) -> tuple[str, Path | None]:
    """A display name for error messages and the path, when the source is one."""
    if isinstance(source, str | os.PathLike):
        return os.fspath(source), Path(source)
    if isinstance(source, bytes | bytearray | memoryview):
        return "<bytes>", None
    if isinstance(source, Image.Image):
        filename = getattr(source, "filename", "")
        return (str(filename) if filename else "<PIL image>"), None
    name = getattr(source, "name", None)
    return (str(name) if isinstance(name, str | bytes) and name else "<stream>"), None


def _as_stream(source: ImageSource) -> IO[bytes] | None:
    """An in-memory stream for bytes and file objects; ``None`` for paths (Pillow opens those)."""
    if isinstance(source, str | os.PathLike):
        return None
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        data = source.read()  # read once so the 16-bit PNG path can rescan it from the start
    if not data:
        raise DataError(f"{_describe(source)[0]}: empty file")
    return io.BytesIO(data)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _decode(
    img: Image.Image, name: str, max_pixels: int
) -> tuple[np.ndarray, np.ndarray | None, int, str, bytes | None]:
    """Decode into ``(H, W, C)`` integer samples (uint8 or uint16), alpha ``(H, W)``, bit depth,
    source mode and ICC profile."""
    width, height = img.size
    if width * height > max_pixels:
        raise DataError(
            f"{name}: {width}x{height} image has {width * height} pixels, more than the limit of "
            f"{max_pixels} (pass a larger max_pixels to allow it)"
        )
    icc = img.info.get("icc_profile") or None
    png16 = _png16_source(img)
    if png16 is not None:
        arr, alpha, mode = _decode_png16(png16)
        return arr, alpha, 16, mode, icc

    img.load()  # the full decode happens here, inside the caller's error handling
    mode = img.mode
    img = ImageOps.exif_transpose(img) or img
    if mode == "CMYK":
        converted, icc = _cmyk_to_rgb(img, icc)
        return np.asarray(converted), None, 8, mode, icc
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(img)
        if mode == "I":  # 32-bit integer samples: treated as 16-bit, as Pillow did for 16-bit PNGs
            arr = np.clip(arr, 0, 65535)
        arr = arr.astype(np.uint16)
        return arr[..., None], _key_alpha(arr, img.info.get("transparency")), 16, mode, icc
    if mode == "F":
        arr = np.clip(np.nan_to_num(np.asarray(img, dtype=np.float32)), 0.0, 1.0)
        return np.round(arr * 65535).astype(np.uint16)[..., None], None, 16, mode, icc
    if mode in ("1", "L"):
        arr = np.asarray(img.convert("L"))
        return arr[..., None], _key_alpha(arr, img.info.get("transparency")), 8, mode, icc
    if mode in ("LA", "La"):
        arr = np.asarray(img.convert("LA"))
        return arr[..., :1], arr[..., 1], 8, mode, icc
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in img.info or (img.palette and img.palette.mode == "RGBA")
        arr = np.asarray(img.convert("RGBA" if has_alpha else "RGB"))
        return arr[..., :3], (arr[..., 3] if has_alpha else None), 8, mode, icc
    if mode in ("RGBA", "RGBa"):
        arr = np.asarray(img.convert("RGBA"))
        return arr[..., :3], arr[..., 3], 8, mode, icc
    if mode != "RGB":
        try:
            img = img.convert("RGB")  # RGBX, YCbCr, HSV, LAB
        except ValueError:
            raise DataError(f"{name}: unsupported image mode {mode}") from None
    arr = np.asarray(img)
    return arr, _key_alpha(arr, img.info.get("transparency") if mode == "RGB" else None), 8, mode, icc


def _key_alpha(arr: np.ndarray, key: object) -> np.ndarray | None:
    """Alpha from a PNG tRNS colour key: transparent where the pixel equals the key."""
    if key is None or isinstance(key, bytes):
        return None
    if arr.ndim == 3:  # RGB with an (r, g, b) key
        opaque = np.any(arr != np.asarray(key, dtype=arr.dtype), axis=-1)
    else:
        opaque = arr != key
    maxval = 65535 if arr.dtype == np.uint16 else 255
    return (opaque * maxval).astype(arr.dtype)


def _cmyk_to_rgb(img: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """CMYK to RGB: through the embedded profile into sRGB with LittleCMS when there is one,
    else Pillow's naive conversion. Either way the result carries no ICC profile."""
    if icc:
        try:
            from PIL import ImageCms
        except ImportError:  # Pillow built without LittleCMS
            return img.convert("RGB"), None
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(img, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
            if converted is not None:
                return converted, None
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # a broken profile, or one not for CMYK: fall back to the plain conversion
    return img.convert("RGB"), None


def _png16_source(img: Image.Image) -> bytes | None:
    """The encoded bytes of a 16-bit RGB/RGBA/LA PNG that Pillow would reduce to 8 bits."""
    if img.format != "PNG" or not img.tile or getattr(img, "fp", None) is None:
        return None
    rawmode = img.tile[0][3]  # (codec, extents, offset, args); a plain tuple before Pillow 11
    if isinstance(rawmode, tuple):
        rawmode = rawmode[0] if rawmode else None
    if rawmode not in _PNG16_RAWMODES:
        return None
    fp = img.fp
    pos = fp.tell()
    try:
        fp.seek(0)
        data = fp.read()
    finally:
        fp.seek(pos)
    return data if data.startswith(_PNG_SIGNATURE) else None


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield ``(type, payload)`` of each PNG chunk, checking lengths and CRCs."""
    pos = len(_PNG_SIGNATURE)
    while pos < len(data):
        if pos + 8 > len(data):
            raise DataError("truncated PNG chunk header")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 8 + length
        if end + 4 > len(data):
            raise DataError(f"truncated PNG {ctype.decode('latin-1')} chunk")
        payload = data[pos + 8 : end]
        (crc,) = struct.unpack(">I", data[end : end + 4])
        if zlib.crc32(ctype + payload) != crc:
            raise DataError(f"bad CRC in PNG {ctype.decode('latin-1')} chunk")
        yield ctype, payload
        if ctype == b"IEND":
            return
        pos = end + 4
    raise DataError("PNG ends without IEND (truncated)")


def _decode_png16(data: bytes) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Decode a 16-bit colour type 2 / 4 / 6 PNG to uint16 ``(H, W, C)`` plus alpha and mode."""
    ihdr = None
    idat: list[bytes] = []
    trns = exif = None
    for ctype, payload in _png_chunks(data):
        if ctype == b"IHDR":
            ihdr = payload
        elif ctype == b"IDAT":
            idat.append(payload)
        elif ctype == b"tRNS":
            trns = payload
        elif ctype == b"eXIf":
            exif = payload
    if ihdr is None or len(ihdr) != 13 or not idat:
        raise DataError("PNG without a valid IHDR or image data")
    width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    samples = {2: 3, 4: 2, 6: 4}.get(color_type)
    if depth != 16 or samples is None:
        raise DataError(f"unexpected PNG bit depth {depth} / colour type {color_type}")
    bpp = 2 * samples
    passes = []
    for x0, y0, dx, dy in _ADAM7 if interlace else ((0, 0, 1, 1),):
        pw, ph = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if pw > 0 and ph > 0:
            passes.append((pw, ph))
    expected = sum(ph * (1 + pw * bpp) for pw, ph in passes)
    try:
        # Bounded: a stream that inflates past the size IHDR promises is not decompressed further.
        raw = zlib.decompressobj().decompress(b"".join(idat), expected)
    except zlib.error as exc:
        raise DataError(f"corrupt PNG image data ({exc})") from None
    if len(raw) < expected:
        raise DataError("PNG image data is truncated")

    planes: list[list[bytes]] = [[] for _ in range(samples)]
    pos = 0
    for pw, ph in passes:
        size = ph * (1 + pw * bpp)
        block = np.frombuffer(raw, np.uint8, size, pos).reshape(ph, 1 + pw * bpp)
        pos += size
        filters, body = block[:, :1], block[:, 1:].reshape(ph, pw, samples, 2)
        for c in range(samples):
            planes[c].append(np.concatenate([filters, body[:, :, c].reshape(ph, 2 * pw)], axis=1).tobytes())
    channels = [_decode_gray16_stream(b"".join(p), width, height, interlace) for p in planes]
    arr = np.stack(channels, axis=-1)

    alpha = None
    if color_type in (4, 6):
        arr, alpha = arr[..., :-1], arr[..., -1]
    elif trns is not None and len(trns) == 6:
        alpha = _key_alpha(arr, struct.unpack(">HHH", trns))
    orientation = Image.Exif()
    if exif:
        orientation.load(exif)
    turn = int(orientation.get(0x0112, 1) or 1)
    arr = _orient(arr, turn)
    alpha = None if alpha is None else _orient(alpha, turn)
    mode = {2: "RGB", 4: "LA", 6: "RGBA"}[color_type]
    return np.ascontiguousarray(arr), alpha, mode


def _decode_gray16_stream(filtered: bytes, width: int, height: int, interlace: int) -> np.ndarray:
    """Let Pillow unfilter one channel, wrapped as a 16-bit gray PNG (a mode it reads in full)."""
    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, interlace)
    # Level 0 (stored): this stream only travels from here to Pillow's inflater.
    png = _PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(filtered, 0))
    with Image.open(io.BytesIO(png + _chunk(b"IEND", b""))) as img:
        img.load()
        return np.asarray(img, dtype=np.uint16)


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an ``(H, W, ...)`` array, as ``ImageOps.exif_transpose``."""
    if orientation == 2:
        return arr[:, ::-1]
    if orientation == 3:
        return arr[::-1, ::-1]
    if orientation == 4:
        return arr[::-1]
    if orientation == 5:
        return arr.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(arr, -1)
    if orientation == 7:
        return np.rot90(arr, 2).swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(arr, 1)
    return arr


def _finish(
    arr: np.ndarray,
    alpha: np.ndarray | None,
    bit_depth: int,
    mode: str,
    fmt: str | None,
    icc: bytes | None,
    path: Path | None,
    channels: Channels,
) -> LoadedImage:
    """Apply the channel policy and scale the integer samples to ``float32`` in ``[0, 1]``."""
    if channels == "gray" and arr.shape[-1] == 3:
        # PIL's "L" conversion in its own fixed point, so 8-bit results match it exactly.
        wide = arr.astype(np.int64)
        arr = ((wide[..., 0] * 19595 + wide[..., 1] * 38470 + wide[..., 2] * 7471 + 0x8000) >> 16)[..., None]
    elif channels == "rgb" and arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    scale = np.float32(65535.0 if bit_depth == 16 else 255.0)
    pixels = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32) / scale)
    alpha_t = None
    if alpha is not None:
        alpha_t = torch.from_numpy(np.ascontiguousarray(alpha, dtype=np.float32)[None] / scale)
    return LoadedImage(
        pixels=pixels, alpha=alpha_t, bit_depth=bit_depth, mode=mode, format=fmt, icc_profile=icc, path=path
    )


def image_size(source: str | os.PathLike[str] | bytes) -> tuple[int, int]:
    """``(height, width)`` of an image as :func:`read_image` would return it (EXIF orientation
    applied), read from the header only.

    Raises:
        DataError: the file is missing or not an image.
    """
    name, path = _describe(source)
    try:
        stream = _as_stream(source) if path is None else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(stream if stream is not None else path)
        with img:
            width, height = img.size
            # Orientations 5-8 swap the axes. A PNG eXIf chunk after the pixel data (rare) would
            # need a full decode to find, so only one seen while opening counts.
            has_exif = img.format != "PNG" or "exif" in img.info
            if has_exif and int(img.getexif().get(0x0112, 1) or 1) in (5, 6, 7, 8):
                width, height = height, width
    except DataError:
        raise
    except Exception as exc:
        raise _open_error(name, exc, "corrupt image header") from None
    return height, width


def _open_error(name: str, exc: Exception, damaged: str) -> DataError:
    """The one-line :class:`DataError` for an exception raised while opening or decoding ``name``."""
    if isinstance(exc, Image.DecompressionBombError):
        return DataError(f"{name}: image too large ({_one_line(exc)})")
    if isinstance(exc, OSError) and exc.errno == errno.ELOOP:
        return DataError(f"{name}: symbolic link loop (the link points back to itself)")
    if isinstance(exc, FileNotFoundError):
        if os.path.islink(name):
            target = os.readlink(name)
            return DataError(f"{name}: broken symbolic link (its target {target!r} does not exist)")
        return DataError(f"{name}: no such file")
    if isinstance(exc, IsADirectoryError):
        return DataError(f"{name}: is a folder, not an image")
    if isinstance(exc, PermissionError):
        return DataError(f"{name}: permission denied")
    if isinstance(exc, OSError) and exc.errno in _SYSTEM_ERRNOS:
        # The operating system failed to read the file: not damaged image data.
        return DataError(f"{name}: {exc.strerror or os.strerror(exc.errno)}")
    if isinstance(exc, UnidentifiedImageError):
        return DataError(f"{name}: not an image file (unknown or unsupported format)")
    # Pillow raises many types on damaged data (OSError, SyntaxError, ValueError, ...).
    return DataError(f"{name}: {damaged} ({_one_line(exc)})")


# --------------------------------------------------------------------------- writing


def _quantize(x: torch.Tensor | np.ndarray, maxval: int) -> np.ndarray:
    """``floor(x * maxval + 0.5)`` clamped to ``0..maxval`` (NaN -> 0), as uint8/uint16.

    Computed in float64 for 16-bit output or float64 input: float32 cannot resolve the
    rounding boundaries of 65535 levels.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    wide = maxval > 255 or x.dtype == np.float64
    q = x.astype(np.float64 if wide else np.float32)  # a copy, so the in-place steps are safe
    np.nan_to_num(q, copy=False, nan=0.0)
    np.clip(q, 0.0, 1.0, out=q)
    q *= maxval
    q += 0.5
    np.floor(q, out=q)
    return q.astype(np.uint16 if maxval > 255 else np.uint8)


def _hwc(
    pixels: torch.Tensor | np.ndarray, alpha: torch.Tensor | np.ndarray | None, maxval: int
) -> np.ndarray:
    """Quantized ``(H, W, C)`` samples with alpha as the last channel."""
    if pixels.ndim == 2:
        pixels = pixels[None]
    if pixels.ndim != 3 or pixels.shape[0] not in (1, 3):
        raise ValueError(f"pixels must be (C, H, W) with C 1 or 3 (or (H, W)), got {tuple(pixels.shape)}")
    planes = [_quantize(pixels, maxval)]
    if alpha is not None:
        if alpha.ndim == 2:
            alpha = alpha[None]
        if tuple(alpha.shape) != (1, *pixels.shape[1:]):
            raise ValueError(f"alpha must be (1, H, W) matching pixels, got {tuple(alpha.shape)}")
        planes.append(_quantize(alpha, maxval))
    return np.concatenate(planes, axis=0).transpose(1, 2, 0)


def to_pil(
    pixels: torch.Tensor | np.ndarray, alpha: torch.Tensor | np.ndarray | None = None, *, bit_depth: int = 8
) -> Image.Image:
    """An 8-bit ``L``/``LA``/``RGB``/``RGBA`` PIL image from ``(C, H, W)`` samples in ``[0, 1]``.

    ``bit_depth=16`` gives an ``I;16`` image; PIL has no 16-bit colour or gray+alpha mode, so that
    is only possible for one channel without alpha.
    """
    if bit_depth == 16:
        arr = _hwc(pixels, alpha, 65535)
        if arr.shape[-1] != 1:
            raise ValueError("PIL holds 16-bit samples only for one channel without alpha (mode I;16)")
        return Image.fromarray(arr[..., 0])
    if bit_depth != 8:
        raise ValueError(f"bit_depth must be 8 or 16, not {bit_depth}")
    arr = _hwc(pixels, alpha, 255)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[arr.shape[-1]]
    return Image.fromarray(arr[..., 0] if mode == "L" else arr, mode)


def _writer(
    pixels: torch.Tensor | np.ndarray,
    fmt: str,
    name: str,
    *,
    alpha: torch.Tensor | np.ndarray | None,
    bit_depth: int,
    icc_profile: bytes | None,
    quality: int,
) -> Callable[[IO[bytes]], None]:
    """Check the options and return a function that encodes the image into a binary file."""
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, not {bit_depth}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, not {quality}")
    if bit_depth == 16 and fmt != "PNG":
        raise DataError(f"{name}: 16-bit output needs PNG")
    if alpha is not None and fmt in ("JPEG", "BMP"):
        raise DataError(
            f"{name}: {fmt} cannot store alpha; composite the image first or use PNG, WebP or TIFF"
        )
    if bit_depth == 16:
        encoded = _encode_png16(_hwc(pixels, alpha, 65535), icc_profile)

        def write_png16(f: IO[bytes]) -> None:
            f.write(encoded)

        return write_png16

    img = to_pil(pixels, alpha)
    options: dict[str, object] = {}
    if icc_profile and fmt != "BMP":
        options["icc_profile"] = icc_profile
    if fmt == "JPEG":
        options.update(quality=quality, subsampling=0)
    elif fmt == "WEBP":
        options.update(quality=quality, lossless=quality == 100)
    elif fmt == "TIFF":
        options.update(compression="tiff_lzw")
    return lambda f: img.save(f, format=fmt, **options)


def encode_image(
    pixels: torch.Tensor | np.ndarray,
    format: str,
    *,
    alpha: torch.Tensor | np.ndarray | None = None,
    bit_depth: int = 8,
    icc_profile: bytes | None = None,
    quality: int = 95,
) -> bytes:
    """Encode ``(C, H, W)`` samples in ``[0, 1]`` into image file bytes, exactly as
    :func:`write_image` would write them.

    Args:
        format: ``"png"``, ``"jpeg"``/``"jpg"``, ``"webp"``, ``"bmp"``, ``"tiff"``/``"tif"``
            (any case, with or without a leading dot), or a PIL format name.

    Raises:
        DataError: an unknown format, alpha for JPEG/BMP, or 16 bits for anything but PNG.
    """
    key = format.lower() if format.startswith(".") else "." + format.lower()
    fmt = _FORMATS.get(key)
    if fmt is None:
        raise DataError(f"unknown image format {format!r} (use one of {sorted(set(_FORMATS.values()))})")
    buffer = io.BytesIO()
    _writer(
        pixels,
        fmt,
        f"{fmt} output",
        alpha=alpha,
        bit_depth=bit_depth,
        icc_profile=icc_profile,
        quality=quality,
    )(buffer)
    return buffer.getvalue()


def write_image(
    path: str | os.PathLike[str],
    pixels: torch.Tensor | np.ndarray,
    *,
    alpha: torch.Tensor | np.ndarray | None = None,
    bit_depth: int = 8,
    icc_profile: bytes | None = None,
    quality: int = 95,
) -> Path:
    """Write ``(C, H, W)`` samples in ``[0, 1]`` to ``path``; the format follows the suffix.

    Samples are rounded as ``floor(x * 255 + 0.5)`` (65535 for 16 bits) and clamped. Alpha makes
    ``LA``/``RGBA`` output. JPEG has no alpha and Pillow reads BMP alpha back as opaque, so
    passing alpha for those raises a :class:`DataError`: composite onto a background first.
    JPEG is written without chroma subsampling (4:4:4), as SR output is about fine detail;
    ``quality`` applies to JPEG and WebP (100 gives lossless WebP). ``bit_depth=16`` writes a
    16-bit PNG (gray, gray+alpha, RGB, RGBA) and needs ``.png``.
    The file appears atomically: it is written to a temporary file in the same folder, synced
    and renamed over ``path``; the parent folder is created if missing.

    Returns:
        The path written.
    """
    dest = Path(path)
    fmt = _FORMATS.get(dest.suffix.lower())
    if fmt is None:
        raise DataError(f"{dest}: unknown image suffix {dest.suffix!r} (use one of {sorted(_FORMATS)})")
    writer = _writer(
        pixels, fmt, str(dest), alpha=alpha, bit_depth=bit_depth, icc_profile=icc_profile, quality=quality
    )
    with atomic_write(dest) as f:
        writer(f)
    return dest


def _chunk(ctype: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + ctype + payload + struct.pack(">I", zlib.crc32(ctype + payload))


def _encode_png16(arr: np.ndarray, icc_profile: bytes | None, filters: np.ndarray | None = None) -> bytes:
    """Encode uint16 ``(H, W, C)`` (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) as a 16-bit PNG.

    Rows use the Paeth filter unless ``filters`` (one PNG filter type per row) says otherwise;
    every filter is computed from the unfiltered bytes, so it vectorizes over the whole image.
    """
    height, width, samples = arr.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[samples]
    bpp = 2 * samples
    cur = np.ascontiguousarray(arr, dtype=">u2").view(np.uint8).reshape(height, width * bpp).astype(np.int16)
    left = np.zeros_like(cur)
    left[:, bpp:] = cur[:, :-bpp]
    up = np.zeros_like(cur)
    up[1:] = cur[:-1]
    if filters is None:
        filters = np.full(height, 4, dtype=np.uint8)
    filtered = np.empty(cur.shape, np.uint8)
    for ftype in np.unique(filters):
        rows = slice(None) if bool(np.all(filters == ftype)) else filters == ftype
        x, a, b = cur[rows], left[rows], up[rows]
        if ftype == 0:
            pred = np.zeros_like(x)
        elif ftype == 1:
            pred = a
        elif ftype == 2:
            pred = b
        elif ftype == 3:
            pred = (a + b) // 2
        else:
            c = np.zeros_like(b)
            c[:, bpp:] = b[:, :-bpp]
            pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
            pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        filtered[rows] = (x - pred) & 0xFF
    raw = np.concatenate([filters.astype(np.uint8)[:, None], filtered], axis=1).tobytes()
    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    out = [_PNG_SIGNATURE, _chunk(b"IHDR", header)]
    if icc_profile:
        out.append(_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc_profile)))
    out += [_chunk(b"IDAT", zlib.compress(raw, 6)), _chunk(b"IEND", b"")]
    return b"".join(out)


# --------------------------------------------------------------------------- listing


def list_images(
    root: str | os.PathLike[str], *, recursive: bool = True, suffixes: frozenset[str] = IMAGE_SUFFIXES
) -> list[Path]:
    """Image files under ``root`` (by suffix, case-insensitive: lower-case ``suffixes``, default
    :data:`IMAGE_SUFFIXES`), sorted by path.

    Hidden files (names starting with ``.``, e.g. macOS ``._x.png`` resource forks) are skipped.
    Symlinked folders are followed once each. A ``root`` that is itself an image file gives
    ``[root]``.

    Raises:
        DataError: ``root`` does not exist or is neither a folder nor an image file.
    """
    base = Path(root)
    if base.is_file():
        if base.suffix.lower() in suffixes:
            return [base]
        raise DataError(f"{base}: not an image file (suffix {base.suffix!r})")
    if not base.is_dir():
        raise DataError(f"{base}: no such folder")
    found: list[Path] = []
    seen: set[str] = set()
    for folder, dirs, files in os.walk(base, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a symlink loop or a second link to the same folder
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        found.extend(
            Path(folder) / f
            for f in files
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in suffixes
        )
    return sorted(found)
