"""Opening a source video with PyAV: what it holds, and its frames as they decode.

PyAV (``pip install 'gansr[video]'``) bundles FFmpeg's libraries, so every container and codec
FFmpeg reads works without an ``ffmpeg`` binary. Every FFmpeg failure on the source becomes a
one-line :class:`~gansr.errors.DataError`, and so does data FFmpeg could only partly read (a
packet or frame flagged corrupt, fewer frames than the header announces): a damaged source is
never silently turned into a shorter video.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from gansr.errors import DataError, GansrError

__all__ = [
    "VideoInfo",
    "SourceReader",
    "VideoSupportMissing",
    "fingerprint",
    "open_source",
    "probe",
    "require_av",
    "to_rgb",
]

# Finest time base segments are encoded in: a coarse source time base (1/30, 1/1000) is refined
# by an integer factor, so source timestamps convert exactly and the joins between segments have
# ticks to spare when decode timestamps need nudging (see gansr.video.merge).
_MIN_TIMESCALE = 10_000
_UNSPECIFIED = 2  # AVCOL_SPC_UNSPECIFIED / AVCOL_PRI_UNSPECIFIED / AVCOL_TRC_UNSPECIFIED


class VideoSupportMissing(GansrError):
    """PyAV, which gansr's video support runs on, is not installed."""


def require_av() -> ModuleType:
    """The ``av`` module, or a one-line :class:`VideoSupportMissing` saying how to install it."""
    try:
        import av
    except ImportError:
        raise VideoSupportMissing(
            "video needs PyAV: pip install 'gansr[video]' (or pip install av)"
        ) from None
    return av


@dataclass(frozen=True)
class VideoInfo:
    """A source video as :func:`probe` found it.

    Attributes:
        width, height: the first frame's size as displayed (after ``rotation``).
        rotation: degrees counter-clockwise the frames are turned for display (0, 90, 180, 270):
            applied to the pixels, since the re-encoded video carries no rotation tag.
        time_base: the source video stream's time base.
        work_time_base: ``time_base`` refined to at least 1/10000 s (an integer factor finer):
            the time base of the encoded segments and the output's video stream.
        frame_rate: the average frame rate (the nominal one for constant-rate video).
        frames: the number of video packets in the file, one per frame (counted by
            :func:`probe`'s scan; for progress and the segment count).
        duration: the video's duration in seconds (the stream's, else the container's), if known.
        sample_aspect: the pixel aspect ratio of the source (1 for square pixels).
        color_primaries, color_trc: the source's colour tags (FFmpeg enum values), kept on the
            output (upscaling does not change them).
        audio, subtitles: how many audio and subtitle streams will be copied.
    """

    path: Path
    width: int
    height: int
    rotation: int
    time_base: Fraction
    work_time_base: Fraction
    frame_rate: Fraction
    frames: int
    duration: float | None
    sample_aspect: Fraction
    color_primaries: int
    color_trc: int
    audio: int
    subtitles: int

    def estimated_frames(self) -> int:
        """How many frames decoding will give: the packet count (for progress; exact for nearly
        every file, the decoder has the last word)."""
        return self.frames


def open_source(path: Path) -> Any:
    """Open ``path`` for reading with PyAV; a missing, unreadable or non-video file raises a
    one-line :class:`DataError`."""
    av = require_av()
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a video")
    try:
        container = av.open(os.fspath(path), metadata_errors="replace")
    except av.FFmpegError as exc:
        raise DataError(f"{path}: not a readable video ({_reason(exc)}); corrupt or truncated?") from None
    if not container.streams.video:
        container.close()
        raise DataError(f"{path}: no video stream")
    return container


def probe(path: Path) -> VideoInfo:
    """Decode ``path``'s first frame (size, rotation and colour as the frames really are, which
    headers do not always say) and scan every packet of the file (no decoding), so that a
    truncated or damaged source fails now, in a second, not after hours of upscaling.

    Raises:
        DataError: missing, not a video, no decodable frame, corrupt or truncated.
    """
    with SourceReader(path) as reader:
        container, stream = reader.container, reader.stream
        first = next(reader.frames(), None)
        if first is None:
            raise DataError(f"{path}: the video stream has no decodable frame")
        rotation = round((first.rotation or 0) / 90) % 4 * 90
        width, height = (first.height, first.width) if rotation in (90, 270) else (first.width, first.height)
        time_base = stream.time_base or Fraction(1, 90_000)
        rate = Fraction(stream.average_rate or stream.guessed_rate or stream.base_rate or 25)
        sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio or Fraction(1)
        if rotation in (90, 270):
            sar = 1 / sar
        duration = _stream_duration(stream)
        if duration is None and container.duration:
            duration = container.duration / 1_000_000  # AV_TIME_BASE
        primaries, trc = int(first.color_primaries), int(first.color_trc)
        video_index = stream.index
        audio, subtitles = len(container.streams.audio), len(container.streams.subtitles)
    with SourceReader(path) as reader:
        counts = _scan(reader.container, path, rate)
    return VideoInfo(
        path=path,
        width=width,
        height=height,
        rotation=rotation,
        time_base=time_base,
        work_time_base=_refine(time_base),
        frame_rate=rate,
        frames=counts[video_index],
        duration=duration,
        sample_aspect=Fraction(sar) if sar > 0 else Fraction(1),
        color_primaries=primaries,
        color_trc=trc,
        audio=audio,
        subtitles=subtitles,
    )


