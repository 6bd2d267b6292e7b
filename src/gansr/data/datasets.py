"""SR datasets: HR folders, paired LR/HR folders, MNIST (IDX), STL-10 (binary) and CelebA.

Every dataset returns dicts ``{"lr": Tensor(C, h, w), "hr": Tensor(C, H, W), "name": str}``
(plus ``"label": int`` where the source has labels), float32 in ``[0, 1]``.

Randomness (crop position, flips, degradation noise) comes from a ``torch.Generator`` made per
item from ``(seed, index, epoch)`` (``(seed, index)`` when ``per_epoch=False``). Items are
therefore reproducible, independent of which DataLoader worker makes them and of the workers'
count, and different items never share a random stream. The epoch lives in a shared-memory
tensor, so :meth:`set_epoch` reaches persistent worker processes too; call it (or
:func:`gansr.data.loader.set_epoch`) before iterating over each epoch.

LR images are made on the fly from the HR crop by a degradation: ``None`` (MATLAB bicubic
``imresize`` by ``1/scale`` then rounding to 8 bits, as benchmark LR PNGs are made), a
:class:`gansr.degrade.Pipeline`, a preset name or YAML file for one, a list of step dicts, or any
callable ``f(hr, generator=...) -> lr``.
"""

from __future__ import annotations

import csv
import gzip
import math
import re
import struct
import warnings
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from gansr.data.benchmarks import BENCHMARKS, benchmark_info, resolve_benchmark
from gansr.data.io import image_size, list_images, read_image
from gansr.data.transforms import augment as augment_tensors
from gansr.data.transforms import paired_random_crop, random_crop
from gansr.errors import ConfigError, DataError

__all__ = [
    "BENCHMARKS",
    "CelebADataset",
    "HRFolderDataset",
    "MNISTDataset",
    "PairedFolderDataset",
    "STL10Dataset",
    "benchmark_info",
    "read_idx",
    "resolve_benchmark",
    "resolve_degradation",
]

Item = dict[str, Any]
DegradationSpec = Callable[..., torch.Tensor] | str | Path | Sequence[dict[str, Any]] | None


# --------------------------------------------------------------------------- shared parts


