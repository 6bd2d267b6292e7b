"""Upscaling a video: decode, upscale and encode frame by frame, in resumable segments.

The frames stream through: each decoded frame is converted to RGB, upscaled by the
:class:`~gansr.upscale.Upscaler` (tiled when large, like any image) and handed to the encoder, so
memory holds a few frames and the encoder's queue, whatever the video's length.

Frames are grouped into segments of ``segment_frames`` consecutive frames (by frame index, from
the first frame), each encoded into its own file in the work folder
(:class:`~gansr.video.workdir.WorkDir`). The boundaries depend only on the index and every
frame is upscaled on its own, so a resumed or sharded run encodes exactly the segments an
uninterrupted run would: the joined result is the same, frame for frame. Each process decodes
the source from the start (decoding is cheap next to super-resolution) and upscales only the
segments that are its own (``index % N == K - 1`` for ``--shard K/N``) and not yet finished.
When every segment exists, the process that notices merges (:mod:`gansr.video.merge`) and
removes the work folder.

Timestamps: each output frame carries its source frame's presentation time, converted exactly to
the work time base, so variable-frame-rate video stays in sync with its audio.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from gansr.engine.device import memory_budget
from gansr.errors import ConfigError, DataError, GansrError, Interrupted
from gansr.upscale.batch import BatchSummary, Job, Shard, sigterm_as_interrupt
from gansr.upscale.upscaler import Upscaler
from gansr.video.encode import (
    EncoderSettings,
    SegmentWriter,
    check_output,
    encoder_settings,
    even_size,
    output_format,
)
from gansr.video.merge import copied_streams, merge_segments
from gansr.video.probe import (
    SourceReader,
    VideoInfo,
    fingerprint,
    open_source,
    probe,
    require_av,
    to_rgb,
)
from gansr.video.progress import FrameProgress
from gansr.video.workdir import SegmentInfo, WorkDir

__all__ = [
    "DEFAULT_SEGMENT_SECONDS",
    "FRAME_MEMORY_BUDGET",
    "VideoOptions",
    "VideoResult",
    "merge_video",
    "run_video_jobs",
    "upscale_video",
]

#: Default segment length in seconds of source video: the most work a resume repeats, and the
#: unit shards split; each segment starts with a key frame (x264 adds one every 250 frames anyway).
DEFAULT_SEGMENT_SECONDS = 10

#: Bytes one frame's model pass may use on the CPU (tiles, plus the frame's float output canvas:
#: see :func:`gansr.engine.tiles.plan`), instead of the 1.5 GiB an image may take: the encoder holds
#: its own queue of frames beside it, and frames go through one at a time anyway. At 1080p -> 8K
#: with ``realsr-x4`` this is 4 tiles instead of 2 (x1.09 instead of x1.03 pixels computed).
FRAME_MEMORY_BUDGET = 1 << 30


@dataclass(frozen=True)
class VideoOptions:
    """Options of :func:`upscale_video`.

    Attributes:
        outscale, size: final size as for images (``size`` is ``(height, width)``, one side 0
            keeps the aspect ratio); neither: the model's scale. Odd sides grow by one pixel
            for 4:2:0 video.
        codec: FFmpeg video encoder (default ``libx264``; ``libvpx-vp9`` for ``.webm``).
        crf: constant-quality value (default 18 for libx264; lower is better).
        preset: encoder speed preset (x264/x265: ``ultrafast`` ... ``veryslow``, default medium).
        encoder_options: further encoder options by FFmpeg name (``{"tune": "film"}``).
        segment_frames: frames per segment (default: about 10 s of video). Fixed by the first
            run of a job; a resume or shard keeps it.
        overwrite: replace an existing output; without ``resume`` also discard an earlier run's
            finished segments.
        resume: continue from the finished segments of an interrupted run of the same job.
        shard: do only this part of the segments (several processes share the work folder; the
            last to finish merges). Implies ``resume``.
        progress: show progress on stderr (a bar on a terminal, plain lines otherwise).
    """

    outscale: float | None = None
    size: tuple[int, int] | None = None
    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    encoder_options: Mapping[str, str] = field(default_factory=dict)
    segment_frames: int | None = None
    overwrite: bool = False
    resume: bool = False
    shard: Shard = field(default_factory=Shard)
    progress: bool = False

    def __post_init__(self) -> None:
        if self.outscale is not None and self.size is not None:
            raise ConfigError("give either outscale or size, not both")
        if self.crf is not None and (
            isinstance(self.crf, bool) or not isinstance(self.crf, int) or self.crf < 0
        ):
            raise ConfigError(f"crf must be a non-negative integer, got {self.crf!r}")
        frames = self.segment_frames
        if frames is not None and (isinstance(frames, bool) or not isinstance(frames, int) or frames < 1):
            raise ConfigError(f"segment_frames must be a positive integer, got {frames!r}")
        if not isinstance(self.shard, Shard):
            raise ConfigError(f"shard must be a gansr.upscale.batch.Shard, got {self.shard!r}")


@dataclass
class VideoResult:
    """What one call did.

    ``status``: ``"written"`` (the output exists now), ``"skipped"`` (it existed already) or
    ``"partial"`` (this process's part is done; segments of other shards are still missing).
    ``frames``/``segments``: upscaled and encoded by this call; ``total_frames``: of the source,
    when known. ``note``: a line for the user, e.g. how to finish a partial job.
    """

    source: Path
    dest: Path
    status: Literal["written", "skipped", "partial"]
    frames: int = 0
    segments: int = 0
    total_frames: int | None = None
    elapsed: float = 0.0
    note: str = ""


def upscale_video(
    upscaler: Upscaler,
    source: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    options: VideoOptions | None = None,
    **kwargs: Any,
) -> VideoResult:
    """Upscale the video ``source`` into ``dest`` (container from the suffix: ``.mp4``,
    ``.mkv``, ``.mov``, ``.webm``, ...), keeping every frame's timestamp and copying the audio and
    subtitle streams untouched.

    ``options`` or keyword arguments give :class:`VideoOptions`. The output appears atomically at
    the end; a corrupt or truncated source raises :class:`DataError` and leaves no output.

    Raises:
        DataError: the source is missing, not a video, corrupt or truncated.
        ConfigError: bad options; the container cannot hold the codec or a copied stream; an
            earlier run's segments are in the way (pass ``resume`` or ``overwrite``).
        Interrupted: Ctrl-C (or SIGTERM under :func:`run_video_jobs`); finished segments are
            kept for ``resume``.
    """
    opts = options if options is not None else VideoOptions(**kwargs)
    if options is not None and kwargs:
        raise TypeError("pass either options or keyword arguments, not both")
    src, dst = Path(source), Path(dest)
    start = time.perf_counter()
    if os.path.realpath(src) == os.path.realpath(dst):
        raise ConfigError(f"-o {dst} is the input itself; refusing to overwrite an input")
    fmt = output_format(dst)
    if dst.exists() and not opts.overwrite:
        return VideoResult(src, dst, "skipped")
    require_av()
    info = probe(src)
    height, width = upscaler.output_size(info.height, info.width, outscale=opts.outscale, size=opts.size)
    settings = encoder_settings(
        fmt,
        codec=opts.codec,
        crf=opts.crf,
        preset=opts.preset,
        options=opts.encoder_options,
        size=(height, width),
    )
    size = even_size(height, width, settings.pix_fmt)
    container = open_source(src)
    try:
        segment_format = check_output(
            dst,
            settings,
            copied_streams(container),
            time_base=info.work_time_base,
            frame_rate=info.frame_rate,
        )
    finally:
        container.close()

    work = WorkDir(dst)
    sharded = opts.shard.count > 1
    if not (opts.resume or sharded):  # a fresh start, but never silently over finished work
        if work.finished() and not opts.overwrite:
            raise ConfigError(
                f"{dst}: an interrupted run left {len(work.finished())} finished segment(s) in {work.path}; "
                "add --resume to continue it or --overwrite to start over"
            )
        work.remove()
    job = {
        "source": fingerprint(src),
        "model": model_identity(upscaler),
        "size": list(size),
        "encoder": {**settings.as_json(), "segments": segment_format},
        "time_base": str(info.work_time_base),
        "segment_frames": opts.segment_frames,
    }
    default_frames = max(1, round(DEFAULT_SEGMENT_SECONDS * info.frame_rate))
    manifest = work.claim(job, segment_frames=default_frames)
    result = VideoResult(src, dst, "partial")
    try:
        _encode_segments(upscaler, info, work, opts, settings, size, segment_format, manifest, result)
    except DataError:
        if not sharded:
            work.remove()  # a damaged source: nothing worth resuming
        raise
    return _finish(work, src, dst, opts.shard, result, start, time_base=info.work_time_base)


def merge_video(
    source: str | os.PathLike[str], dest: str | os.PathLike[str], *, overwrite: bool = False
) -> VideoResult:
    """Join the finished segments of ``source``'s job for ``dest`` (the ``--merge`` step after
    sharded runs); a lock left by a crashed merge is cleared.

    Raises:
        ConfigError: no such job, another source, or segments still missing (named).
    """
    src, dst = Path(source), Path(dest)
    start = time.perf_counter()
    output_format(dst)
    if dst.exists() and not overwrite:
        return VideoResult(src, dst, "skipped")
    work = WorkDir(dst)
    manifest = work.manifest()
    if manifest is None:
        raise ConfigError(f"{dst}: nothing to merge ({work.path} does not exist)")
    if not src.is_file():
        raise DataError(f"{src}: no such file")
    if manifest.get("source") != fingerprint(src):
        raise ConfigError(f"{dst}: the segments in {work.path} are of another source file")
    missing = work.missing()
    if missing is None:
        raise ConfigError(f"{dst}: no process has decoded all of {src} yet; run the shards first")
    if missing:
        raise ConfigError(
            f"{dst}: {len(missing)} segment(s) not finished yet ({_ranges(missing)}); run their shards"
        )
    end = work.end()
    result = VideoResult(src, dst, "partial", total_frames=end[0] if end else None)
    return _finish(work, src, dst, None, result, start, time_base=Fraction(manifest["time_base"]), force=True)


def _finish(
    work: WorkDir,
    src: Path,
    dst: Path,
    shard: Shard | None,
    result: VideoResult,
    start: float,
    *,
    time_base: Fraction,
    force: bool = False,
) -> VideoResult:
    """Merge when every segment is there (one process only), else say what is left."""
    try:
        return _merge_if_complete(work, src, dst, shard, result, start, time_base=time_base, force=force)
    except KeyboardInterrupt:
        raise Interrupted(
            f"{src}: interrupted while joining; the segments are kept in {work.path} (run the same "
            "command with --resume to join them)"
        ) from None


def _merge_if_complete(
    work: WorkDir,
    src: Path,
    dst: Path,
    shard: Shard | None,
    result: VideoResult,
    start: float,
    *,
    time_base: Fraction,
    force: bool,
) -> VideoResult:
    part = f"part {shard} done" if shard is not None and shard.count > 1 else "done"
    missing = work.missing() if work.exists() else None
    if not work.exists() and dst.exists():
        result.note = f"{src}: {part}; {dst} was written by another process"
    elif missing is None or missing:
        left = "?" if missing is None else str(len(missing))
        result.note = (
            f"{src}: {part}; {left} segment(s) of other shards still to do (the last shard to finish "
            f"merges; or run `gansr upscale {src} -o {dst} --merge` when all are done)"
        )
    else:
        end = work.end()
        with work.merge_lock(force=force) as acquired:
            if acquired:
                merge_segments(work, src, dst, segments=end[1] if end else 0, time_base=time_base)
                result.status = "written"
        if acquired:
            work.remove()
        else:
            result.note = f"{src}: {part}; another process is merging {dst}"
    result.elapsed = time.perf_counter() - start
    return result


def _encode_segments(
    upscaler: Upscaler,
    info: VideoInfo,
    work: WorkDir,
    opts: VideoOptions,
    settings: EncoderSettings,
    size: tuple[int, int],
    segment_format: str,
    manifest: dict[str, Any],
    result: VideoResult,
) -> None:
    """Decode ``info.path`` from the start and encode this process's unfinished segments."""
    per_segment = int(manifest["segment_frames"])
    done = set(work.finished())

    def wanted(segment: int) -> bool:
        return opts.shard.owns(segment) and segment not in done

    estimate = info.estimated_frames()
    todo = sum(
        min(per_segment, estimate - s * per_segment)
        for s in range(math.ceil(estimate / per_segment))
        if wanted(s)
    )
    progress = FrameProgress(info.path.name, todo, enabled=opts.progress)
    clock = _Clock(info)
    sample_aspect = _output_aspect(info, size)
    writer: SegmentWriter | None = None
    segment_info: SegmentInfo | None = None
    reader = SourceReader(info.path)
    index = 0
    try:
        for frame in reader.frames():
            segment = index // per_segment
            if writer is not None and segment != segment_info.index:
                _close_segment(work, writer, segment_info)
                result.segments += 1
                writer = None
            pts = clock.next(frame)
            if writer is None and index % per_segment == 0 and wanted(segment):
                segment_info = SegmentInfo(segment, 0, pts)
                writer = SegmentWriter(
                    work.segment_path(segment, segment_format),
                    segment_format,
                    settings,
                    size,
                    time_base=info.work_time_base,
                    frame_rate=info.frame_rate,
                    sample_aspect=sample_aspect,
                    color=(info.color_primaries, info.color_trc),
                )
            if writer is not None:
                writer.write(upscale_frame(upscaler, to_rgb(frame, info.rotation), size), pts)
                result.frames += 1
                progress.update()
            index += 1
        if writer is not None:
            _close_segment(work, writer, segment_info)
            result.segments += 1
            writer = None
        result.total_frames = index
        if work.exists():  # gone when another shard has merged already
            work.record_end(index, math.ceil(index / per_segment))
    except KeyboardInterrupt:
        if writer is not None:
            writer.abort()
            writer = None
        kept = len(work.finished())
        raise Interrupted(
            f"{info.path}: interrupted; {kept} finished segment(s) kept in {work.path} "
            "(run the same command with --resume to continue)"
        ) from None
    finally:
        if writer is not None:
            writer.abort()
        reader.close()
        progress.close()