def _scan(container: Any, path: Path, frame_rate: Fraction) -> dict[int, int]:
    """Read every packet (no decoding) and check the file is whole: no FFmpeg error, no packet
    flagged corrupt, and no stream ending short of its header. FFmpeg stops silently at the cut
    of a truncated MP4 whose index is up front, or of a Matroska file, so: an MP4/MOV video
    stream must have every sample its table lists, and a video or audio stream that states its
    duration (or a file without audio: the file's) must reach it (within two frames, or 0.25 s
    of audio). Returns packets per stream."""
    av = require_av()
    streams = [s for s in container.streams if s.type in ("video", "audio", "subtitle")]
    counts = {s.index: 0 for s in streams}
    ends: dict[int, float] = {}
    try:
        for packet in container.demux(*streams):
            if packet.size == 0 and packet.pts is None:
                continue  # end-of-stream marker
            if packet.is_corrupt:
                raise DataError(
                    f"{path}: corrupt or truncated {packet.stream.type} data near {_when(packet)}"
                )
            index = packet.stream.index
            counts[index] += 1
            if packet.pts is not None and packet.time_base is not None:
                end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                ends[index] = max(ends.get(index, end), end)
    except av.FFmpegError as exc:
        raise DataError(f"{path}: corrupt or truncated video ({_reason(exc)})") from None
    is_mov = bool({"mov", "mp4"} & set(container.format.name.split(",")))
    for stream in streams:
        found = counts[stream.index]
        if stream.type == "video" and is_mov and stream.frames and found < stream.frames:
            raise DataError(f"{path}: truncated video: {found} of {stream.frames} frames are in the file")
        if stream.type == "subtitle" or (stream.type == "video" and is_mov):
            continue
        stated = _stream_duration(stream)
        if stated is None and stream.type == "video" and not container.streams.audio and container.duration:
            stated = container.duration / 1_000_000  # video only: the file's duration is the video's
        slack = 0.25 if stream.type == "audio" else float(max(2 / frame_rate, Fraction(1, 50)))
        if stated and stream.index in ends and ends[stream.index] < stated - slack:
            raise DataError(
                f"{path}: truncated {stream.type}: it ends at {ends[stream.index]:.2f} s of {stated:.2f} s"
            )
    return counts


def _stream_duration(stream: Any) -> float | None:
    """A stream's duration in seconds: from the stream header, or the ``DURATION`` tag Matroska
    muxers (FFmpeg, mkvmerge) write per track (``HH:MM:SS.fraction``)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    if tag:
        try:
            hours, minutes, seconds = tag.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        except ValueError:
            return None
    return None


def _refine(time_base: Fraction) -> Fraction:
    """``time_base`` divided by the smallest integer that makes its ticks 1/10000 s or finer."""
    factor = max(1, -(-_MIN_TIMESCALE * time_base.numerator // time_base.denominator))
    return time_base / factor


class SourceReader:
    """An open source (``container``, its first video ``stream``) whose :meth:`frames` come in
    presentation order, FFmpeg errors and data flagged corrupt raised as one-line
    :class:`DataError` (truncation is :func:`probe`'s scan's business)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.container = open_source(path)
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"  # frame + slice threads: decoding keeps up with encoding

    def __enter__(self) -> SourceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.container.close()

    def frames(self) -> Iterator[Any]:
        av = require_av()
        try:
            for packet in self.container.demux(self.stream):
                if packet.is_corrupt:
                    raise DataError(f"{self.path}: corrupt or truncated video data near {_when(packet)}")
                for frame in packet.decode():
                    if frame.is_corrupt:
                        raise DataError(f"{self.path}: damaged video frame near {_when(frame)}")
                    yield frame
        except av.FFmpegError as exc:
            raise DataError(f"{self.path}: corrupt or truncated video ({_reason(exc)})") from None


def to_rgb(frame: Any, rotation: int) -> np.ndarray:
    """A decoded frame as upright ``(H, W, 3)`` uint8 RGB.

    Untagged video is converted with the matrix players assume for its size: BT.709 from 720
    lines up, else BT.601 (swscale's default).
    """
    colorspace = None
    if int(frame.colorspace) == _UNSPECIFIED and frame.height >= 720:
        colorspace = "ITU709"
    rgb = frame.to_ndarray(format="rgb24", src_colorspace=colorspace)
    if rotation:
        rgb = np.ascontiguousarray(np.rot90(rgb, rotation // 90))
    return rgb


def fingerprint(path: Path, *, chunk: int = 1 << 20) -> dict[str, Any]:
    """What identifies a source across runs and machines: its size and a hash of its first and
    last MiB (not its name or modification time, which differ between copies)."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        digest.update(f.read(chunk))
        if size > chunk:
            f.seek(max(chunk, size - chunk))
            digest.update(f.read(chunk))
    return {"size": size, "sha256_head_tail": digest.hexdigest()}


def _when(item: Any) -> str:
    if item.pts is None or item.time_base is None:
        return "an unknown time"
    return f"{float(item.pts * item.time_base):.2f} s"


def _reason(exc: BaseException) -> str:
    text = " ".join(str(getattr(exc, "strerror", None) or exc).split())
    return text or type(exc).__name__
