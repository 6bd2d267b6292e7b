"""Encoding upscaled frames: encoder defaults, output containers and one segment's writer.

Defaults: H.264 (``libx264``, CRF 18: visually lossless for most material) in 4:2:0 YUV, BT.709,
limited range, for every container but WebM, which gets VP9. Any FFmpeg video encoder PyAV
ships can be named instead (``--codec libx265``, ``libsvtav1``, ``ffv1``, ...); its first
supported pixel format is used when it has no 4:2:0. Whether the output container can hold the
video codec and every copied audio/subtitle stream is checked before any frame is upscaled
(:func:`check_output`), so a bad combination fails in a second, not after hours.
"""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from gansr.errors import ConfigError
from gansr.video.probe import require_av

__all__ = [
    "DEFAULT_CRF",
    "OUTPUT_FORMATS",
    "EncoderSettings",
    "SegmentWriter",
    "check_output",
    "encoder_settings",
    "even_size",
    "output_format",
]

#: FFmpeg muxer per output suffix.
OUTPUT_FORMATS: dict[str, str] = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
    ".ts": "mpegts",
    ".m2ts": "mpegts",
    ".mts": "mpegts",
}

#: Constant-quality setting per encoder when ``crf`` is not given (lower is better and bigger).
DEFAULT_CRF: dict[str, int] = {
    "libx264": 18,
    "libx265": 20,
    "libvpx-vp9": 30,
    "libaom-av1": 30,
    "libsvtav1": 30,
}

# x264 keeps each frame of its look-ahead queue (rc-lookahead frames, at least the B-frames) at
# ~1.8x its 4:2:0 size (with the look-ahead's half-size planes) and each reference frame at ~3.5x
# (half-pel planes). Up to _LARGE_FRAME_BYTES (a little above 4K DCI) the look-ahead is capped at
# _LOOKAHEAD_BYTES of 4:2:0 frames, which leaves x264's default 40 up to 4K UHD. Larger frames
# get no B-frames, one reference and _LARGE_LOOKAHEAD_BYTES of look-ahead (3 frames at 8K):
# measured at 8K, x264 then holds 0.9 GB instead of 2.2 GB (rc-lookahead 10, 3 B-frames, 3
# references, as before) and encodes a little faster; on a test clip the file came out 14%
# smaller at 0.4 dB lower PSNR. x264 runs sliced threads here (PyAV's default), which hold no
# frames of their own, unlike frame threads.
_LOOKAHEAD_BYTES = 500_000_000
_LARGE_FRAME_BYTES = 16_000_000
_LARGE_LOOKAHEAD_BYTES = 150_000_000
_BT709, _MPEG_RANGE, _UNSPECIFIED = 1, 1, 2  # FFmpeg AVCOL_* values


@dataclass(frozen=True)
class EncoderSettings:
    """How the video stream is encoded: FFmpeg encoder name, pixel format and encoder options
    (``crf``, ``preset``, anything else the encoder takes)."""

    codec: str
    pix_fmt: str
    options: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_yuv(self) -> bool:
        return self.pix_fmt.startswith(("yuv", "nv"))

    def as_json(self) -> dict[str, Any]:
        return {"codec": self.codec, "pix_fmt": self.pix_fmt, "options": dict(sorted(self.options.items()))}


def output_format(dest: Path) -> str:
    """The FFmpeg muxer for ``dest`` by its suffix.

    Raises:
        ConfigError: not a video container gansr writes.
    """
    fmt = OUTPUT_FORMATS.get(dest.suffix.lower())
    if fmt is None:
        raise ConfigError(f"{dest}: video output must end in one of {', '.join(sorted(OUTPUT_FORMATS))}")
    return fmt


