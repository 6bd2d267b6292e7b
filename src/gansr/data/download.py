"""Downloads with resume, checksums and a clear offline error; the public data sets' registry.

:func:`download` fetches one URL into ``dest``: the bytes go to ``dest.part`` (resumed with an
HTTP ``Range`` request when it exists), are checked against the expected size and SHA-256/MD5,
and only then renamed onto ``dest``. Any network failure raises :class:`DownloadError` with one
line naming the URL and where to put the file by hand. :func:`fetch_dataset` downloads and
extracts a registered data set (:data:`DATASETS`) unless it is already present.

Only the standard library's ``urllib`` is used (no extra dependency).
"""

from __future__ import annotations

import http.client
import os
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gansr.cache import cache_dir
from gansr.data.io import atomic_write
from gansr.errors import ConfigError, DownloadError

__all__ = [
    "DATASETS",
    "RemoteDataset",
    "RemoteFile",
    "cache_dir",
    "download",
    "extract_archive",
    "fetch_dataset",
]

_CHUNK = 1 << 20
_SCHEMES = ("http", "https", "file")


# --------------------------------------------------------------------------- one file


def _by_hand(dest: Path) -> str:
    return f"download it by hand and put it at {dest}"


def _one_line(value: object) -> str:
    return " ".join(str(value).split()) or type(value).__name__


