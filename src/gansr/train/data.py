"""Training batches as a pure function of (seed, batch index), and the validation set.

Exact resume needs the data stream to continue where it stopped. Instead of checkpointing
iterator internals, every batch is *computed* from its index ``b``:

- ``epoch, position = divmod(b, batches_per_epoch)``; the epoch's order is a
  :class:`torch.utils.data.DistributedSampler` permutation seeded with ``(seed, epoch)``, and each
  process takes its own shard of it (one process: the whole permutation).
- every sample's randomness (crop position, flips, degradation noise/blur) comes from a
  ``torch.Generator`` seeded by ``(seed, epoch, index)``, so it does not matter which DataLoader
  worker builds it, and two workers never produce the same crop by accident.

The checkpoint then only needs ``b`` (the data position); :class:`BatchPlan` restarts there, and
:func:`gansr.data.loader.make_loader` (``batches=plan``) loads the batches with workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from gansr.errors import ConfigError, DataError
from gansr.train.config import Config

# Training samples are seeded by (seed, epoch, index); other streams use 4-part keys
# (seed, stream, i, 0) so that they can never coincide with a training sample's.
VAL_STREAM = 1
NOISE_STREAM = 2


def item_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from non-negative integers (NumPy's SeedSequence hashing)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)


# --------------------------------------------------------------------------------------------
# Sources: "give me HR image i" (or the LR/HR pair i) without any randomness.
class Source(Protocol):
    """Indexable HR images (or LR/HR pairs for paired folders)."""

    paired: bool

    def __len__(self) -> int: ...

    def get(self, index: int) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(lr or None, hr)`` of item ``index``, float32 ``(C, H, W)`` in [0, 1]."""
        ...


class FolderSource:
    """HR images of a folder (recursive), read with :func:`gansr.data.io.read_image`.

    Images smaller than ``min_size`` on either side are left out (``skipped`` lists them).
    """

    paired = False

    def __init__(
        self,
        root: Path,
        *,
        channels: str,
        min_size: int = 0,
        max_images: int | None = None,
        cache: bool = False,
    ) -> None:
        from PIL import Image

        from gansr.data.io import list_images

        paths = list_images(root)
        if not paths:
            raise DataError(f"{root}: no images found")
        self.paths: list[Path] = []
        self.skipped: list[str] = []
        for path in paths:
            if max_images is not None and len(self.paths) >= max_images:
                break
            if min_size:
                try:
                    with Image.open(path) as im:  # reads the header only
                        w, h = im.size
                except OSError:
                    w = h = min_size  # unreadable: read_image reports it properly later
                if min(w, h) < min_size:
                    self.skipped.append(f"{path.name} ({w}x{h})")
                    continue
            self.paths.append(path)
        if not self.paths:
            raise DataError(f"{root}: no image is at least {min_size}x{min_size} pixels (data.patch_size)")
        self.channels = channels
        self._cache: dict[int, torch.Tensor] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, index: int) -> tuple[None, torch.Tensor]:
        if self._cache is not None and index in self._cache:
            return None, self._cache[index]
        from gansr.data.io import read_image

        hr = read_image(self.paths[index], channels=self.channels).pixels
        if self._cache is not None:
            self._cache[index] = hr
        return None, hr


class DatasetSource:
    """HR images (and LR, when ``paired``) of a :mod:`gansr.data` dataset returning dicts."""

    def __init__(self, dataset: Any, *, paired: bool = False, max_images: int | None = None) -> None:
        self.dataset = dataset
        self.paired = paired
        self.count = len(dataset) if max_images is None else min(len(dataset), max_images)

    def __len__(self) -> int:
        return self.count

    def get(self, index: int) -> tuple[torch.Tensor | None, torch.Tensor]:
        item = self.dataset[index]
        return (item["lr"] if self.paired else None), item["hr"]