class _SeededDataset(Dataset[Item]):
    """Per-item generators from ``(seed, index[, epoch])`` and a process-shared epoch."""

    def __init__(self, seed: int, per_epoch: bool) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = seed
        self.per_epoch = bool(per_epoch)
        # Shared memory: DataLoader workers (persistent ones too) see set_epoch() calls.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        """The epoch that per-epoch randomness is drawn for."""
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Draw fresh crops/flips/noise for ``epoch`` (no effect when ``per_epoch`` is off)."""
        self._epoch.fill_(int(epoch))

    def generator(self, index: int) -> torch.Generator:
        """The random stream of item ``index`` in the current epoch."""
        key = [self.seed, int(index), self.epoch] if self.per_epoch else [self.seed, int(index)]
        state = np.random.SeedSequence(key).generate_state(1, dtype=np.uint64)[0]
        return torch.Generator().manual_seed(int(state))


def resolve_degradation(spec: DegradationSpec, scale: float) -> Callable[..., torch.Tensor]:
    """Turn a degradation spec (see the module docs) into a callable ``f(hr, generator=...)``.

    Raises:
        ConfigError: the spec is not understood or a pipeline's scale differs from ``scale``.
    """
    from gansr.degrade import Pipeline

    if spec is None:
        return Pipeline([{"type": "resize", "scale": 1.0 / scale}, {"type": "quantize"}])
    if isinstance(spec, str | Path):
        pipe = Pipeline.preset(spec) if str(spec) in Pipeline.presets() else Pipeline.from_yaml(spec)
    elif isinstance(spec, Sequence):
        pipe = Pipeline.from_config(spec)
    elif callable(spec):
        pipe = spec
    else:
        raise ConfigError(
            f"degradation must be a Pipeline, preset, YAML, list of steps or callable, got {spec!r}"
        )
    pipe_scale = getattr(pipe, "scale", None)
    if pipe_scale is not None and not math.isclose(float(pipe_scale), float(scale)):
        raise ConfigError(f"the degradation shrinks by x{pipe_scale:g} but the dataset scale is x{scale:g}")
    return pipe


def lr_size(hr_size: tuple[int, int], scale: float) -> tuple[int, int]:
    """The LR ``(h, w)`` of an HR ``(H, W)``: ``H // scale`` for an integer scale, else the
    nearest whole size (28x28 at 28/26 gives 26x26)."""
    if isinstance(scale, int):
        return hr_size[0] // scale, hr_size[1] // scale
    return max(1, round(hr_size[0] / scale)), max(1, round(hr_size[1] / scale))


def _check_scale(scale: int) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ConfigError(f"scale must be a positive integer, got {scale!r}")
    return scale


def _check_patch(patch_size: int | None, scale: int) -> int | None:
    if patch_size is None:
        return None
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
        raise ConfigError(f"patch_size must be a positive integer or None, got {patch_size!r}")
    if patch_size % scale:
        raise ConfigError(f"patch_size {patch_size} must be a multiple of the scale {scale}")
    return patch_size


def _check_channels(channels: str) -> str:
    if channels not in ("keep", "rgb", "gray"):
        raise ConfigError(f"channels must be 'keep', 'rgb' or 'gray', got {channels!r}")
    return channels


def _modcrop(img: torch.Tensor, scale: int) -> torch.Tensor:
    h, w = img.shape[-2:]
    return img[..., : h - h % scale, : w - w % scale]


def _degrade(
    fn: Callable[..., torch.Tensor], hr: torch.Tensor, scale: float, gen: torch.Generator
) -> torch.Tensor:
    lr = fn(hr, generator=gen)
    expected = lr_size((hr.shape[-2], hr.shape[-1]), scale)
    if tuple(lr.shape[-2:]) != expected:
        raise ConfigError(
            f"the degradation made a {lr.shape[-1]}x{lr.shape[-2]} LR from a "
            f"{hr.shape[-1]}x{hr.shape[-2]} HR; x{scale:g} needs {expected[1]}x{expected[0]}"
        )
    return lr


def _pack(pixels: torch.Tensor, bit_depth: int) -> torch.Tensor:
    """Compact in-memory form of a decoded image: uint8 for 8-bit sources (exactly reversible)."""
    return (pixels * 255).round().to(torch.uint8) if bit_depth == 8 else pixels


def _unpack(stored: torch.Tensor) -> torch.Tensor:
    return stored.float() / 255 if stored.dtype == torch.uint8 else stored


def _warn_skipped(root: Path, reasons: list[str], stacklevel: int = 3) -> None:
    if reasons:
        shown = "; ".join(reasons[:3]) + ("; ..." if len(reasons) > 3 else "")
        warnings.warn(f"{root}: skipped {len(reasons)} image(s): {shown}", stacklevel=stacklevel)


def _rel_name(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).with_suffix("").as_posix()
    except ValueError:
        return path.stem


# --------------------------------------------------------------------------- HR folder


class HRFolderDataset(_SeededDataset):
    """HR images from a folder (recursive, mixed formats) with LR made on the fly.

    With ``patch_size`` set, each item is a random ``patch_size`` HR crop (plus flips and
    90-degree rotations when ``augment``) and its ``patch_size // scale`` LR; images smaller than
    the patch, or whose header cannot be read, are skipped with one warning at construction.
    Without ``patch_size`` (evaluation) each item is the whole image cropped to a multiple of
    ``scale``. Images are decoded from disk per item (bounded memory) unless ``cache=True``,
    which decodes them all once at construction (8-bit images kept as uint8).

    Args:
        root: the folder.
        scale: SR factor.
        patch_size: HR patch size (a multiple of ``scale``) or ``None`` for whole images.
        degradation: how LR is made (see the module docs); default MATLAB bicubic + 8-bit rounding.
        augment: random flips/rotations (training crops only).
        channels: ``"rgb"`` (default), ``"gray"`` or ``"keep"`` (mixed folders then give
            mixed channel counts, which cannot be batched).
        cache: decode all images once at construction.
        seed: base seed of the per-item randomness.
        per_epoch: new randomness each epoch (see :meth:`set_epoch`); ``False`` fixes it per item.

    Raises:
        DataError: the folder is missing or has no usable image.
        ConfigError: bad ``scale``/``patch_size``/``degradation``.
    """

    def __init__(
        self,
        root: str | Path,
        scale: int,
        *,
        patch_size: int | None = None,
        degradation: DegradationSpec = None,
        augment: bool = True,
        channels: str = "rgb",
        cache: bool = False,
        seed: int = 0,
        per_epoch: bool = True,
    ) -> None:
        super().__init__(seed, per_epoch)
        self.root = Path(root)
        self.scale = _check_scale(scale)
        self.patch_size = _check_patch(patch_size, scale)
        self.augment = augment
        self.channels = _check_channels(channels)
        self.degradation = resolve_degradation(degradation, scale)
        files = list_images(self.root)
        if not files:
            raise DataError(f"{self.root}: no images found")
        need = self.patch_size or scale
        self.files: list[Path] = []
        skipped: list[str] = []
        for path in files:
            try:
                height, width = image_size(path)
            except DataError as exc:
                skipped.append(str(exc))
                continue
            if min(height, width) < need:
                skipped.append(f"{path.name} is {width}x{height}, smaller than {need}x{need}")
            else:
                self.files.append(path)
        _warn_skipped(self.root, skipped)
        if not self.files:
            raise DataError(f"{self.root}: none of the {len(files)} images is at least {need}x{need} pixels")
        self._cache: list[torch.Tensor] | None = None
        if cache:
            self._cache = [self._decode(i) for i in range(len(self.files))]

    def _decode(self, index: int) -> torch.Tensor:
        img = read_image(self.files[index], channels=self.channels)  # type: ignore[arg-type]
        return _pack(img.pixels, img.bit_depth)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Item:
        gen = self.generator(index)
        stored = self._cache[index] if self._cache is not None else self._decode(index)
        hr = _unpack(stored)
        if self.patch_size is not None:
            hr = random_crop(hr, self.patch_size, gen)
            if self.augment:
                (hr,) = augment_tensors(hr, generator=gen)
        else:
            hr = _modcrop(hr, self.scale)
        hr = hr.contiguous()
        lr = _degrade(self.degradation, hr, self.scale, gen)
        return {"lr": lr.contiguous(), "hr": hr, "name": _rel_name(self.files[index], self.root)}


# --------------------------------------------------------------------------- paired folders


_PAIR_TAGS = re.compile(r"[_-](?:LRBI|LRBD|LRDN|LR|HR|GT|lr|hr|gt)$")


def pair_key(stem: str, scale: int) -> str:
    """The stem shared by an LR and HR file: ``baby_LRBI_x4``, ``babyx4``, ``baby_x4`` and
    ``img_001_SRF_4_LR`` / ``img_001_SRF_4_HR`` all reduce to the HR-side stem."""
    scale_tag = re.compile(rf"[_-]?[xX]{scale}$")
    while True:
        new = _PAIR_TAGS.sub("", scale_tag.sub("", stem))
        if new == stem or not new:
            return stem
        stem = new


class PairedFolderDataset(_SeededDataset):
    """Matching LR and HR images from two folders (``Set5/LRbicx4`` + ``Set5/GTmod12``, DIV2K's
    ``DIV2K_train_LR_bicubic/X4`` + ``DIV2K_train_HR``, ...).

    Files are matched by their path below the root with the usual suffixes ignored (see
    :func:`pair_key`). Sizes are checked at construction from the headers: the HR must be
    ``scale`` x the LR, up to ``scale - 1`` extra rows/columns (an HR that was not mod-cropped;
    the extra is cropped off). Training crops (``patch_size``) are taken at the same place in
    both; pairs whose LR is smaller than the LR patch are skipped with a warning.

    Raises:
        DataError: a folder is missing or empty, an LR file has no HR partner, two files share a
            key, or a pair's sizes disagree (the message names the file).
    """

    def __init__(
        self,
        lr_root: str | Path,
        hr_root: str | Path,
        scale: int,
        *,
        patch_size: int | None = None,
        augment: bool = True,
        channels: str = "rgb",
        cache: bool = False,
        seed: int = 0,
        per_epoch: bool = True,
    ) -> None:
        super().__init__(seed, per_epoch)
        self.lr_root, self.hr_root = Path(lr_root), Path(hr_root)
        self.scale = _check_scale(scale)
        self.patch_size = _check_patch(patch_size, scale)
        self.augment = augment
        self.channels = _check_channels(channels)
        hr_by_key = self._index(self.hr_root)
        lr_by_key = self._index(self.lr_root)
        self.pairs: list[tuple[Path, Path]] = []
        skipped: list[str] = []
        for key, lr_path in sorted(lr_by_key.items()):
            hr_path = hr_by_key.get(key)
            if hr_path is None:
                raise DataError(f"{lr_path}: no HR image for it in {self.hr_root} (looked for '{key}')")
            (lh, lw), (hh, hw) = image_size(lr_path), image_size(hr_path)
            if not (lh * scale <= hh < (lh + 1) * scale and lw * scale <= hw < (lw + 1) * scale):
                raise DataError(
                    f"{hr_path}: HR is {hw}x{hh} but its LR {lr_path.name} is {lw}x{lh}; "
                    f"x{scale} needs {lw * scale}x{lh * scale}"
                )
            if self.patch_size is not None and min(lh, lw) < self.patch_size // scale:
                skipped.append(f"{lr_path.name} is {lw}x{lh}, smaller than the LR patch")
                continue
            self.pairs.append((lr_path, hr_path))
        _warn_skipped(self.lr_root, skipped)
        unused = len(hr_by_key) - len(lr_by_key)
        if unused > 0:
            warnings.warn(f"{self.hr_root}: {unused} HR image(s) have no LR partner", stacklevel=2)
        if not self.pairs:
            raise DataError(f"{self.lr_root}: no usable LR/HR pairs")
        self._cache: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        if cache:
            self._cache = [self._decode(i) for i in range(len(self.pairs))]

    def _index(self, root: Path) -> dict[str, Path]:
        files = list_images(root)
        if not files:
            raise DataError(f"{root}: no images found")
        found: dict[str, Path] = {}
        for path in files:
            rel = path.relative_to(root)
            key = (rel.parent / pair_key(rel.stem, self.scale)).as_posix()
            if key in found:
                raise DataError(f"{path}: same name as {found[key].name} once suffixes are ignored ('{key}')")
            found[key] = path
        return found

    def _decode(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        lr_path, hr_path = self.pairs[index]
        lr = read_image(lr_path, channels=self.channels)  # type: ignore[arg-type]
        hr = read_image(hr_path, channels=self.channels)  # type: ignore[arg-type]
        return _pack(lr.pixels, lr.bit_depth), _pack(hr.pixels, hr.bit_depth)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Item:
        gen = self.generator(index)
        lr_s, hr_s = self._cache[index] if self._cache is not None else self._decode(index)
        lr, hr = _unpack(lr_s), _unpack(hr_s)
        lh, lw = lr.shape[-2:]
        hr = hr[..., : lh * self.scale, : lw * self.scale]
        if self.patch_size is not None:
            lr, hr = paired_random_crop(lr, hr, self.patch_size, self.scale, gen)
            if self.augment:
                lr, hr = augment_tensors(lr, hr, generator=gen)
        name = _rel_name(self.pairs[index][1], self.hr_root)
        return {"lr": lr.contiguous(), "hr": hr.contiguous(), "name": name}


# --------------------------------------------------------------------------- MNIST (IDX)


_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_MAX_BYTES = 1 << 32


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), raw or gzip-compressed (detected from the content).

    The header is checked: two zero bytes, a known type code, the number of dimensions, then
    the data must hold exactly ``prod(dims)`` items.

    Raises:
        DataError: missing file, bad magic number, truncated or oversized data, corrupt gzip.
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            compressed = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw) if compressed else raw
            magic = stream.read(4)
            if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in _IDX_TYPES or magic[3] == 0:
                raise DataError(f"{path}: not an IDX file (magic number {magic.hex() or 'missing'})")
            dtype = np.dtype(_IDX_TYPES[magic[2]])
            ndim = magic[3]
            dims_raw = stream.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise DataError(f"{path}: truncated IDX header")
            dims = struct.unpack(f">{ndim}I", dims_raw)
            nbytes = math.prod(dims) * dtype.itemsize
            if nbytes > _IDX_MAX_BYTES:
                raise DataError(
                    f"{path}: IDX header claims {nbytes} bytes of data, more than the 4 GiB limit"
                )
            data = stream.read(nbytes + 1)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an IDX file") from None
    except PermissionError:
        raise DataError(f"{path}: permission denied") from None
    except (EOFError, OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: corrupt or truncated gzip data ({exc})") from None
    if len(data) < nbytes:
        raise DataError(f"{path}: truncated IDX data ({len(data)} of {nbytes} bytes for shape {dims})")
    if len(data) > nbytes:
        raise DataError(f"{path}: IDX file holds more data than its header's shape {dims}")
    return np.frombuffer(data, dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _find_idx(root: Path, prefix: str, kind: str, rank: int) -> Path | None:
    for name in (f"{prefix}-{kind}-idx{rank}-ubyte", f"{prefix}-{kind}.idx{rank}-ubyte"):
        for candidate in (root / name, root / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # as in gansr.data.download.DATASETS
MNIST_FILES = ("t10k", "train")
"""The two MNIST IDX file sets: the 10,000 test digits and the 60,000 official training digits."""


class MNISTDataset(_SeededDataset):
    """MNIST digits from IDX files, HR 1x28x28, LR by the MNIST protocol (4x box average to 7x7
    plus N(0, 10^2) noise, :func:`gansr.degrade.mnist_degrade`) unless ``degradation`` is given.

    Either file can be read: ``file="t10k"`` (10,000 digits) or ``file="train"`` (the official
    60,000 training digits). Splits of the file: ``"train"`` is all but the last 2,000 images
    (the first 8,000 of ``t10k``), ``"test"`` the last 2,000; ``"all"``, a ``slice`` or a
    ``range`` select other parts. The project's held-out digits are the ``"test"`` split of
    ``t10k``: training on ``t10k``'s ``"train"`` split or on any part of the ``train`` file never
    sees them.

    Args:
        root: a folder holding ``{file}-images-idx3-ubyte`` (or ``.gz``, or ``{file}-images.idx3-ubyte``)
            and optionally the matching labels file, or the images file itself.
        split: ``"train"``, ``"test"``, ``"all"``, a slice or a range of image indices.
        file: ``"t10k"`` (default) or ``"train"`` (the 60,000-image file).
        scale: HR size / LR size of the degradation: 4 for the MNIST protocol (28 -> 7), or
            e.g. ``28 / 26`` with a degradation that shrinks to 26x26 (reference design 001).
        degradation: see the module docs; default the MNIST protocol (``scale`` 4 only).
        seed: base seed of the noise.
        per_epoch: fresh noise each epoch (training) or fixed noise per item (a fixed test set);
            default ``True`` for the ``"train"`` split and ``False`` otherwise.

    Items carry ``"label"`` (0-9) when a labels file is present.

    Raises:
        DataError: the files are missing (the message says where to get them and where to put
            them) or unreadable.
        ConfigError: bad ``file``, ``split``, ``scale`` or degradation.
    """

    TEST_SIZE = 2000

    def __init__(
        self,
        root: str | Path,
        *,
        split: str | slice | range = "train",
        file: str = "t10k",
        scale: float = 4,
        degradation: DegradationSpec = None,
        seed: int = 0,
        per_epoch: bool | None = None,
    ) -> None:
        super().__init__(seed, split == "train" if per_epoch is None else per_epoch)
        if file not in MNIST_FILES:
            raise ConfigError(f"MNIST file must be 't10k' or 'train', got {file!r}")
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not scale >= 1:
            raise ConfigError(f"MNIST scale must be a number >= 1, got {scale!r}")
        if degradation is None and scale != 4:
            raise ConfigError(f"the MNIST protocol is x4; give a degradation for x{scale:g}")
        self.scale = scale
        root = Path(root)
        if root.is_file():
            images_path: Path | None = root
            prefix = root.name.split("-images")[0] if "-images" in root.name else None
            labels_path = _find_idx(root.parent, prefix, "labels", 1) if prefix else None
        else:
            if not root.is_dir():
                raise DataError(f"{root}: no such folder")
            images_path = _find_idx(root, file, "images", 3)
            labels_path = _find_idx(root, file, "labels", 1)
        if images_path is None:
            raise DataError(
                f"{root}: no {file}-images-idx3-ubyte[.gz] file; download it with "
                f"gansr.data.fetch_dataset('mnist', ...) or put {_MNIST_URL}{file}-images-idx3-ubyte.gz "
                f"(and its labels file) in {root}"
            )
        images = read_idx(images_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataError(
                f"{images_path}: expected uint8 images N x H x W, got {images.dtype} {images.shape}"
            )
        self.images = images
        self.labels: np.ndarray | None = None
        if labels_path is not None:
            labels = read_idx(labels_path)
            if labels.shape != (len(images),):
                raise DataError(f"{labels_path}: {labels.shape} labels for {len(images)} images")
            self.labels = labels
        self.indices = self._split(split, len(images))
        self.file = images_path
        if degradation is None:
            from gansr.degrade import mnist_degrade

            self.degradation: Callable[..., torch.Tensor] = mnist_degrade
        else:
            self.degradation = resolve_degradation(degradation, self.scale)

    @classmethod
    def _split(cls, split: str | slice | range, count: int) -> range:
        if split == "train":
            return range(0, max(count - cls.TEST_SIZE, 0))
        if split == "test":
            return range(max(count - cls.TEST_SIZE, 0), count)
        if split == "all":
            return range(count)
        if isinstance(split, slice):
            return range(count)[split]
        if isinstance(split, range):
            if split and (split[0] < 0 or split[-1] >= count):
                raise ConfigError(f"MNIST split {split} is outside the {count} images")
            return split
        raise ConfigError(f"MNIST split must be 'train', 'test', 'all', a slice or a range, got {split!r}")

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Item:
        source = self.indices[index]
        hr = torch.from_numpy(self.images[source].astype(np.float32) / 255)[None]
        lr = _degrade(self.degradation, hr, self.scale, self.generator(source))
        item: Item = {"lr": lr, "hr": hr, "name": f"{self.file.name.split('-')[0]}-{source:05d}"}
        if self.labels is not None:
            item["label"] = int(self.labels[source])
        return item


# --------------------------------------------------------------------------- STL-10


_STL_SIDE = 96
_STL_BYTES = 3 * _STL_SIDE * _STL_SIDE


class STL10Dataset(_SeededDataset):
    """STL-10 from the binary release (``stl10_binary/{train,test,unlabeled}_X.bin``).

    Each image is stored as 3 x 96 x 96 uint8, channel by channel, each channel column-major
    (as MATLAB writes), so it is read as ``(3, x, y)`` and transposed to ``(3, y, x)``. HR is the
    image resized to ``hr_size`` (MATLAB bicubic, rounded to 8 bits; 48 in the reference design,
    giving 12x12 LR at x4), LR comes from the degradation. The file is memory-mapped: items are
    read on demand (the 100,000-image unlabeled split needs no RAM up front).

    Items carry ``"label"`` (0-9; the files store 1-10) for the train and test splits.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        scale: int = 4,
        hr_size: int = 48,
        degradation: DegradationSpec = None,
        augment: bool = False,
        seed: int = 0,
        per_epoch: bool | None = None,
    ) -> None:
        super().__init__(seed, split != "test" if per_epoch is None else per_epoch)
        if split not in ("train", "test", "unlabeled"):
            raise ConfigError(f"STL-10 split must be 'train', 'test' or 'unlabeled', got {split!r}")
        self.scale = _check_scale(scale)
        if not (isinstance(hr_size, int) and 1 <= hr_size <= _STL_SIDE and hr_size % scale == 0):
            raise ConfigError(f"hr_size must be a multiple of the scale {scale} in 1..96, got {hr_size!r}")
        self.hr_size = hr_size
        self.augment = augment
        root = Path(root)
        folder = root / "stl10_binary" if (root / "stl10_binary").is_dir() else root
        self.path = folder / f"{split}_X.bin"
        if not self.path.is_file():
            raise DataError(f"{self.path}: no such file (expected the stl10_binary release)")
        size = self.path.stat().st_size
        if size == 0 or size % _STL_BYTES:
            raise DataError(f"{self.path}: {size} bytes is not a whole number of 3x96x96 images")
        self.count = size // _STL_BYTES
        self.labels: np.ndarray | None = None
        labels_path = folder / f"{split}_y.bin"
        if split != "unlabeled" and labels_path.is_file():
            labels = np.fromfile(labels_path, dtype=np.uint8)
            if len(labels) != self.count or labels.min() < 1 or labels.max() > 10:
                raise DataError(f"{labels_path}: expected {self.count} labels in 1..10")
            self.labels = labels.astype(np.int64) - 1
        self.degradation = resolve_degradation(degradation, scale)
        self._map: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_map"] = None  # each worker maps the file itself instead of receiving a copy
        return state

    def __len__(self) -> int:
        return self.count

    def raw(self, index: int) -> torch.Tensor:
        """Image ``index`` at full size, ``uint8`` ``(3, 96, 96)``, upright."""
        if self._map is None:
            self._map = np.memmap(self.path, np.uint8, "r", shape=(self.count, 3, _STL_SIDE, _STL_SIDE))
        return torch.from_numpy(np.ascontiguousarray(self._map[index].transpose(0, 2, 1)))

    def __getitem__(self, index: int) -> Item:
        from gansr.degrade import imresize, quantize

        gen = self.generator(index)
        hr = self.raw(index).float() / 255
        if self.hr_size != _STL_SIDE:
            hr = quantize(imresize(hr, size=(self.hr_size, self.hr_size)).clamp(0, 1))
        if self.augment:
            (hr,) = augment_tensors(hr, generator=gen)
        hr = hr.contiguous()
        item: Item = {
            "lr": _degrade(self.degradation, hr, self.scale, gen),
            "hr": hr,
            "name": f"stl10-{index:06d}",
        }
        if self.labels is not None:
            item["label"] = int(self.labels[index])
        return item