def encoder_settings(
    fmt: str,
    *,
    codec: str | None = None,
    crf: int | None = None,
    preset: str | None = None,
    options: Mapping[str, str] | None = None,
    size: tuple[int, int] = (0, 0),
) -> EncoderSettings:
    """Resolve the encoder for container ``fmt`` and output ``size`` ``(H, W)``.

    Raises:
        ConfigError: no such video encoder in this FFmpeg build.
    """
    av = require_av()
    name = codec or ("libvpx-vp9" if fmt == "webm" else "libx264")
    try:
        found = av.Codec(name, "w")
    except ValueError:  # UnknownCodecError
        raise ConfigError(
            f"unknown video encoder {name!r} (e.g. libx264, libx265, libvpx-vp9, libsvtav1)"
        ) from None
    if found.type != "video":
        raise ConfigError(f"{name!r} is a {found.type} encoder, not a video encoder")
    formats = [f.name for f in found.video_formats or ()]
    pix_fmt = "yuv420p" if not formats or "yuv420p" in formats else formats[0]
    opts: dict[str, str] = {}
    quality = crf if crf is not None else DEFAULT_CRF.get(found.name)
    if quality is not None:
        opts["crf"] = str(quality)
    if preset is not None:
        opts["preset"] = preset
    height, width = size
    if found.name == "libx264" and height * width:
        opts.update(_x264_memory_options(height * width * 3 // 2))
    if found.name == "libx265":
        opts["x265-params"] = "log-level=error"  # x265 prints its own info lines to stderr
    opts.update({str(k): str(v) for k, v in (options or {}).items()})
    return EncoderSettings(codec=found.name, pix_fmt=pix_fmt, options=opts)


def _x264_memory_options(frame_bytes: int) -> dict[str, str]:
    """x264 options that bound its frame queue for frames of ``frame_bytes`` (4:2:0); see
    :data:`_LOOKAHEAD_BYTES`. Options given by the caller override these."""
    if frame_bytes > _LARGE_FRAME_BYTES:
        return {"rc-lookahead": str(max(3, _LARGE_LOOKAHEAD_BYTES // frame_bytes)), "bf": "0", "refs": "1"}
    frames = _LOOKAHEAD_BYTES // frame_bytes
    return {"rc-lookahead": str(max(5, frames))} if frames < 40 else {}


def even_size(height: int, width: int, pix_fmt: str) -> tuple[int, int]:
    """``(height, width)`` made even where chroma subsampling needs it (4:2:0 both sides, 4:2:2
    the width): an odd side grows by one pixel, which the final resize fills, not padding."""
    if pix_fmt.startswith(("yuv420", "nv12", "nv21", "yuvj420")):
        return height + height % 2, width + width % 2
    if pix_fmt.startswith(("yuv422", "yuvj422")):
        return height, width + width % 2
    return height, width


def add_video_stream(
    container: Any,
    settings: EncoderSettings,
    size: tuple[int, int],
    *,
    time_base: Fraction,
    frame_rate: Fraction,
    sample_aspect: Fraction = Fraction(1),
    color: tuple[int, int] = (_UNSPECIFIED, _UNSPECIFIED),
) -> Any:
    """Add and configure the encoded video stream: timestamps in ``time_base`` (so each source
    frame's time is carried exactly), BT.709 limited-range YUV tags, the source's primaries and
    transfer (``color``; BT.709 when untagged) and the pixel aspect ratio."""
    height, width = size
    stream = container.add_stream(
        settings.codec, rate=frame_rate, width=width, height=height, time_base=time_base
    )
    stream.pix_fmt = settings.pix_fmt
    ctx = stream.codec_context
    ctx.time_base = time_base
    ctx.sample_aspect_ratio = sample_aspect
    if settings.is_yuv:
        ctx.colorspace = _BT709
        ctx.color_range = _MPEG_RANGE
    primaries, trc = color
    ctx.color_primaries = primaries if primaries != _UNSPECIFIED else _BT709
    ctx.color_trc = trc if trc != _UNSPECIFIED else _BT709
    ctx.options = dict(settings.options)
    return stream


def check_output(
    dest: Path,
    settings: EncoderSettings,
    copies: Sequence[Any],
    *,
    time_base: Fraction = Fraction(1, 10_000),
    frame_rate: Fraction = Fraction(25),
) -> str:
    """Check that ``dest``'s container takes the video codec and every stream in ``copies`` (the
    source's audio and subtitle streams) by writing a header into memory; returns the muxer to
    encode segments in (MP4 when it takes the codec: exact timestamps; else Matroska).

    Raises:
        ConfigError: one line naming what does not fit and what to do.
    """
    fmt = output_format(dest)
    timing = (time_base, frame_rate)
    _try_header(
        fmt, settings, timing, (), f"{dest}: {fmt} cannot hold {settings.codec} video; pick another --codec"
    )
    for stream in copies:
        codec = stream.codec_context.name if stream.codec_context else stream.type
        _try_header(
            fmt,
            None,
            timing,
            (stream,),
            f"{dest}: {dest.suffix} cannot hold the source's {codec} {stream.type} stream (copied "
            "untouched); name the output .mkv",
        )
    try:
        _try_header("mp4", settings, timing, (), "")
    except ConfigError:
        return "matroska"
    return "mp4"


def _try_header(
    fmt: str,
    settings: EncoderSettings | None,
    timing: tuple[Fraction, Fraction],
    copies: Sequence[Any],
    message: str,
) -> None:
    """Write a header with these streams into memory; any refusal becomes ``message``."""
    av = require_av()
    out = av.open(io.BytesIO(), "w", format=fmt)
    try:
        if settings is not None:
            time_base, frame_rate = timing
            add_video_stream(out, settings, (64, 64), time_base=time_base, frame_rate=frame_rate)
        for stream in copies:
            out.add_stream_from_template(stream)
        out.start_encoding()
    except (ValueError, av.FFmpegError) as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"{message} ({detail})" if message else detail) from None
    finally:
        try:
            out.close()
        except (ValueError, av.FFmpegError):
            pass


class SegmentWriter:
    """Encode consecutive frames into one video-only file that appears at ``path`` only when
    :meth:`finish` completes (temporary name beside it until then, removed by :meth:`abort`)."""

    def __init__(
        self,
        path: Path,
        fmt: str,
        settings: EncoderSettings,
        size: tuple[int, int],
        *,
        time_base: Fraction,
        frame_rate: Fraction,
        sample_aspect: Fraction = Fraction(1),
        color: tuple[int, int] = (_UNSPECIFIED, _UNSPECIFIED),
    ) -> None:
        self._av = require_av()
        self.path = path
        self.frames = 0
        self._settings = settings
        self._time_base = time_base
        self._tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        self._container = self._av.open(os.fspath(self._tmp), "w", format=fmt)
        try:
            self._stream = add_video_stream(
                self._container,
                settings,
                size,
                time_base=time_base,
                frame_rate=frame_rate,
                sample_aspect=sample_aspect,
                color=color,
            )
        except BaseException:
            self.abort()
            raise

    def write(self, rgb: np.ndarray, pts: int) -> None:
        """Encode one ``(H, W, 3)`` uint8 RGB frame shown at ``pts`` (in ``time_base`` ticks)."""
        frame = self._av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if self._settings.is_yuv:
            frame = frame.reformat(
                format=self._settings.pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG"
            )
        else:
            frame = frame.reformat(format=self._settings.pix_fmt)
        frame.pts = pts
        frame.time_base = self._time_base
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def finish(self) -> None:
        """Flush the encoder, close the file, sync it and rename it into place."""
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            fd = os.open(self._tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop the unfinished segment (safe to call more than once)."""
        try:
            self._container.close()
        except Exception:  # already closed, or the encoder is in a failed state: nothing to keep
            pass
        self._tmp.unlink(missing_ok=True)