class ConcatSource:
    """Several sources as one (``data.root`` as a list), each repeated ``repeats[i]`` times.

    Item ``i`` of the whole is item ``i`` of the first source's repeated range, and so on; a
    source of ``n`` images repeated ``r`` times contributes ``n * r`` items (``j % n`` of it).
    """

    def __init__(self, sources: list[Source], repeats: list[int] | None = None) -> None:
        if not sources:
            raise ValueError("ConcatSource needs at least one source")
        repeats = repeats or [1] * len(sources)
        if len(repeats) != len(sources) or any(r < 1 for r in repeats):
            raise ValueError(f"one repeat count >= 1 per source, got {repeats} for {len(sources)}")
        if len({s.paired for s in sources}) != 1:
            raise ValueError("cannot mix paired and HR-only sources")
        self.sources, self.repeats = sources, repeats
        self.paired = sources[0].paired
        self.skipped: list[str] = [name for s in sources for name in getattr(s, "skipped", [])]
        self._ends = list(np.cumsum([len(s) * r for s, r in zip(sources, repeats, strict=True)]))

    def __len__(self) -> int:
        return int(self._ends[-1])

    def get(self, index: int) -> tuple[torch.Tensor | None, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} of {len(self)}")
        which = int(np.searchsorted(self._ends, index, side="right"))
        start = int(self._ends[which - 1]) if which else 0
        source = self.sources[which]
        return source.get((index - start) % len(source))


# --------------------------------------------------------------------------------------------
# Samples and the batch plan.
class TrainSamples(Dataset):
    """Item key ``(epoch, index)`` -> ``(lr, hr)`` training pair.

    HR patch (random crop of ``patch_size``, or the whole image), random flips/rotations, then
    the degradation pipeline; all randomness from one generator seeded by ``(seed, epoch, index)``.
    For paired sources the LR/HR crops are taken at the same place and no degradation is applied.
    """

    def __init__(
        self,
        source: Source,
        *,
        scale: int,
        patch_size: int | None,
        pipeline: Any,
        augment: bool,
        seed: int,
        usm_target: bool = False,
    ) -> None:
        self.source = source
        self.scale = scale
        self.patch_size = patch_size
        self.pipeline = pipeline
        self.augment = augment
        self.seed = seed
        self.usm_target = usm_target

    @classmethod
    def from_config(cls, cfg: Config, source: Source, pipeline: Any) -> TrainSamples:
        """The samples the ``data`` section of ``cfg`` describes."""
        d = cfg.data
        return cls(
            source,
            scale=d.scale,
            patch_size=d.patch_size,
            pipeline=pipeline,
            augment=d.augment,
            seed=cfg.seed,
            usm_target=d.usm_target,
        )

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        from gansr.data.transforms import augment, paired_random_crop

        epoch, index = key
        gen = torch.Generator().manual_seed(item_seed(self.seed, epoch, index))
        lr, hr = self.source.get(index)
        if self.source.paired:
            if self.patch_size is not None:
                lr, hr = paired_random_crop(lr, hr, self.patch_size, self.scale, gen)
            if self.augment:
                lr, hr = augment(lr, hr, generator=gen)
            return lr.contiguous(), hr.contiguous()
        if self.patch_size is not None:
            hr = _random_crop(hr, self.patch_size, gen)
        else:
            hr = _mod_crop(hr, self.scale)
        if self.augment:
            (hr,) = augment(hr, generator=gen)
        lr = self.pipeline(hr.contiguous(), generator=gen)
        if self.usm_target:  # the LR comes from the plain HR; only the target is sharpened
            from gansr.degrade.kernels import unsharp_mask

            hr = unsharp_mask(hr)
        return lr.contiguous(), hr.contiguous()