def _digest(path: Path, algorithm: str) -> str:
    import hashlib

    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def _mismatch(path: Path, *, sha256: str | None, md5: str | None, size: int | None) -> str | None:
    """Why ``path`` is not the expected file, or ``None`` when it matches."""
    actual = path.stat().st_size
    if size is not None and actual != size:
        return f"has {actual} bytes, expected {size}"
    for algorithm, expected in (("sha256", sha256), ("md5", md5)):
        if expected is not None:
            got = _digest(path, algorithm)
            if got != expected.lower():
                return f"fails its {algorithm} check (expected {expected}, got {got})"
    return None


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    md5: str | None = None,
    size: int | None = None,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Download ``url`` to ``dest`` (resuming a partial ``dest.part``) and verify it.

    An existing ``dest`` is checked against the given size/checksums and returned without a
    download. A wrong checksum or size deletes the partial file. An interrupted transfer keeps
    ``dest.part``; calling again resumes it when the server honours ``Range`` (and starts over
    when it does not).

    Args:
        url: ``http(s)://`` (or ``file://``) URL.
        dest: final path; its folder is created.
        sha256, md5: expected hex digests, checked when given.
        size: expected size in bytes, checked when given.
        progress: show a tqdm progress bar on stderr.
        timeout: socket timeout in seconds.

    Raises:
        DownloadError: offline, HTTP error, interrupted transfer, or a size/checksum mismatch;
            one line naming the URL and where to put the file by hand.
    """
    dest = Path(dest)
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in _SCHEMES:
        raise DownloadError(f"{url}: unsupported URL scheme {scheme!r} (use http, https or file)")
    if dest.exists():
        problem = _mismatch(dest, sha256=sha256, md5=md5, size=size)
        if problem:
            raise DownloadError(f"{dest}: exists but {problem}; delete it to download again")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    _fetch(url, part, dest, progress=progress, timeout=timeout)
    problem = _mismatch(part, sha256=sha256, md5=md5, size=size)
    if problem:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{url}: the download {problem}; removed it, try again or {_by_hand(dest)}")
    os.replace(part, dest)
    return dest


def _fetch(url: str, part: Path, dest: Path, *, progress: bool, timeout: float) -> None:
    """Append the rest of ``url`` to ``part`` (or write it from the start)."""
    from tqdm import tqdm

    from gansr.version import __version__

    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": f"gansr/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return  # the part file is already whole; verification decides
        raise DownloadError(f"{url}: HTTP {exc.code} {_one_line(exc.reason)}; {_by_hand(dest)}") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = _one_line(getattr(exc, "reason", exc))
        raise DownloadError(f"cannot download {url} ({reason}); {_by_hand(dest)}") from None
    with response:
        status = getattr(response, "status", None) or 200
        resumed = offset > 0 and status == 206
        if resumed:
            content_range = response.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {offset}-"):
                raise DownloadError(
                    f"{url}: server resumed at the wrong place ({content_range!r}); delete {part}"
                )
        else:
            offset = 0  # no resume support: start over
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        with (
            open(part, "ab" if resumed else "wb") as f,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=dest.name,
                disable=not progress,
                file=sys.stderr,
                leave=False,
            ) as bar,
        ):
            try:
                while chunk := response.read(_CHUNK):
                    f.write(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, IncompleteRead
                f.flush()
                raise DownloadError(
                    f"{url}: transfer interrupted ({_one_line(exc)}); run again to resume, "
                    f"or {_by_hand(dest)}"
                ) from None
            f.flush()
            os.fsync(f.fileno())
    got = part.stat().st_size
    if total is not None and got < total:
        raise DownloadError(
            f"{url}: transfer interrupted at {got} of {total} bytes; run again to resume, or {_by_hand(dest)}"
        )


# --------------------------------------------------------------------------- archives


def _check_member(name: str, archive: Path) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":"):
        raise DownloadError(f"{archive}: unsafe path {name!r} in the archive; nothing extracted")


def _check_link(member: tarfile.TarInfo, archive: Path) -> None:
    # Symlink targets are relative to the link's folder, hard-link targets to the archive root.
    base = PurePosixPath(member.name).parent if member.issym() else PurePosixPath()
    target = os.path.normpath(base / member.linkname)
    if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
        raise DownloadError(
            f"{archive}: unsafe link {member.name!r} -> {member.linkname!r}; nothing extracted"
        )


def extract_archive(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Extract a zip or tar (optionally gzip/bzip2/xz-compressed) archive into ``dest``.

    Members with absolute paths or ``..`` components, and zip symlinks, are refused before
    anything is written; tar archives are additionally extracted with Python's ``"data"``
    filter (no links leaving ``dest``, no device files, no set-uid bits).

    Raises:
        DownloadError: not an archive, corrupt, or with an unsafe member.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    _check_member(info.filename, archive)
                    if (info.external_attr >> 16) & 0o170000 == 0o120000:
                        raise DownloadError(
                            f"{archive}: symlink {info.filename!r} in the archive; nothing extracted"
                        )
                zf.extractall(dest)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                for member in tf.getmembers():
                    _check_member(member.name, archive)
                    if member.issym() or member.islnk():
                        _check_link(member, archive)
                tf.extractall(dest, filter="data")
        else:
            raise DownloadError(f"{archive}: not a zip or tar archive (an HTML error page?); delete it")
    except DownloadError:
        raise
    except tarfile.FilterError as exc:
        raise DownloadError(
            f"{archive}: unsafe archive member ({_one_line(exc)}); extraction stopped"
        ) from None
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise DownloadError(
            f"{archive}: corrupt archive ({_one_line(exc)}); delete it and download again"
        ) from None
    return dest


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file.

    Attributes:
        url: the official (or best-kept) URL.
        filename: the file's name on disk.
        sha256, md5: published checksums, ``None`` where none can be vouched for (the file is then
            checked by ``size`` when known and by being a valid archive).
        size: size in bytes, when known.
        mirrors: other URLs tried in order when ``url`` fails.
        extract: an archive to extract (``False``: keep the file as is).
        provides: a path below the data set folder that exists once this file is in place (so
            data put there by hand is not downloaded again).
    """

    url: str
    filename: str
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    mirrors: tuple[str, ...] = ()
    extract: bool = True
    provides: str | None = None


@dataclass(frozen=True)
class RemoteDataset:
    """A registered data set: its files, the folder they go to, and where it comes from."""

    name: str
    folder: str
    files: tuple[RemoteFile, ...]
    homepage: str
    notes: str = ""


_DIV2K = "https://data.vision.ee.ethz.ch/cvl/DIV2K/"
_MNIST = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_MNIST_MIRROR = "http://yann.lecun.com/exdb/mnist/"
_MNIST_GCS = "https://storage.googleapis.com/cvdf-datasets/mnist/"
_HF = "https://huggingface.co/datasets/eugenesiow/"