# --------------------------------------------------------------------------- CelebA


_CELEBA_SPLITS = {"train": 0, "valid": 1, "test": 2}


class CelebADataset(_SeededDataset):
    """CelebA aligned faces: ``img_align_celeba/*.jpg`` split by ``list_eval_partition.txt``
    (``<file> <0|1|2>``: train, valid, test; also found under ``Eval/``, or Kaggle's
    ``list_eval_partition.csv``).

    Each image is optionally centre-cropped to ``crop`` (e.g. 178 for the square face region),
    resized to ``hr_size`` (MATLAB bicubic, rounded to 8 bits), cropped to a multiple of
    ``scale``, and degraded into LR. Images are read per item; a missing or damaged file raises
    :class:`DataError` naming it when its item is read.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        scale: int = 4,
        crop: int | tuple[int, int] | None = None,
        hr_size: int | tuple[int, int] | None = None,
        degradation: DegradationSpec = None,
        augment: bool = False,
        channels: str = "rgb",
        seed: int = 0,
        per_epoch: bool | None = None,
    ) -> None:
        super().__init__(seed, split == "train" if per_epoch is None else per_epoch)
        if split not in _CELEBA_SPLITS:
            raise ConfigError(f"CelebA split must be 'train', 'valid' or 'test', got {split!r}")
        self.scale = _check_scale(scale)
        self.crop = _pair_size(crop, "crop")
        self.hr_size = _pair_size(hr_size, "hr_size")
        if self.hr_size is not None and (self.hr_size[0] % scale or self.hr_size[1] % scale):
            raise ConfigError(f"hr_size {hr_size} must be a multiple of the scale {scale}")
        self.augment = augment
        self.channels = _check_channels(channels)
        root = Path(root)
        self.images_dir = root / "img_align_celeba"
        if (self.images_dir / "img_align_celeba").is_dir():  # the Kaggle archive nests it twice
            self.images_dir = self.images_dir / "img_align_celeba"
        if not self.images_dir.is_dir():
            raise DataError(f"{self.images_dir}: no such folder (expected CelebA's img_align_celeba)")
        code = _CELEBA_SPLITS[split]
        self.files = [name for name, part in _read_partition(root) if part == code]
        if not self.files:
            raise DataError(f"{root}: the partition file lists no {split} images")
        self.degradation = resolve_degradation(degradation, scale)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Item:
        from gansr.degrade import imresize, quantize

        gen = self.generator(index)
        path = self.images_dir / self.files[index]
        hr = read_image(path, channels=self.channels).pixels  # type: ignore[arg-type]
        if self.crop is not None:
            ch, cw = self.crop
            h, w = hr.shape[-2:]
            if h < ch or w < cw:
                raise DataError(f"{path}: {w}x{h} is smaller than the {cw}x{ch} crop")
            top, left = (h - ch) // 2, (w - cw) // 2
            hr = hr[..., top : top + ch, left : left + cw]
        if self.hr_size is not None and tuple(hr.shape[-2:]) != self.hr_size:
            hr = quantize(imresize(hr, size=self.hr_size).clamp(0, 1))
        hr = _modcrop(hr, self.scale)
        if self.augment:
            (hr,) = augment_tensors(hr, generator=gen)
        hr = hr.contiguous()
        return {
            "lr": _degrade(self.degradation, hr, self.scale, gen),
            "hr": hr,
            "name": Path(self.files[index]).stem,
        }


def _pair_size(value: int | tuple[int, int] | None, what: str) -> tuple[int, int] | None:
    if value is None:
        return None
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise ConfigError(f"{what} must be a positive integer or (height, width), got {value!r}")
    return pair  # type: ignore[return-value]


def _read_partition(root: Path) -> list[tuple[str, int]]:
    """``(file name, partition)`` rows of CelebA's evaluation partition file."""
    for candidate in (
        root / "list_eval_partition.txt",
        root / "Eval" / "list_eval_partition.txt",
        root / "list_eval_partition.csv",
    ):
        if candidate.is_file():
            break
    else:
        raise DataError(f"{root}: no list_eval_partition.txt (or Eval/list_eval_partition.txt, .csv)")
    rows: list[tuple[str, int]] = []
    with open(candidate, newline="", encoding="utf-8") as f:
        lines = csv.reader(f) if candidate.suffix == ".csv" else (line.split() for line in f)
        for number, fields in enumerate(lines, start=1):
            if not fields or (number == 1 and fields[0] == "image_id"):  # blank line, CSV header
                continue
            if len(fields) != 2 or fields[1].strip() not in ("0", "1", "2"):
                raise DataError(f"{candidate}:{number}: expected '<file> <0|1|2>', got {' '.join(fields)!r}")
            rows.append((fields[0].strip(), int(fields[1])))
    return rows
