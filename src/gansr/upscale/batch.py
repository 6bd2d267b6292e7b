"""Upscaling many files: input expansion, output naming and the fault-tolerant batch loop.

Naming rules (default: the output goes next to its input as ``<stem><suffix>.<ext>``):

* An output never replaces an input, and two inputs never share an output (``a.png`` and
  ``a.jpg`` with ``--ext png``): the later one is named ``<stem>_<source ext><suffix>.<ext>``
  (``a_jpg_x4.png``), then ``-2``, ``-3``, ... if that is taken too.
* Files found by expanding a folder or glob that are the planned output of another input (an
  earlier run's ``a_x4.png`` beside ``a.png``) or that lie inside the output folder are not inputs,
  so re-running a command does not upscale its own results. Files named explicitly always are.
* An existing output is skipped unless ``overwrite``.

Every file is written atomically (:func:`gansr.data.write_image`), so an error or Ctrl-C never
leaves a partial output behind.
"""

from __future__ import annotations

import glob
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from gansr.data.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    LoadedImage,
    list_images,
    read_image,
    write_image,
)
from gansr.errors import ConfigError, GansrError
from gansr.upscale import OUTPUT_EXTS
from gansr.upscale.upscaler import Upscaler

__all__ = [
    "OUTPUT_EXTS",
    "BatchSummary",
    "InputFile",
    "Job",
    "collect_inputs",
    "default_suffix",
    "output_ext",
    "plan_jobs",
    "run_batch",
    "write_result",
]

_KEPT_BY_AUTO = frozenset({".png", ".jpg", ".jpeg", ".webp"})
_GLOB_CHARS = frozenset("*?[")


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
            images = list_images(path, recursive=True)
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
                if Path(m).is_file() and Path(m).suffix.lower() in IMAGE_SUFFIXES
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
    (BMP, TIFF, ...) PNG; otherwise ``.png``, ``.jpg`` or ``.webp``."""
    if ext not in OUTPUT_EXTS:
        raise ConfigError(f"output format must be one of {', '.join(OUTPUT_EXTS)}, got {ext!r}")
    if ext == "auto":
        suffix = source.suffix.lower()
        return suffix if suffix in _KEPT_BY_AUTO else ".png"
    return f".{ext}"


def plan_jobs(
    inputs: Sequence[InputFile],
    *,
    suffix: str,
    ext: str = "auto",
    output: Path | None = None,
    output_is_file: bool = False,
) -> list[Job]:
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
        return [Job(inputs[0].path, output)]

    # Every name this planner could give an input's output, by folder (see _output_name_pattern).
    patterns: dict[str, list[tuple[re.Pattern[str], InputFile]]] = {}
    for item in inputs:
        patterns.setdefault(_key(_dest_dir(item, output)), []).append(
            (_output_name_pattern(item, suffix), item)
        )
    out_root = _key(output) if output is not None else None
    kept = []
    for item in inputs:
        if not item.explicit:
            siblings = patterns.get(_key(item.path.parent), [])
            earlier_output = any(
                other is not item and pat.fullmatch(item.path.name) for pat, other in siblings
            )
            in_output_dir = out_root is not None and _is_within(_key(item.path), out_root)
            if earlier_output or in_output_dir:
                continue  # an earlier run's result, not an input
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
    return [Job(item.path, dests[i]) for i, item in enumerate(kept)]


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
) -> BatchSummary:
    """Upscale every job; a file that fails is reported through ``on_error`` and the rest go on.

    ``progress`` shows a tqdm bar over images (and over tiles of large ones). Ctrl-C stops after
    cleaning up the file being written and returns a summary with ``interrupted`` set.
    """
    from tqdm import tqdm

    report = on_error or (lambda message: print(f"gansr: error: {message}", file=sys.stderr))
    summary = BatchSummary()
    start = time.perf_counter()
    bar = tqdm(
        total=len(jobs), unit="img", desc="upscale", disable=not progress, file=sys.stderr, leave=False
    )
    try:
        for job in jobs:
            bar.set_postfix_str(job.source.name, refresh=False)
            if job.dest.exists() and not overwrite:
                summary.skipped += 1
            else:
                try:
                    loaded = read_image(job.source, max_pixels=max_pixels)
                    result = upscaler.upscale_loaded(loaded, outscale=outscale, size=size, progress=progress)
                    write_result(job.dest, result, quality=quality)
                except (GansrError, OSError, MemoryError, torch.OutOfMemoryError) as exc:
                    summary.failed += 1
                    if isinstance(exc, torch.OutOfMemoryError) and torch.cuda.is_available():
                        torch.cuda.empty_cache()  # give the next image the whole device again
                    with tqdm.external_write_mode(file=sys.stderr):
                        report(_describe_failure(job, exc))
                else:
                    summary.done += 1
            bar.update()
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        bar.close()
        summary.elapsed = time.perf_counter() - start
    return summary


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