def _div2k(
    name: str, sha256: str | None = None, size: int | None = None, provides: str | None = None
) -> RemoteFile:
    return RemoteFile(
        _DIV2K + name + ".zip",
        name + ".zip",
        sha256=sha256,
        size=size,
        mirrors=(_DIV2K.replace("https://", "http://") + name + ".zip",),
        provides=provides or name,
    )


def _div2k_lr(split: str, scale: int, sha256: str | None = None, size: int | None = None) -> RemoteFile:
    return _div2k(f"DIV2K_{split}_LR_bicubic_X{scale}", sha256, size, f"DIV2K_{split}_LR_bicubic/X{scale}")


def _mnist(name: str, md5: str, sha256: str, size: int) -> RemoteFile:
    return RemoteFile(
        _MNIST + name,
        name,
        sha256=sha256,
        md5=md5,
        size=size,
        mirrors=(_MNIST_GCS + name, _MNIST_MIRROR + name),
        extract=False,
        provides=name,
    )


# MD5s as torchvision verifies them; SHA-256 and sizes as TensorFlow Datasets / torchvision list
# them (the same bytes on all three hosts).
_MNIST_TRAIN = (
    _mnist(
        "train-images-idx3-ubyte.gz",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        9912422,
    ),
    _mnist(
        "train-labels-idx1-ubyte.gz",
        "d53e105ee54ea40749a09fcbcd1e9432",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        28881,
    ),
)
_MNIST_TEST = (
    _mnist(
        "t10k-images-idx3-ubyte.gz",
        "9fb629c4189551a2d022fa330f9573f3",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        1648877,
    ),
    _mnist(
        "t10k-labels-idx1-ubyte.gz",
        "ec29112dd5afa0611ce80d1b7f02629c",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        4542,
    ),
)


# DIV2K sizes and SHA-256 from TensorFlow Datasets' url_checksums/div2k.txt; MNIST (above) and
# STL-10 MD5s are the ones torchvision verifies. The other files have no published checksum.
_DIV2K_TRAIN_HR = _div2k(
    "DIV2K_train_HR", "9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335", 3530603713
)
_DIV2K_VALID_HR = _div2k(
    "DIV2K_valid_HR", "20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc", 448993893
)

_DIV2K_LR_CHECKSUMS = {
    ("train", 2): ("a53a424317575838dadce4bcd97cf7b744d6855f43740ed5f0245af3cf4bd850", 925390592),
    ("valid", 2): ("60eed9875c697df51204aa579e2a699e1d5215095788a097ff54dd17e2664d57", 117763600),
}

