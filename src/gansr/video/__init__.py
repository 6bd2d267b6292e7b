"""Upscaling videos: streamed, with audio and subtitles kept, resumable and shardable.

``gansr upscale clip.mp4`` and :func:`upscale_video` decode, upscale and encode frame by frame
(bounded memory, any length), carry every frame's timestamp (variable frame rate stays in sync),
copy the audio and subtitle streams untouched, and write the output atomically. Work is done in
fixed segments, so an interrupted run resumes where it stopped and ``N`` processes (an array
job, ``torchrun``) can each do part of one video. Runs on PyAV (``pip install 'gansr[video]'``),
which bundles FFmpeg's libraries; without it every entry point raises a one-line
:class:`VideoSupportMissing`.

Modules: :mod:`~gansr.video.probe` (opening and decoding the source), :mod:`~gansr.video.encode`
(encoder defaults, segment writer), :mod:`~gansr.video.workdir` (the resumable work folder),
:mod:`~gansr.video.merge` (joining segments, copying audio/subtitles),
:mod:`~gansr.video.progress` and :mod:`~gansr.video.pipeline` (the whole job).

Example::

    import gansr
    from gansr.video import upscale_video

    up = gansr.Upscaler()
    upscale_video(up, "clip.mp4", "clip_x4.mp4", crf=16, resume=True)
"""

from __future__ import annotations

from gansr.upscale.batch import VIDEO_SUFFIXES, Shard, is_video
from gansr.video.pipeline import (
    DEFAULT_SEGMENT_SECONDS,
    VideoOptions,
    VideoResult,
    merge_video,
    run_video_jobs,
    upscale_video,
)
from gansr.video.probe import VideoInfo, VideoSupportMissing, probe

__all__ = [
    "DEFAULT_SEGMENT_SECONDS",
    "VIDEO_SUFFIXES",
    "Shard",
    "VideoInfo",
    "VideoOptions",
    "VideoResult",
    "VideoSupportMissing",
    "is_video",
    "merge_video",
    "probe",
    "run_video_jobs",
    "upscale_video",
]
