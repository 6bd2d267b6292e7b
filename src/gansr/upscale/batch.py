"""Upscaling many files: input expansion, output naming and the fault-tolerant batch loop.

Naming rules (default: the output goes next to its input as ``<stem><suffix>.<ext>``):

* An output never replaces an input, and two inputs never share an output (``a.png`` and
  ``a.jpg`` with ``--ext png``): the later one is named ``<stem>_<source ext><suffix>.<ext>``
  (``a_jpg_x4.png``), then ``-2``, ``-3``, ... if that is taken too.
* Files found by expanding a folder or glob that are the planned output of another input (an
  earlier run's ``a_x4.png`` beside ``a.png``) or that lie inside the output folder are not inputs,
  so re-running a command does not upscale its own results; :func:`plan_batch` lists them with the
  reason. Files named explicitly always are inputs, and so is a file whose stem equals another
  input's (``b.png`` and ``b.jpg`` with an empty suffix): that is a sibling, not an output.
* An existing output is skipped unless ``overwrite``.

Folders and globs contribute the files with an image suffix (:data:`FOLDER_SUFFIXES`, GIF
included); an animated image is upscaled as its first frame, with a warning.

Every file is written atomically (:func:`gansr.data.write_image`), so an error, Ctrl-C or SIGTERM
never leaves a partial output behind, and temporaries of a run that was killed outright
(SIGKILL) are removed from the output folders by the next run
(:func:`gansr.data.io.remove_stale_temporaries`: only gansr's own, and none a live run holds).

Videos (a named file with a suffix in :data:`VIDEO_SUFFIXES`; folders and globs contribute images
only) are named by the same rules, with a video container as the output suffix
(:func:`video_output_ext`); :mod:`gansr.video` upscales them. :class:`Shard` splits the work
between processes: the sorted image jobs here, a video's segments there.
"""

from __future__ import annotations

import glob
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gansr.data.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    LoadedImage,
    list_images,
    read_image,
    remove_stale_temporaries,
    write_image,
)
from gansr.errors import ConfigError, GansrError
from gansr.upscale.defaults import OUTPUT_EXTS
from gansr.upscale.progress import Progress
from gansr.upscale.upscaler import Upscaler

__all__ = [
    "FOLDER_SUFFIXES",
    "OUTPUT_EXTS",
    "VIDEO_SUFFIXES",
    "BatchPlan",
    "BatchSummary",
    "InputFile",
    "Job",
    "Shard",
    "collect_inputs",
    "default_suffix",
    "is_video",
    "output_ext",
    "plan_batch",
    "plan_jobs",
    "remove_stale_outputs",
    "run_batch",
    "sigterm_as_interrupt",
    "video_output_ext",
    "write_result",
]

_KEPT_BY_AUTO = frozenset({".png", ".jpg", ".jpeg", ".webp"})
_GLOB_CHARS = frozenset("*?[")

FOLDER_SUFFIXES: frozenset[str] = IMAGE_SUFFIXES | {".gif"}
"""Lower-case suffixes of the files that folders and globs contribute as inputs."""

VIDEO_SUFFIXES: frozenset[str] = frozenset(
    {
        ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".wmv", ".flv", ".mpg", ".mpeg", ".ts",
        ".m2ts", ".mts", ".3gp", ".ogv", ".vob", ".y4m",
    }
)  # fmt: skip
"""Lower-case suffixes of files that ``gansr upscale`` treats as videos when named explicitly."""

# Output containers kept for a video input; anything else becomes Matroska, which holds every
# audio and subtitle codec, so the source's streams can always be copied untouched.
_VIDEO_KEPT = {".mp4": ".mp4", ".m4v": ".mp4", ".mov": ".mov", ".mkv": ".mkv"}