def _close_segment(work: WorkDir, writer: SegmentWriter, info: SegmentInfo) -> None:
    """Finish a segment: its info first, then the video file (whose presence marks it done)."""
    work.record_segment(SegmentInfo(info.index, writer.frames, info.first_pts))
    writer.finish()


def frame_memory_budget(upscaler: Upscaler) -> int | None:
    """The tile budget of one frame's pass: :data:`FRAME_MEMORY_BUDGET` on the CPU (or the
    device's own budget where that is lower), ``None`` (the device's) elsewhere."""
    if upscaler.device.type != "cpu":
        return None
    return min(FRAME_MEMORY_BUDGET, memory_budget(upscaler.device))


def upscale_frame(upscaler: Upscaler, rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Upscale one ``(H, W, 3)`` uint8 frame to ``size`` ``(H, W)``: the same arithmetic as
    ``Upscaler.upscale`` on a uint8 array, within :func:`frame_memory_budget`, with the rounding
    done in place and one 8-bit copy made straight in ``(H, W, 3)`` order (an 8K frame is 400 MB
    in float, 100 MB in 8 bits)."""
    planes = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32) / np.float32(255.0)).permute(
        2, 0, 1
    )
    out, _ = upscaler.upscale_planes(
        planes.clamp(0, 1), size=size, memory_budget=frame_memory_budget(upscaler)
    )
    with torch.inference_mode():  # the result is an inference tensor: in-place only in this mode
        out.mul_(255.0).add_(0.5).floor_()
        channels, height, width = out.shape
        result = torch.empty((height, width, channels), dtype=torch.uint8)
        result.copy_(out.permute(1, 2, 0))  # values are whole numbers in [0, 255]: the cast is exact
        return result.numpy()


class _Clock:
    """Each frame's presentation time in work-time-base ticks: the source's own time, converted
    exactly; a frame without one continues at the nominal rate; times always rise."""

    def __init__(self, info: VideoInfo) -> None:
        self._factor = info.time_base / info.work_time_base  # an integer by construction
        self._step = max(1, round(1 / (info.frame_rate * info.work_time_base)))
        self._last: int | None = None

    def next(self, frame: Any) -> int:
        if frame.pts is None:
            pts = 0 if self._last is None else self._last + self._step
        else:
            pts = round(frame.pts * self._factor)
        if self._last is not None and pts <= self._last:
            pts = self._last + 1
        self._last = pts
        return pts


def _output_aspect(info: VideoInfo, size: tuple[int, int]) -> Fraction:
    """The pixel aspect ratio that keeps the source's display aspect at the output size."""
    height, width = size
    display = Fraction(info.width) * info.sample_aspect / info.height
    aspect = (display * height / width).limit_denominator(10_000)
    return Fraction(1) if abs(aspect - 1) < Fraction(1, 500) else aspect


def model_identity(upscaler: Upscaler) -> dict[str, Any]:
    """What identifies the model across runs and machines: architecture, scale and a hash of
    every weight (a name such as ``realsr-x4`` may mean other weights in another version)."""
    model = upscaler.model
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{data.dtype}:{tuple(data.shape)}".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy())
    return {
        "arch": getattr(model, "arch", type(model).__name__),
        "scale": upscaler.scale,
        "weights_sha256": digest.hexdigest(),
    }


def _ranges(indexes: Sequence[int]) -> str:
    """``0-3, 7, 9`` (at most ten ranges)."""
    parts: list[str] = []
    run_start = previous = indexes[0]
    for value in [*indexes[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        parts.append(str(run_start) if run_start == previous else f"{run_start}-{previous}")
        if value is not None:
            run_start = previous = value
    return ", ".join(parts[:10]) + (", ..." if len(parts) > 10 else "")


# --------------------------------------------------------------------------- many videos


def run_video_jobs(
    upscaler: Upscaler,
    jobs: Sequence[Job],
    options: VideoOptions,
    *,
    merge_only: bool = False,
    on_error: Callable[[str], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> BatchSummary:
    """Upscale (or with ``merge_only`` just merge) each video job; a video that fails is
    reported through ``on_error`` and the rest go on; Ctrl-C or SIGTERM stops and returns a
    summary with ``interrupted`` set (finished segments stay for ``--resume``)."""
    report = on_error or (lambda message: print(f"gansr: error: {message}", file=sys.stderr))
    note = on_note or (lambda message: print(f"gansr upscale: {message}", file=sys.stderr))
    summary = BatchSummary()
    start = time.perf_counter()
    try:
        with sigterm_as_interrupt():
            for job in jobs:
                try:
                    if merge_only:
                        result = merge_video(job.source, job.dest, overwrite=options.overwrite)
                    else:
                        result = upscale_video(upscaler, job.source, job.dest, options)
                except Interrupted as exc:
                    report(str(exc))
                    summary.interrupted = True
                    break
                except (GansrError, OSError, MemoryError, torch.OutOfMemoryError) as exc:
                    summary.failed += 1
                    report(_describe_failure(job, exc))
                    continue
                if result.status == "skipped":
                    summary.skipped += 1
                else:
                    summary.done += 1
                if result.note:
                    note(result.note)
    except KeyboardInterrupt:
        summary.interrupted = True
    summary.elapsed = time.perf_counter() - start
    return summary


def _describe_failure(job: Job, exc: BaseException) -> str:
    """``<source>: <reason>`` on one line."""
    if isinstance(exc, GansrError):
        text = " ".join(str(exc).split())
        return (
            text if text.startswith((os.fspath(job.source), os.fspath(job.dest))) else f"{job.source}: {text}"
        )
    if isinstance(exc, OSError):
        reason = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
        return f"{job.source}: {reason}" + (f" ({exc.filename})" if exc.filename else "")
    return f"{job.source}: out of memory (try a smaller --tile)"
