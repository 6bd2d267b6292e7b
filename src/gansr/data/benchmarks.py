"""Known SR benchmark and training folders, recognized by name.

The usual layouts are handled: images directly in the folder (``Set5/*.png``), BasicSR's
``Set5/GTmod12`` + ``Set5/LRbicx4``, EDSR's ``benchmark/Set5/HR`` + ``LR_bicubic/X4`` and
DIV2K's ``DIV2K/DIV2K_train_HR``. A path pointing at the HR subfolder itself (``Set5/HR``) is
recognized from its parent's name.

The Berkeley sets: BSD300 is the 300 images of the BSDS300 release (``BSDS300/images/{train,
test}``), BSD100 its 100 test images (``BSDS300/images/test``; the same 100 images are BSDS500's
``val`` split, ``BSR/BSDS500/data/images/val``) and BSD200 its 200 training images.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gansr.data.io import IMAGE_SUFFIXES, list_images
from gansr.errors import DataError

__all__ = ["BENCHMARKS", "BenchmarkInfo", "BenchmarkSpec", "benchmark_info", "resolve_benchmark"]

# Subfolders that hold the HR images, in order of preference.
HR_SUBDIRS = ("GTmod12", "HR", "GT", "hr", "original")
# Folder names that say nothing about the data set, so the display name includes the parent.
_GENERIC_NAMES = {"test", "train", "val", "valid", "hr", "gt", "images", "original"}


@dataclass(frozen=True)
class BenchmarkSpec:
    """One known data set.

    Attributes:
        name: canonical display name (``"Set5"``, ``"BSD100"``, ``"DIV2K-valid"``, ...).
        aliases: lower-case folder names that identify it.
        num_images: the number of HR images in the official release.
        role: ``"test"`` for benchmarks, ``"train"``/``"valid"`` for training sets.
        hr_subdirs: subfolders that hold the HR images in the usual layouts.
    """

    name: str
    aliases: tuple[str, ...]
    num_images: int
    role: str
    hr_subdirs: tuple[str, ...] = HR_SUBDIRS


BENCHMARKS: tuple[BenchmarkSpec, ...] = (
    BenchmarkSpec("Set5", ("set5",), 5, "test"),
    BenchmarkSpec("Set14", ("set14",), 14, "test"),
    BenchmarkSpec("BSD100", ("bsd100", "b100", "bsds100"), 100, "test"),
    # The whole BSDS300 release; its HR images sit in images/train + images/test.
    BenchmarkSpec("BSD300", ("bsd300", "b300", "bsds300"), 300, "test", ("images", *HR_SUBDIRS)),
    BenchmarkSpec("BSD200", ("bsd200", "b200", "bsds200"), 200, "train"),
    BenchmarkSpec("Urban100", ("urban100",), 100, "test"),
    BenchmarkSpec("Manga109", ("manga109",), 109, "test"),
    BenchmarkSpec(
        "DIV2K-train",
        ("div2k_train_hr", "div2k_train", "div2k-train"),
        800,
        "train",
        ("DIV2K_train_HR", "HR"),
    ),
    BenchmarkSpec(
        "DIV2K-valid",
        ("div2k_valid_hr", "div2k_valid", "div2k_val", "div2k-valid"),
        100,
        "valid",
        ("DIV2K_valid_HR", "HR"),
    ),
    BenchmarkSpec("Flickr2K", ("flickr2k", "flickr2k_hr"), 2650, "train", ("Flickr2K_HR", "HR")),
)
"""The data sets recognized by :func:`benchmark_info`."""


@dataclass(frozen=True)
class BenchmarkInfo:
    """A folder recognized as a known data set.

    Attributes:
        spec: which data set.
        hr_dir: the folder holding its HR images (the given path or its usual HR subfolder).
    """

    spec: BenchmarkSpec
    hr_dir: Path

    @property
    def name(self) -> str:
        """The canonical name, e.g. ``"Set5"``."""
        return self.spec.name


def _spec_for(name: str) -> BenchmarkSpec | None:
    key = name.lower()
    return next((spec for spec in BENCHMARKS if key in spec.aliases), None)


def _has_images(folder: Path, *, depth: int = 0) -> bool:
    """Whether ``folder`` holds an image, directly or up to ``depth`` subfolder levels down."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return False
    if any(
        os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES and not entry.name.startswith(".")
        for entry in entries
        if entry.is_file()
    ):
        return True
    return depth > 0 and any(
        _has_images(Path(entry.path), depth=depth - 1) for entry in entries if entry.is_dir()
    )