def _random_crop(img: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    # Any HR position (not only multiples of the scale): the LR is made from the crop afterwards.
    top = int(torch.randint(0, img.shape[-2] - size + 1, (), generator=gen))
    left = int(torch.randint(0, img.shape[-1] - size + 1, (), generator=gen))
    return img[..., top : top + size, left : left + size]


def _mod_crop(img: torch.Tensor, scale: float) -> torch.Tensor:
    if not isinstance(scale, int):  # a non-integer scale: the degradation sets the LR size
        return img
    h, w = img.shape[-2] // scale * scale, img.shape[-1] // scale * scale
    return img[..., :h, :w]


class BatchPlan(Sampler[list[tuple[int, int]]]):
    """Endless batches of ``(epoch, index)`` keys, starting at batch ``start``.

    Batch ``b`` is always the same keys for the same ``(n, batch_size, seed, rank, world_size)``:
    the order within an epoch is ``DistributedSampler(shuffle=True, seed=seed, drop_last=True)``
    after ``set_epoch(epoch)``.
    """

    def __init__(
        self, n: int, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1, start: int = 0
    ):
        per_process = n // world_size
        if per_process < batch_size:
            raise DataError(
                f"data: {n} training images are too few for data.batch_size={batch_size}"
                + (f" on each of {world_size} processes" if world_size > 1 else "")
            )
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size, self.start = rank, world_size, start
        self.batches_per_epoch = per_process // batch_size
        self._cached: tuple[int, list[int]] | None = None

    def epoch_order(self, epoch: int) -> list[int]:
        """This process's sample order in ``epoch``."""
        if self._cached is None or self._cached[0] != epoch:
            sampler = DistributedSampler(
                range(self.n),
                num_replicas=self.world_size,
                rank=self.rank,
                shuffle=True,
                seed=self.seed,
                drop_last=True,
            )
            sampler.set_epoch(epoch)
            self._cached = (epoch, list(sampler))
        return self._cached[1]

    def keys(self, batch: int) -> list[tuple[int, int]]:
        """The keys of batch number ``batch``."""
        epoch, position = divmod(batch, self.batches_per_epoch)
        order = self.epoch_order(epoch)
        chunk = order[position * self.batch_size : (position + 1) * self.batch_size]
        return [(epoch, index) for index in chunk]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        batch = self.start
        while True:
            yield self.keys(batch)
            batch += 1

    def __len__(self) -> int:  # DataLoader asks; the plan is endless
        return 2**62


# --------------------------------------------------------------------------------------------
# Building from the config.
def build_pipeline(cfg: Config) -> Any:
    """The degradation pipeline named by ``data.degradation`` (default: bicubic or the MNIST protocol)."""
    from gansr.degrade import Pipeline

    d = cfg.data
    spec = d.degradation
    try:
        if spec is None:
            pipeline = (
                Pipeline.preset("mnist")
                if d.kind == "mnist" and d.scale == 4
                else Pipeline([{"type": "resize", "scale": 1 / d.scale}])
            )
        elif isinstance(spec, str):
            pipeline = Pipeline.preset(spec)
        else:
            pipeline = Pipeline.from_config(spec)
    except ConfigError as exc:
        raise ConfigError(f"data.degradation: {exc}") from None
    if d.kind != "paired" and abs(pipeline.scale - d.scale) > 1e-6:
        raise ConfigError(f"data.degradation: shrinks by {pipeline.scale:g}, but data.scale is {d.scale:g}")
    return pipeline


def _require_dir(path: str | None, key: str) -> Path:
    if path is None:
        raise ConfigError(f"{key}: required (e.g. --set {key}=/path/to/folder)")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"{key}: folder not found: {folder}")
    return folder


def _root_dirs(cfg: Config) -> list[Path]:
    """The ``data.root`` folder(s), each checked to exist (errors name ``data.root[i]``)."""
    root = cfg.data.root
    if isinstance(root, list):
        return [_require_dir(path, f"data.root[{i}]") for i, path in enumerate(root)]
    return [_require_dir(root, "data.root")]


def _root_dir(cfg: Config) -> Path:
    """The single ``data.root`` folder of the dataset kinds that take one."""
    roots = _root_dirs(cfg)
    if len(roots) != 1:
        raise ConfigError(f"data.root: data.kind {cfg.data.kind!r} takes one folder, got {len(roots)}")
    return roots[0]


def check_folders(cfg: Config) -> None:
    """``data.root`` (and ``data.lr_root``, ``data.val_folder`` when used) must be folders."""
    d = cfg.data
    _root_dirs(cfg)
    if d.kind == "paired":
        _require_dir(d.lr_root, "data.lr_root")
    if d.val_folder is not None:
        _require_dir(d.val_folder, "data.val_folder")


def _skip_lr(hr: torch.Tensor, generator: torch.Generator | None = None, *, scale: float) -> torch.Tensor:
    """A placeholder LR of the right size: these datasets only provide HR here (see TrainSamples)."""
    from gansr.data.datasets import lr_size

    h, w = lr_size(tuple(hr.shape[-2:]), scale)
    return hr[..., :h, :w]