def is_video(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a video by its suffix (see :data:`VIDEO_SUFFIXES`)."""
    return os.path.splitext(path)[1].lower() in VIDEO_SUFFIXES


def video_output_ext(source: Path) -> str:
    """The output suffix for a video input: ``.mp4``, ``.mov`` and ``.mkv`` are kept (``.m4v``
    becomes ``.mp4``), any other container becomes ``.mkv``."""
    return _VIDEO_KEPT.get(source.suffix.lower(), ".mkv")


@dataclass(frozen=True)
class Shard:
    """Part ``index`` (1-based) of ``count``: this process does the items whose position modulo
    ``count`` is ``index - 1`` (image jobs in sorted order, or a video's segments), so ``count``
    processes started with ``1/count`` ... ``count/count`` share the work without talking to each
    other."""

    index: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        for value in (self.index, self.count):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"shard must be K/N with integers, got {self.index!r}/{self.count!r}")
        if not 1 <= self.index <= self.count:
            raise ConfigError(f"shard K/N needs 1 <= K <= N, got {self.index}/{self.count}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, position: int) -> bool:
        """Whether the item at ``position`` (0-based) is this shard's."""
        return position % self.count == self.index - 1

    def select(self, items: Sequence[Job]) -> list[Job]:
        """This shard's part of ``items``, taken from their order sorted by source path."""
        ordered = sorted(items, key=lambda job: os.fspath(job.source))
        return [item for position, item in enumerate(ordered) if self.owns(position)]

    @classmethod
    def parse(cls, text: str, env: Mapping[str, str] | None = None) -> Shard:
        """``"K/N"``, or ``"auto"``: ``RANK``/``WORLD_SIZE`` (set by ``torchrun``), else a Slurm
        array job's ``SLURM_ARRAY_TASK_ID`` (less ``SLURM_ARRAY_TASK_MIN``) and
        ``SLURM_ARRAY_TASK_COUNT``, else ``1/1``.

        Raises:
            ConfigError: malformed text or environment values.
        """
        env = os.environ if env is None else env
        if text.strip().lower() == "auto":
            try:
                if "RANK" in env and "WORLD_SIZE" in env:
                    return cls(int(env["RANK"]) + 1, int(env["WORLD_SIZE"]))
                if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
                    task = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
                    return cls(task + 1, int(env["SLURM_ARRAY_TASK_COUNT"]))
            except ValueError:
                raise ConfigError("--shard auto: RANK/WORLD_SIZE or SLURM_ARRAY_* are not integers") from None
            return cls()
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match:
            raise ConfigError(f"shard must be K/N (e.g. 2/4) or auto, got {text!r}")
        return cls(int(match[1]), int(match[2]))


@dataclass(frozen=True)
class InputFile:
    """One input image: ``root`` is the folder argument it was found in (outputs keep their path
    relative to it), ``explicit`` is True when the file itself was named on the command line."""

    path: Path
    root: Path | None = None
    explicit: bool = True


@dataclass(frozen=True)
class Job:
    """Upscale ``source`` into ``dest``."""

    source: Path
    dest: Path


@dataclass
class BatchSummary:
    """What a batch did; ``failed`` also counts inputs that could not be found."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    elapsed: float = 0.0
    interrupted: bool = False

    def line(self) -> str:
        """One human-readable summary line."""
        text = (
            f"{self.done} upscaled, {self.skipped} skipped (output exists), {self.failed} failed "
            f"in {self.elapsed:.1f} s"
        )
        return text + " (interrupted)" if self.interrupted else text

    @property
    def exit_code(self) -> int:
        """130 when interrupted, 1 when anything failed, else 0."""
        return 130 if self.interrupted else (1 if self.failed else 0)


# --------------------------------------------------------------------------- inputs


def collect_inputs(specs: Sequence[str | os.PathLike[str]]) -> tuple[list[InputFile], list[str]]:
    """Expand files, folders (recursively) and globs into input images, first occurrence first.

    A named file is taken whatever its suffix (reading it reports a non-image); folders and globs
    contribute files with an image suffix. Returns the inputs and one error message per argument
    that matched nothing.
    """
    found: list[InputFile] = []
    errors: list[str] = []
    seen: set[str] = set()

    def add(item: InputFile) -> None:
        key = os.path.realpath(item.path)
        if key not in seen:
            seen.add(key)
            found.append(item)

    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            images = list_images(path, recursive=True, suffixes=FOLDER_SUFFIXES)
            if not images:
                errors.append(f"{spec}: no images in this folder")
            for image in images:
                add(InputFile(image, root=path, explicit=False))
        elif path.exists() or os.path.lexists(path):
            add(InputFile(path))
        elif _GLOB_CHARS.intersection(str(spec)):
            matches = sorted(
                Path(m)
                for m in glob.glob(os.fspath(spec), recursive=True)
                if Path(m).is_file() and Path(m).suffix.lower() in FOLDER_SUFFIXES
            )
            if not matches:
                errors.append(f"{spec}: no image matches this pattern")
            for match in matches:
                add(InputFile(match, explicit=False))
        else:
            errors.append(f"{spec}: no such file or folder")
    return found, errors


# --------------------------------------------------------------------------- naming


def default_suffix(scale: int, outscale: float | None = None, size: tuple[int, int] | None = None) -> str:
    """``_x4`` from the final scale (``_x2.5``), or ``_<W>x<H>`` for a fixed ``size`` ``(H, W)``
    (a 0 side, which keeps the aspect ratio, is left out: ``_1920x``)."""
    if size is not None:
        height, width = size
        return f"_{width or ''}x{height or ''}"
    factor = scale if outscale is None else outscale
    return f"_x{factor:g}"


def output_ext(source: Path, ext: str) -> str:
    """The output suffix for ``source``: ``auto`` keeps PNG, JPEG and WebP and makes anything else
    (BMP, TIFF, ...) PNG; otherwise ``.png``, ``.jpg`` or ``.webp``. A video input gets
    :func:`video_output_ext` whatever ``ext`` says (it chooses image formats)."""
    if ext not in OUTPUT_EXTS:
        raise ConfigError(f"output format must be one of {', '.join(OUTPUT_EXTS)}, got {ext!r}")
    if is_video(source):
        return video_output_ext(source)
    if ext == "auto":
        suffix = source.suffix.lower()
        return suffix if suffix in _KEPT_BY_AUTO else ".png"
    return f".{ext}"


@dataclass
class BatchPlan:
    """What :func:`plan_batch` decided: the jobs, and the files found in folders or by globs that
    are not inputs, each with the reason (``(path, reason)``)."""

    jobs: list[Job]
    left_out: list[tuple[Path, str]] = field(default_factory=list)


def plan_jobs(
    inputs: Sequence[InputFile],
    *,
    suffix: str,
    ext: str = "auto",
    output: Path | None = None,
    output_is_file: bool = False,
) -> list[Job]:
    """The jobs of :func:`plan_batch` (same arguments)."""
    return plan_batch(inputs, suffix=suffix, ext=ext, output=output, output_is_file=output_is_file).jobs


def plan_batch(
    inputs: Sequence[InputFile],
    *,
    suffix: str,
    ext: str = "auto",
    output: Path | None = None,
    output_is_file: bool = False,
) -> BatchPlan:
    """Decide every input's output path (see the module doc for the rules).

    ``output`` is a folder (outputs keep their path relative to a folder argument), a file when
    ``output_is_file`` (then exactly one input is allowed), or ``None`` for next to each input.

    Raises:
        ConfigError: a file ``output`` with more than one input, or one that is the input itself.
    """
    if output_is_file:
        if output is None:
            raise ValueError("output_is_file needs an output path")
        if len(inputs) != 1:
            raise ConfigError(
                f"-o {output} names one file but {len(inputs)} input images were given; pass a folder"
            )
        if _key(output) == _key(inputs[0].path):
            raise ConfigError(f"-o {output} is the input itself; refusing to overwrite an input")
        return BatchPlan([Job(inputs[0].path, output)])

    # Every name this planner could give an input's output, by folder (see _output_name_pattern).
    patterns: dict[str, list[tuple[re.Pattern[str], InputFile]]] = {}
    for item in inputs:
        patterns.setdefault(_key(_dest_dir(item, output)), []).append(
            (_output_name_pattern(item, suffix), item)
        )
    out_root = _key(output) if output is not None else None
    kept = []
    left_out: list[tuple[Path, str]] = []
    for item in inputs:
        if not item.explicit:
            siblings = patterns.get(_key(item.path.parent), [])
            # A file with the same stem as another input (b.jpg beside b.png) is a sibling input,
            # even when an empty suffix makes its name one the other's output could have.
            source = next(
                (
                    other
                    for pat, other in siblings
                    if other is not item
                    and other.path.stem.casefold() != item.path.stem.casefold()
                    and pat.fullmatch(item.path.name)
                ),
                None,
            )
            if source is not None:
                left_out.append((item.path, f"the output of {source.path.name}"))
                continue  # an earlier run's result, not an input
            if out_root is not None and _is_within(_key(item.path), out_root):
                left_out.append((item.path, "inside the output folder"))
                continue
        kept.append(item)

    taken = {_key(item.path) for item in kept}
    dests: dict[int, Path] = {}
    # Inputs already in the output format claim the plain names first (a.png -> a_x4.png), so which
    # input gets the plain name does not depend on how the files happen to sort.
    order = sorted(range(len(kept)), key=lambda i: not _same_ext(kept[i].path, output_ext(kept[i].path, ext)))
    for index in order:
        item = kept[index]
        folder = _dest_dir(item, output)
        stem, out_ext = item.path.stem, output_ext(item.path, ext)
        tag = item.path.suffix.lstrip(".").lower() or "file"
        name = f"{stem}{suffix}{out_ext}"
        if _key(folder / name) in taken:
            name = f"{stem}_{tag}{suffix}{out_ext}"
        counter = 2
        while _key(folder / name) in taken:
            name = f"{stem}_{tag}{suffix}-{counter}{out_ext}"
            counter += 1
        dests[index] = folder / name
        taken.add(_key(dests[index]))
    return BatchPlan([Job(item.path, dests[i]) for i, item in enumerate(kept)], left_out)


def _same_ext(source: Path, out_ext: str) -> bool:
    aliases = {".jpeg": ".jpg", ".tiff": ".tif"}
    suffix = source.suffix.lower()
    return aliases.get(suffix, suffix) == aliases.get(out_ext, out_ext)


def _output_name_pattern(item: InputFile, suffix: str) -> re.Pattern[str]:
    """Names :func:`plan_jobs` may give ``item``'s output, in any image format: ``<stem><suffix>.ext``
    or ``<stem>_<source ext><suffix>[-N].ext``."""
    stem, tag = re.escape(item.path.stem), re.escape(item.path.suffix.lstrip(".").lower() or "file")
    exts = "|".join(re.escape(e.lstrip(".")) for e in sorted(IMAGE_SUFFIXES))
    return re.compile(
        rf"{stem}(?:_{tag}{re.escape(suffix)}(?:-\d+)?|{re.escape(suffix)})\.(?:{exts})", re.IGNORECASE
    )


def _dest_dir(item: InputFile, output: Path | None) -> Path:
    if output is None:
        return item.path.parent
    if item.root is not None:
        return output / item.path.parent.relative_to(item.root)
    return output


def _key(path: Path) -> str:
    """A comparison key: the absolute real path (also for files that do not exist yet)."""
    return os.path.realpath(path)


def _is_within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


# --------------------------------------------------------------------------- running


def write_result(dest: Path, image: LoadedImage, *, quality: int = 95) -> Path:
    """Write an upscaled image: 16-bit when the source was and ``dest`` is PNG, alpha kept except
    for JPEG, where the image is composited onto white; the ICC profile carried over."""
    pixels, alpha = image.pixels, image.alpha
    if alpha is not None and dest.suffix.lower() in (".jpg", ".jpeg"):
        pixels, alpha = pixels * alpha + (1.0 - alpha), None
    bit_depth = 16 if image.bit_depth == 16 and dest.suffix.lower() == ".png" else 8
    return write_image(
        dest, pixels, alpha=alpha, bit_depth=bit_depth, icc_profile=image.icc_profile, quality=quality
    )


def run_batch(
    upscaler: Upscaler,
    jobs: Sequence[Job],
    *,
    outscale: float | None = None,
    size: tuple[int, int] | None = None,
    overwrite: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    quality: int = 95,
    progress: bool = False,
    on_error: Callable[[str], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> BatchSummary:
    """Upscale every job; a file that fails is reported through ``on_error`` and the rest go on.

    ``progress`` shows how far the batch is (:class:`gansr.upscale.progress.Progress`: a bar on a
    terminal, plain lines otherwise), advancing tile by tile within large images. Ctrl-C or
    SIGTERM stops after cleaning up the file being written and returns a summary with
    ``interrupted`` set. ``on_warning`` gets one line per animated input (only its first frame
    is upscaled).
    """
    report = on_error or (lambda message: print(f"gansr: error: {message}", file=sys.stderr))
    warn = on_warning or (lambda message: print(f"gansr: warning: {message}", file=sys.stderr))
    summary = BatchSummary()
    start = time.perf_counter()
    bar = Progress("upscale", len(jobs), unit="images", enabled=progress, fractional=True)
    try:
        with sigterm_as_interrupt():
            for job in jobs:
                bar.set_item(job.source.name)
                before = bar.done
                if job.dest.exists() and not overwrite:
                    summary.skipped += 1
                else:
                    try:
                        loaded = read_image(job.source, max_pixels=max_pixels)
                        result = upscaler.upscale_loaded(
                            loaded,
                            outscale=outscale,
                            size=size,
                            progress=lambda fraction, base=before: bar.update(base + fraction - bar.done),
                        )
                        write_result(job.dest, result, quality=quality)
                    except (GansrError, OSError, MemoryError, torch.OutOfMemoryError) as exc:
                        summary.failed += 1
                        if isinstance(exc, torch.OutOfMemoryError) and torch.cuda.is_available():
                            torch.cuda.empty_cache()  # give the next image the whole device again
                        with bar.printing():
                            report(_describe_failure(job, exc))
                    else:
                        summary.done += 1
                        if loaded.frames > 1:
                            with bar.printing():
                                warn(
                                    f"{job.source}: animated image ({loaded.frames} frames): only the "
                                    "first frame was upscaled"
                                )
                bar.update(before + 1 - bar.done)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        bar.close()
        summary.elapsed = time.perf_counter() - start
    return summary


def remove_stale_outputs(jobs: Sequence[Job]) -> list[Path]:
    """Remove what killed runs left in the jobs' output folders: gansr's own temporaries of image
    outputs that no live process holds (see :mod:`gansr.data.atomic`). Returns the paths removed."""
    image_suffixes = frozenset(IMAGE_SUFFIXES)
    folders = dict.fromkeys(job.dest.parent for job in jobs if not is_video(job.dest))
    removed: list[Path] = []
    for folder in folders:
        removed += remove_stale_temporaries(
            folder, accept=lambda name: os.path.splitext(name)[1].lower() in image_suffixes
        )
    return removed


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While active (main thread only), SIGTERM stops the work like Ctrl-C, so the file being
    written is cleaned up (a cluster scheduler's cancel, ``kill``, ``timeout``). The previous
    handler is restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _describe_failure(job: Job, exc: BaseException) -> str:
    """``<source>: <reason>`` on one line."""
    if isinstance(exc, GansrError):
        text = " ".join(str(exc).split())
        source = os.fspath(job.source)
        return text if text.startswith((source + ":", os.fspath(job.dest) + ":")) else f"{source}: {text}"
    if isinstance(exc, OSError):
        reason = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
        return f"{job.source}: {reason}" + (f" ({exc.filename})" if exc.filename else "")
    return f"{job.source}: out of memory (try a smaller --tile or --outscale)"