_BSD300_SPLITS = {"test": "BSD100", "train": "BSD200"}


def _berkeley_split(folder: Path) -> BenchmarkSpec | None:
    """BSD100 / BSD200 from where a ``test`` / ``train`` / ``val`` folder sits in a Berkeley release.

    ``BSDS300/images/test`` (or ``BSDS300/test``) is BSD100 and ``.../train`` BSD200; BSDS500's
    ``val`` split (``BSR/BSDS500/data/images/val``) is BSDS300's test set, so BSD100 too.
    """
    name = folder.name.lower()
    up = [p.name.lower() for p in folder.parents][:3]  # parent, grandparent, great-grandparent
    if name in _BSD300_SPLITS and up:
        release = up[1] if up[0] == "images" and len(up) > 1 else up[0]
        spec = _spec_for(release)
        if spec is not None and spec.name == "BSD300":
            return _spec_for(_BSD300_SPLITS[name])
    if name == "val" and ("bsds500" in up or "bsr" in up):
        return _spec_for("BSD100")
    return None


def benchmark_info(path: str | os.PathLike[str]) -> BenchmarkInfo | None:
    """Recognize a known data set from a folder name.

    ``Set5``, ``Set5/GTmod12``, ``benchmark/Set5/HR``, ``DIV2K``'s ``DIV2K_valid_HR``,
    ``BSDS300`` (BSD300), ``BSDS300/images/test`` (BSD100) and the like are recognized
    (case-insensitive). Returns ``None`` for an unknown folder.
    """
    folder = Path(path)
    spec = _spec_for(folder.name)
    if spec is not None:
        for sub in (*spec.hr_subdirs, f"{folder.name}_HR"):  # Set5_HR: the Hugging Face archives
            # BSDS300's images/ holds only the train/ and test/ subfolders: look one level down.
            if _has_images(folder / sub, depth=1 if sub == "images" else 0):
                return BenchmarkInfo(spec, folder / sub)
        return BenchmarkInfo(spec, folder)
    split = _berkeley_split(folder)
    if split is not None:
        return BenchmarkInfo(split, folder)
    # The path is the HR subfolder itself (Set5/HR, Set5/GTmod12, DIV2K/DIV2K_train_HR).
    parent = _spec_for(folder.parent.name) if folder.parent != folder else None
    if parent is not None and folder.name in (*parent.hr_subdirs, f"{folder.parent.name}_HR"):
        return BenchmarkInfo(parent, folder)
    return None


def resolve_benchmark(path: str | os.PathLike[str]) -> tuple[Path, str]:
    """The HR image folder to use for ``path`` and a display name for it.

    Known data sets give their canonical name (``"Set5"``) and usual HR subfolder; any other
    folder is used as is, named after itself.

    Raises:
        DataError: ``path`` does not exist or holds no images.
    """
    folder = Path(path)
    if not folder.exists():
        raise DataError(f"{folder}: no such folder")
    info = benchmark_info(folder)
    if info is not None:
        hr_dir, name = info.hr_dir, info.name
    elif folder.name.lower() in _GENERIC_NAMES and folder.parent.name:
        hr_dir, name = folder, f"{folder.parent.name}/{folder.name}"  # "bsds500/test", not "test"
    else:
        hr_dir, name = folder, folder.name or str(folder)
    if not list_images(hr_dir):
        raise DataError(f"{hr_dir}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return hr_dir, name
