"""Joining finished segments into the output, with the source's audio and subtitles copied.

All by PyAV remuxing (packets copied, nothing decoded): the segments' video packets one after the
other, interleaved by time with the source's audio and subtitle packets, into a temporary file
beside the output that is synced and renamed over it at the end (MP4/MOV get ``+faststart``, the
index at the front, for playback while downloading).

Timestamps: segment frames carry the source frames' own timestamps (see
:mod:`gansr.video.pipeline`). A container may shift a file's timestamps by a constant when it
stores it (MP4 edit lists, negative-timestamp avoidance), so each segment is re-based to make its
first frame land on the time recorded in its info file. Decode timestamps must also rise across
a join: with B-frames the encoder starts each segment's decode times a few frames before its
first frame, which, after a variable-rate stretch, can fall behind the previous segment's last
one; those few are nudged up by a tick (never past their own presentation time).
"""

from __future__ import annotations

import heapq
import os
import secrets
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from gansr.errors import DataError
from gansr.video.encode import output_format
from gansr.video.probe import open_source, require_av
from gansr.video.workdir import WorkDir

__all__ = ["COPIED_TYPES", "copied_streams", "merge_segments"]

#: Source stream types copied untouched into the output.
COPIED_TYPES = ("audio", "subtitle")
# Container-level tags that describe the old file, not the content.
_STALE_TAGS = frozenset(
    {"major_brand", "minor_version", "compatible_brands", "encoder", "creation_time", "duration"}
)


def copied_streams(container: Any) -> list[Any]:
    """The source streams the output gets copies of: every audio and subtitle stream."""
    return [s for s in container.streams if s.type in COPIED_TYPES]


def merge_segments(work: WorkDir, source: Path, dest: Path, *, segments: int, time_base: Fraction) -> Path:
    """Write ``dest`` from segments ``0 .. segments-1`` of ``work`` and the source's audio and
    subtitle streams; returns ``dest``.

    Raises:
        DataError: the source can no longer be read.
        FileNotFoundError: a segment is missing.
    """
    av = require_av()
    infos = work.finished()
    files = [work.segment_file(index) for index in range(segments)]
    fmt = output_format(dest)
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.tmp")
    options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
    source_container = open_source(source)
    try:
        out = av.open(os.fspath(tmp), "w", format=fmt, options=options)
        try:
            with av.open(os.fspath(files[0])) as first:
                video = out.add_stream_from_template(first.streams.video[0])
            video.time_base = time_base
            copies = copied_streams(source_container)
            targets = {}
            for stream in copies:
                target = out.add_stream_from_template(stream)
                target.metadata.update(_tags(stream.metadata, video=False))
                target.disposition = stream.disposition  # default / forced / hearing impaired ...
                targets[stream.index] = target
            source_video = source_container.streams.video[0]
            video.metadata.update(_tags(source_video.metadata, video=True))
            video.disposition = source_video.disposition
            out.metadata.update({k: v for k, v in source_container.metadata.items() if k not in _STALE_TAGS})
            chapters = source_container.chapters()
            if chapters:
                out.set_chapters(chapters)
            packets = heapq.merge(
                _video_packets(files, [infos[i] for i in range(segments)], time_base),
                _copied_packets(source_container, copies, source),
                key=lambda item: (item[0], item[1]),
            )
            for _, _, packet, stream_index in packets:
                packet.stream = video if stream_index is None else targets[stream_index]
                out.mux(packet)
        finally:
            out.close()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        source_container.close()
    return dest


def _tags(metadata: dict[str, str], *, video: bool) -> dict[str, str]:
    """Stream tags worth keeping: language, title and the like. The muxer writes its own
    duration; the re-encoded video's encoder, rotation and statistics tags would be stale."""
    stale = {"DURATION"} | (
        {"ENCODER", "ROTATE", "BPS", "NUMBER_OF_FRAMES", "NUMBER_OF_BYTES"} if video else set()
    )
    return {
        key: value
        for key, value in metadata.items()
        if key.upper() not in stale and not (video and key.upper().startswith("_STATISTICS"))
    }


def _video_packets(files: Sequence[Path], infos: Sequence[Any], time_base: Fraction) -> Iterator[tuple]:
    """Every segment's packets in order, re-based and with rising decode times, as
    ``(dts seconds, 0, packet, None)``."""
    av = require_av()
    last_dts: int | None = None
    for path, info in zip(files, infos, strict=True):
        with av.open(os.fspath(path)) as segment:
            stream = segment.streams.video[0]
            # First pass: the earliest presentation time as stored, to undo a constant shift.
            stored_first = min(
                (p.pts for p in segment.demux(stream) if p.size and p.pts is not None), default=None
            )
        if stored_first is None:
            raise DataError(f"{path}: empty segment; remove it and run again with --resume")
        with av.open(os.fspath(path)) as segment:
            stream = segment.streams.video[0]
            shift = Fraction(stored_first) * stream.time_base - Fraction(info.first_pts) * time_base
            for packet in segment.demux(stream):
                if not packet.size:
                    continue
                pts = _ticks(packet.pts, stream.time_base, shift, time_base)
                dts = (
                    _ticks(packet.dts, stream.time_base, shift, time_base) if packet.dts is not None else pts
                )
                if last_dts is not None and dts <= last_dts:
                    dts = last_dts + 1
                if pts is not None and dts > pts:
                    raise DataError(f"{path}: cannot join this segment's timestamps ({dts} > {pts})")
                packet.pts, packet.dts, packet.time_base = pts, dts, time_base
                last_dts = dts
                yield (Fraction(dts) * time_base, 0, packet, None)


def _ticks(value: int | None, stored_base: Fraction, shift: Fraction, time_base: Fraction) -> int | None:
    if value is None:
        return None
    return round((Fraction(value) * stored_base - shift) / time_base)


def _copied_packets(container: Any, streams: Sequence[Any], source: Path) -> Iterator[tuple]:
    """The source's audio and subtitle packets as ``(time, 1, packet, stream index)``."""
    if not streams:
        return
    av = require_av()
    try:
        for packet in container.demux(*streams):
            if not packet.size:
                continue
            when = packet.dts if packet.dts is not None else packet.pts
            if when is None:
                continue  # a packet with no time cannot be placed
            yield (Fraction(when) * packet.time_base, 1, packet, packet.stream.index)
    except av.FFmpegError as exc:
        raise DataError(f"{source}: cannot copy audio/subtitles ({' '.join(str(exc).split())})") from None