DATASETS: dict[str, RemoteDataset] = {
    "div2k": RemoteDataset(
        "DIV2K", "DIV2K", (_DIV2K_TRAIN_HR, _DIV2K_VALID_HR), _DIV2K, "HR train (800) + valid (100), 3.9 GB"
    ),
    "div2k_train_hr": RemoteDataset("DIV2K train HR", "DIV2K", (_DIV2K_TRAIN_HR,), _DIV2K),
    "div2k_valid_hr": RemoteDataset("DIV2K valid HR", "DIV2K", (_DIV2K_VALID_HR,), _DIV2K),
    **{
        f"div2k_{split}_lr_x{scale}": RemoteDataset(
            f"DIV2K {split} LR bicubic x{scale}",
            "DIV2K",
            (_div2k_lr(split, scale, *_DIV2K_LR_CHECKSUMS.get((split, scale), (None, None))),),
            _DIV2K,
        )
        for split in ("train", "valid")
        for scale in (2, 3, 4)
    },
    "flickr2k": RemoteDataset(
        "Flickr2K",
        "Flickr2K",
        (RemoteFile("https://cv.snu.ac.kr/research/EDSR/Flickr2K.tar", "Flickr2K.tar", provides="Flickr2K"),),
        "https://github.com/sanghyun-son/EDSR-PyTorch",
        "2650 HR images with bicubic LR (about 20 GB); no published checksum",
    ),
    "benchmark": RemoteDataset(
        "SR benchmarks (EDSR pack)",
        "benchmark",
        (RemoteFile("https://cv.snu.ac.kr/research/EDSR/benchmark.tar", "benchmark.tar"),),
        "https://github.com/sanghyun-son/EDSR-PyTorch",
        "Set5, Set14, B100, Urban100 with HR and LR_bicubic/X2-X4; no published checksum",
    ),
    "set5": RemoteDataset(
        "Set5",
        "Set5",
        (RemoteFile(_HF + "Set5/resolve/main/data/Set5_HR.tar.gz", "Set5_HR.tar.gz", provides="Set5_HR"),),
        "https://huggingface.co/datasets/eugenesiow/Set5",
        "HR images from the super-image data sets on the Hugging Face hub; no published checksum",
    ),
    "set14": RemoteDataset(
        "Set14",
        "Set14",
        (
            RemoteFile(
                _HF + "Set14/resolve/main/data/Set14_HR.tar.gz", "Set14_HR.tar.gz", provides="Set14_HR"
            ),
        ),
        "https://huggingface.co/datasets/eugenesiow/Set14",
        "HR images from the super-image data sets on the Hugging Face hub; no published checksum",
    ),
    "mnist": RemoteDataset(
        "MNIST",
        "mnist",
        (*_MNIST_TRAIN, *_MNIST_TEST),
        "http://yann.lecun.com/exdb/mnist/",
        "the four IDX files, kept gzip-compressed (MNISTDataset reads them as they are)",
    ),
    "mnist_train": RemoteDataset(
        "MNIST training digits",
        "mnist",
        _MNIST_TRAIN,
        "http://yann.lecun.com/exdb/mnist/",
        "the 60,000 official training digits (train-*-idx*-ubyte.gz), 9.5 MB, into the same folder "
        "as the t10k files: train with data.mnist_file=train",
    ),
    "stl10": RemoteDataset(
        "STL-10",
        "stl10",
        (
            RemoteFile(
                "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
                "stl10_binary.tar.gz",
                md5="91f7769df0f17e558f3565bffb0c7dfb",
                mirrors=("https://cs.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",),
                provides="stl10_binary/test_X.bin",
            ),
        ),
        "https://cs.stanford.edu/~acoates/stl10/",
        "binary release, 2.5 GB",
    ),
}
"""Registered data sets by name (see :func:`fetch_dataset`)."""


def _download_any(entry: RemoteFile, dest: Path, progress: bool) -> Path:
    """Download from the URL, then each mirror in turn."""
    errors: list[str] = []
    for url in (entry.url, *entry.mirrors):
        try:
            return download(url, dest, sha256=entry.sha256, md5=entry.md5, size=entry.size, progress=progress)
        except DownloadError as exc:
            if dest.exists():  # a file put there by hand that fails its check: no mirror helps
                raise
            errors.append(str(exc))
    if len(errors) == 1:
        raise DownloadError(errors[0])
    raise DownloadError(f"all {len(errors)} sources failed for {entry.filename} (last: {errors[-1]})")


def fetch_dataset(name: str, root: str | os.PathLike[str] | None = None, *, progress: bool = True) -> Path:
    """Download and extract a registered data set into ``root / <folder>`` unless present.

    A file counts as present when its ``provides`` path exists or its archive was extracted
    before; archives are downloaded to ``root / "downloads"`` and deleted after extraction.

    Args:
        name: a key of :data:`DATASETS` (case-insensitive).
        root: where data sets live; default ``cache_dir() / "datasets"``.
        progress: show progress bars.

    Returns:
        The data set's folder.

    Raises:
        ConfigError: unknown name.
        DownloadError: a download or extraction failed.
    """
    spec = DATASETS.get(name.lower())
    if spec is None:
        raise ConfigError(f"unknown data set {name!r} (known: {', '.join(sorted(DATASETS))})")
    base = Path(root) if root is not None else cache_dir() / "datasets"
    target = base / spec.folder
    for entry in spec.files:
        marker = target / f".{entry.filename}.extracted"
        if (entry.provides and (target / entry.provides).exists()) or marker.exists():
            continue
        if not entry.extract:
            _download_any(entry, target / entry.filename, progress)
            continue
        archive = _download_any(entry, base / "downloads" / entry.filename, progress)
        extract_archive(archive, target)
        with atomic_write(marker) as f:
            f.write(entry.url.encode() + b"\n")
        archive.unlink()
    return target
