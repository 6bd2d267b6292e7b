"""``gansr upscale``: super-resolve image files and folders (a thin layer over :class:`gansr.Upscaler`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gansr.cli.options import non_negative_int, parse_output_size, positive_float, positive_int
from gansr.engine import PRECISIONS
from gansr.upscale import DEFAULT_MODEL, OUTPUT_EXTS

if TYPE_CHECKING:
    from gansr.upscale.batch import BatchSummary, Job, Shard
    from gansr.upscale.upscaler import Upscaler

_EPILOG = f"""\
model: the default is {DEFAULT_MODEL!r}, the shipped x4 model for real photos (trained on
blurred, noisy, JPEG-compressed inputs: it removes those instead of enlarging them). Other
choices: any shipped model (`gansr models`; 'srresnet-x4' for clean, bicubic-downscaled
images as in SR benchmarks), 'bicubic' (plain MATLAB-style interpolation), a gansr checkpoint,
or an ESRGAN/Real-ESRGAN/BasicSR .pth (RRDBNet, SRVGGNetCompact, MSRResNet).

outputs: written next to each input as <stem><suffix>.<ext> (suffix _x4 from the final scale)
unless -o names a folder (created; subfolders of folder inputs are kept) or, for one input, a
file. Existing outputs are skipped unless --overwrite; inputs are never overwritten, and two
inputs never share an output (a.png + a.jpg -> a_x4.png, a_jpg_x4.png). Files inside a folder
input that are outputs of another input (photo_x4.png beside photo.png) are not upscaled again
(a note names them). Folders and globs contribute PNG, JPEG, BMP, TIFF, WebP and GIF files; an
animated image gives its first frame, with a warning. Temporary files that a killed run left in
an output folder are removed by the next run.
--ext auto keeps PNG, JPEG and WebP and writes PNG for other formats; JPEG output of an image
with alpha is composited onto white. 16-bit PNGs stay 16-bit, gray stays gray, alpha and the
ICC profile are kept, EXIF orientation is applied.

sizes: --size is WIDTHxHEIGHT as in every gansr command (N: NxN; 1920x or x1080 keeps the
aspect ratio). Fixed-scale models run once at their scale, then the result is resized to
--outscale / --size with MATLAB bicubic (antialiased when shrinking); arbitrary-scale models
(vae_cppn) render the requested size directly.

tiles: large images run in tiles of --tile LR pixels, each with --tile-overlap pixels of
context, blended with linear ramps. Automatic: the whole image when it fits a memory budget (a
quarter of free RAM, at most 1.5 GiB, on the CPU; half the free GPU memory), else the tile size
that fits with the least overlap work.

speed: on the CPU rrdbnet, srresnet and msrresnet run fused (see `gansr speed`); --precision
bf16 is about twice as fast again on CPUs with native bf16 (AVX512-BF16/AMX), at a small cost in
accuracy.

videos: a named file with a video suffix (.mp4, .mkv, .mov, .webm, .avi, ...; folders and
globs give images only) is upscaled frame by frame, streamed, into <stem><suffix>.mp4, .mkv or
.mov (other containers become .mkv; -o may name .mp4 .mkv .mov .webm .avi .ts): H.264 CRF 18
4:2:0 by default (--codec, --crf, --preset), every frame's timestamp kept, audio and subtitle
streams copied untouched. Needs PyAV, from the video extra (pip install -e '.[video]' in a clone,
pip install 'gansr[video]' from a package index).

long videos: the work is done in segments (--segment-frames, default about 10 s of video)
kept in .<output name>.parts/ beside the output until the end. --resume continues an
interrupted run (Ctrl-C, SIGTERM, a crash, a killed job) from its finished segments.
--shard K/N does every N-th segment of each video (and every N-th image) so that N processes,
e.g. a Slurm array job or torchrun ranks, share the work; --shard auto reads RANK/WORLD_SIZE or
SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT (and, with --device auto, LOCAL_RANK picks the
GPU). The process that finishes the last segment joins the video; --merge joins explicitly
(e.g. as a follow-up job) once every shard is done.