def _dataset(cfg: Config, split: str) -> Any:
    """A :mod:`gansr.data` dataset of kind ``data.kind`` for ``split`` (whole images, no crops).

    MNIST trains on ``data.mnist_file`` (the first 8,000 ``t10k`` digits, or all 60,000 of the
    ``train`` file) and always tests on the last 2,000 ``t10k`` digits, which neither trains on.
    """
    from gansr import data as gdata

    d = cfg.data
    root = _root_dir(cfg)
    skip = partial(_skip_lr, scale=d.scale)  # the LR is made by TrainSamples with its own seeding
    try:
        if d.kind == "mnist":
            if split == "train" and d.mnist_file == "train":
                return gdata.MNISTDataset(root, split="all", file="train", scale=d.scale, degradation=skip)
            return gdata.MNISTDataset(root, split=split, scale=d.scale, degradation=skip)
        if d.kind == "stl10":
            return gdata.STL10Dataset(
                root, split=split, scale=d.scale, hr_size=d.hr_size or 48, degradation=skip
            )
        if d.kind == "celeba":
            split = "valid" if split == "test" else split
            return gdata.CelebADataset(
                root, split, scale=d.scale, hr_size=d.hr_size, channels=d.channels, degradation=skip
            )
    except DataError as exc:
        raise ConfigError(f"data.root: {exc}") from None
    raise AssertionError(d.kind)


def build_train_source(cfg: Config) -> Any:
    """The training images named by the ``data`` section."""
    d = cfg.data
    if d.kind == "hr_folder":
        return _folder_sources(cfg)
    try:
        if d.kind == "paired":
            from gansr.data import PairedFolderDataset

            hr_root = _root_dir(cfg)
            lr_root = _require_dir(d.lr_root, "data.lr_root")
            dataset = PairedFolderDataset(lr_root, hr_root, d.scale, patch_size=None, augment=False)
            return DatasetSource(dataset, paired=True, max_images=d.max_images)
    except DataError as exc:
        raise ConfigError(f"data.root: {exc}") from None
    return DatasetSource(_dataset(cfg, "train"), max_images=d.max_images)


def _folder_sources(cfg: Config) -> Source:
    """The HR images of the ``data.root`` folder(s), weighted by ``data.root_weights``.

    ``data.max_images`` caps the total, taken from the folders in order.
    """
    d = cfg.data
    sources: list[Source] = []
    left = d.max_images
    for i, root in enumerate(_root_dirs(cfg)):
        key = f"data.root[{i}]" if isinstance(d.root, list) else "data.root"
        if left is not None and left < 1:
            break  # data.max_images is used up by the folders before
        try:
            source = FolderSource(
                root, channels=d.channels, min_size=d.patch_size or 0, max_images=left, cache=d.cache
            )
        except DataError as exc:
            raise ConfigError(f"{key}: {exc}") from None
        sources.append(source)
        left = None if left is None else left - len(source)
    if len(sources) == 1 and d.root_weights is None:
        return sources[0]
    weights = d.root_weights[: len(sources)] if d.root_weights is not None else None
    return ConcatSource(sources, weights)


@dataclass
class ValItem:
    """One validation image: its name, the LR input and the HR target (``(C, H, W)``)."""

    name: str
    lr: torch.Tensor
    hr: torch.Tensor


def build_val_set(cfg: Config, pipeline: Any) -> list[ValItem] | None:
    """The validation images: ``data.val_folder``, else the dataset's test split; None when neither.

    LR images come from the training degradation with a fixed per-image seed, so the set is the
    same at every validation and across resumes.
    """
    d = cfg.data
    limit = cfg.train.val_max_images
    items: list[ValItem] = []
    if d.val_folder is not None:
        from gansr.data.io import list_images, read_image

        folder = _require_dir(d.val_folder, "data.val_folder")
        paths = list_images(folder)[:limit]
        if not paths:
            raise ConfigError(f"data.val_folder: no images found in {folder}")
        for i, path in enumerate(paths):
            try:
                hr = _mod_crop(read_image(path, channels=d.channels).pixels, d.scale)
            except DataError as exc:
                raise ConfigError(f"data.val_folder: {exc}") from None
            lr = pipeline(hr, generator=torch.Generator().manual_seed(item_seed(cfg.seed, VAL_STREAM, i, 0)))
            items.append(ValItem(path.stem, lr, hr))
        return items
    if d.kind in ("mnist", "stl10", "celeba"):
        dataset = _dataset(cfg, "test")
        for i in range(min(limit, len(dataset))):
            item = dataset[i]
            hr = _mod_crop(item["hr"], d.scale)
            lr = pipeline(hr, generator=torch.Generator().manual_seed(item_seed(cfg.seed, VAL_STREAM, i, 0)))
            items.append(ValItem(str(item.get("name", i)), lr, hr))
        return items
    return None