exit status: 0 all done or skipped, 1 some image or video failed, 2 nothing could run (bad
options, model), 130 interrupted.
"""


HELP = "super-resolve images, folders, globs and videos"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upscale",
        description="Super-resolve image files, folders (recursively) and glob patterns.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    p.add_argument("-o", "--output", metavar="OUT", help="output folder, or output file for one input")
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"shipped model name, 'bicubic', gansr checkpoint or peer .pth (default: {DEFAULT_MODEL}; "
        "see below)",
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--outscale", type=positive_float, metavar="F", help="final scale (default: the model's)"
    )
    size.add_argument(
        "--size",
        type=parse_output_size,
        metavar="WxH",
        help="final size in pixels, WxH or N (NxN); 1920x or x1080 keeps the aspect ratio",
    )
    p.add_argument(
        "--tile", type=non_negative_int, metavar="N", help="tile size in LR pixels (default: auto; 0: none)"
    )
    p.add_argument(
        "--tile-overlap",
        type=non_negative_int,
        metavar="N",
        help="context per tile side in LR pixels (default: 32)",
    )
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", help="(default: fp32)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    p.add_argument("--suffix", metavar="S", help="output name suffix (default: _x<scale>, e.g. _x4)")
    p.add_argument("--ext", choices=OUTPUT_EXTS, default=None, help="output format (default: auto)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (never inputs)")
    p.add_argument(
        "--compile", action="store_true", help="torch.compile the model (slow start, faster big runs)"
    )
    p.add_argument(
        "--max-pixels",
        type=positive_int,
        metavar="N",
        help="refuse inputs with more pixels (default: gansr.data.DEFAULT_MAX_PIXELS, 89,478,485)",
    )
    p.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress, notes or summary (errors and warnings still shown)",
    )
    video = p.add_argument_group("video")
    video.add_argument(
        "--codec", metavar="NAME", help="video encoder (default: libx264; libvpx-vp9 for .webm)"
    )
    video.add_argument(
        "--crf", type=non_negative_int, metavar="N", help="constant quality, lower is better (default: 18)"
    )
    video.add_argument("--preset", metavar="NAME", help="encoder speed preset (x264: ultrafast ... veryslow)")
    video.add_argument(
        "--segment-frames",
        type=positive_int,
        metavar="N",
        help="frames per resumable segment (default: about 10 s of video)",
    )
    video.add_argument(
        "--resume", action="store_true", help="continue an interrupted video from its segments"
    )
    video.add_argument(
        "--shard",
        metavar="K/N",
        help="do part K of N (every N-th segment or image); auto: from RANK/WORLD_SIZE or SLURM_ARRAY_*",
    )
    video.add_argument(
        "--merge",
        action="store_true",
        help="only join the finished segments of sharded videos into the output",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os
    import warnings
    from pathlib import Path

    from gansr.cli import EXIT_USER_ERROR, error
    from gansr.cli.extras import has_module
    from gansr.data.io import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES
    from gansr.errors import ConfigError, install_hint
    from gansr.upscale.batch import (
        VIDEO_SUFFIXES,
        BatchSummary,
        Shard,
        collect_inputs,
        default_suffix,
        is_video,
        plan_batch,
        remove_stale_outputs,
        run_batch,
    )
    from gansr.upscale.upscaler import Upscaler

    def one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
        print(f"gansr: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = one_line_warning
        inputs, missing = collect_inputs(args.inputs)
        for message in missing:
            error(message)
        if not inputs:
            error("no input images to upscale")
            return EXIT_USER_ERROR

        output, output_is_file = None, False
        if args.output:
            output = Path(args.output)
            output_is_file = not output.is_dir() and output.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES
            if not output_is_file and output.exists() and not output.is_dir():
                raise ConfigError(f"-o {output} is an existing file without an image suffix, not a folder")
            if output_is_file and len(inputs) == 1 and is_video(inputs[0].path) != is_video(output):
                kind = "a video" if is_video(inputs[0].path) else "an image"
                raise ConfigError(f"-o {output}: the input is {kind}; name {kind} file")
            if (
                output_is_file
                and args.ext
                and not is_video(output)
                and not _same_format(output.suffix, args.ext)
            ):
                raise ConfigError(f"-o {output} is not a .{args.ext} file name (drop --ext or change -o)")
        if args.suffix is not None and (os.sep in args.suffix or "/" in args.suffix):
            raise ConfigError(f"--suffix must not contain a path separator, got {args.suffix!r}")
        shard = Shard.parse(args.shard) if args.shard else Shard()
        if args.merge and not any(is_video(item.path) for item in inputs):
            raise ConfigError("--merge joins the segments of sharded videos; no video input was given")
        if any(is_video(item.path) for item in inputs) and not has_module("av"):
            # Before any work, with the install command that fits how this gansr was installed.
            raise ConfigError(f"video needs PyAV, from the video extra: {install_hint('video')}")

        upscaler = Upscaler(
            args.model,
            device=_device(args.device, args.shard),
            precision=args.precision,
            tile=args.tile,
            tile_overlap=args.tile_overlap,
            compile=args.compile,
        )
        size = None if args.size is None else args.size.hw  # the library's (height, width)
        suffix = (
            args.suffix if args.suffix is not None else default_suffix(upscaler.scale, args.outscale, size)
        )
        plan = plan_batch(
            inputs, suffix=suffix, ext=args.ext or "auto", output=output, output_is_file=output_is_file
        )
        jobs = plan.jobs
        if plan.left_out and not args.quiet:
            _note(_left_out_line(plan.left_out))
        video_jobs = [job for job in jobs if is_video(job.source)]
        image_jobs = [] if args.merge else shard.select([job for job in jobs if not is_video(job.source)])
        removed = remove_stale_outputs(image_jobs)
        if removed and not args.quiet:
            _note(f"removed {len(removed)} temporary file(s) an interrupted run left ({removed[0]}, ...)")
        summary = BatchSummary()
        if image_jobs:
            summary = run_batch(
                upscaler,
                image_jobs,
                outscale=args.outscale,
                size=size,
                overwrite=args.overwrite,
                max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS,
                progress=not args.quiet,  # a bar on a terminal, plain lines in a pipe or log
                on_error=error,
                on_warning=lambda line: print(f"gansr: warning: {line}", file=sys.stderr),
            )
        if video_jobs and not summary.interrupted:
            summary = _combine(summary, _run_videos(args, upscaler, video_jobs, shard))
    summary.failed += len(missing)
    if not args.quiet or summary.interrupted:
        print(f"gansr upscale: {summary.line()}", file=sys.stderr)
    return summary.exit_code


def _run_videos(
    args: argparse.Namespace, upscaler: Upscaler, jobs: Sequence[Job], shard: Shard
) -> BatchSummary:
    """Upscale (or with --merge join) the video jobs; imports PyAV-dependent code only here."""
    from gansr.cli import error
    from gansr.video import VideoOptions, run_video_jobs

    options = VideoOptions(
        outscale=args.outscale,
        size=None if args.size is None else args.size.hw,
        codec=args.codec,
        crf=args.crf,
        preset=args.preset,
        segment_frames=args.segment_frames,
        overwrite=args.overwrite,
        resume=args.resume,
        shard=shard,
        progress=not args.quiet,
    )
    notes = (lambda line: None) if args.quiet else None
    return run_video_jobs(upscaler, jobs, options, merge_only=args.merge, on_error=error, on_note=notes)


def _note(line: str) -> None:
    print(f"gansr: note: {line}", file=sys.stderr)


def _left_out_line(left_out: Sequence[tuple[object, str]]) -> str:
    """One line naming the files found in folders that are not inputs, and why (first few)."""
    shown = ", ".join(f"{path} ({reason})" for path, reason in left_out[:3])
    more = f", and {len(left_out) - 3} more" if len(left_out) > 3 else ""
    return f"{len(left_out)} file(s) in the input folders are not inputs: {shown}{more}"


def _device(device: str, shard: str | None) -> str:
    """``--device auto`` under ``torchrun`` with ``--shard auto``: each local rank its own GPU."""
    import os

    local_rank = os.environ.get("LOCAL_RANK")
    if device != "auto" or (shard or "").strip().lower() != "auto" or local_rank is None:
        return device
    import torch

    from gansr.errors import ConfigError

    if not local_rank.isdigit():
        raise ConfigError(f"LOCAL_RANK must be an integer, got {local_rank!r}")
    if not torch.cuda.is_available():
        return device
    return f"cuda:{int(local_rank) % torch.cuda.device_count()}"


def _combine(first: BatchSummary, second: BatchSummary) -> BatchSummary:
    """The two batch summaries (images, then videos) as one."""
    first.done += second.done
    first.skipped += second.skipped
    first.failed += second.failed
    first.elapsed += second.elapsed
    first.interrupted = first.interrupted or second.interrupted
    return first


def _same_format(suffix: str, ext: str) -> bool:
    aliases = {".jpeg": "jpg", ".jpg": "jpg", ".png": "png", ".webp": "webp"}
    return aliases.get(suffix.lower()) == ext
