"""DataLoaders that stream from disk with worker processes, seeded and distributed-ready.

Items are decoded per item inside the workers (bounded memory: at most
``num_workers * prefetch_factor`` batches in flight). Shuffling uses a ``torch.Generator``
seeded from ``seed``; the datasets of :mod:`gansr.data.datasets` seed each item themselves, so
a run is reproducible for a given seed whatever the number of workers. Training passes its own
batch sampler (``batches``: batch ``b`` is a pure function of ``b``, for exact resume).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, Sampler

from gansr.errors import ConfigError

__all__ = ["SeededLoader", "make_loader", "set_epoch"]


def make_loader(
    dataset: Dataset[Any],
    batch_size: int | None = None,
    *,
    batches: Sampler[list[Any]] | None = None,
    shuffle: bool = True,
    num_workers: int = 0,
    seed: int = 0,
    drop_last: bool = False,
    distributed: bool = False,
    num_replicas: int | None = None,
    rank: int | None = None,
    persistent_workers: bool = False,
    prefetch_factor: int | None = None,
    pin_memory: bool | None = None,
) -> SeededLoader:
    """A :class:`SeededLoader` (a ``DataLoader``) over ``dataset``.

    Args:
        dataset: any map-style dataset (the gansr datasets return dicts, batched by the
            default collate into ``{"lr": (N, C, h, w), "hr": (N, C, H, W), "name": [...]}``).
        batch_size: items per batch.
        batches: instead of ``batch_size``, a batch sampler yielding each batch's dataset keys
            (training's :class:`gansr.train.data.BatchPlan`); it decides the order and sharding,
            so ``shuffle``, ``drop_last`` and ``distributed`` do not apply.
        shuffle: reshuffle each epoch (call :func:`set_epoch` before each epoch).
        num_workers: worker processes decoding items (0 decodes in the calling process).
        seed: seed of the shuffling order (and of the distributed sampler).
        drop_last: drop the last incomplete batch.
        distributed: shard the data with a ``DistributedSampler``; ``num_replicas``/``rank``
            default to the initialized ``torch.distributed`` process group.
        persistent_workers: keep workers alive between epochs (needs ``num_workers > 0``);
            :func:`set_epoch` still reaches them for the gansr datasets.
        prefetch_factor: batches loaded ahead per worker (PyTorch's default 2 when ``None``).
        pin_memory: page-locked batches for faster GPU copies; default on when CUDA is available.

    Raises:
        ConfigError: a bad batch size or worker count, both or neither of ``batch_size`` and
            ``batches``, or ``distributed`` without a process group.
    """
    if (batch_size is None) == (batches is None):
        raise ConfigError("make_loader: give exactly one of batch_size and batches")
    bad_size = isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    if batches is None and bad_size:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ConfigError(f"num_workers must be a non-negative integer, got {num_workers!r}")
    if persistent_workers and num_workers == 0:
        raise ConfigError("persistent_workers needs num_workers > 0")
    # An explicit generator: creating an iterator must not draw from the global torch RNG (whose
    # state a training checkpoint holds).
    generator = torch.Generator().manual_seed(int(seed))
    sampler: Sampler[int] | None = None
    if batches is None and shuffle and not distributed:
        # The order gets a generator of its own: the loader's also seeds the workers, and draws
        # from it differ with persistent workers, which would change the order.
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(int(seed)))
    elif batches is None and distributed:
        if num_replicas is None or rank is None:
            if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
                raise ConfigError(
                    "distributed loading needs an initialized torch.distributed process group "
                    "(or num_replicas and rank)"
                )
        sampler = DistributedSampler(
            dataset,
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=int(seed),
            drop_last=drop_last,
        )
    options: dict[str, Any] = (
        {"batch_sampler": batches}
        if batches is not None
        else {"batch_size": batch_size, "sampler": sampler, "drop_last": drop_last}
    )
    if num_workers > 0:
        options["persistent_workers"] = persistent_workers
        if prefetch_factor is not None:
            options["prefetch_factor"] = prefetch_factor
    return SeededLoader(
        dataset,
        num_workers=num_workers,
        generator=generator,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        seed=seed,
        **options,
    )


class SeededLoader(DataLoader[Any]):
    """A ``DataLoader`` whose shuffling order is a function of ``(seed, epoch)``.

    Made by :func:`make_loader`. :meth:`set_epoch` reseeds the shuffling generator, so epoch
    ``k`` of a resumed run sees the same order as epoch ``k`` of an uninterrupted one.
    """

    def __init__(self, *args: Any, seed: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seed = int(seed)

    def set_epoch(self, epoch: int) -> None:
        """Prepare for ``epoch`` (see :func:`set_epoch`)."""
        state = int(np.random.SeedSequence([self.seed, int(epoch)]).generate_state(1, dtype=np.uint64)[0])
        if isinstance(self.sampler, RandomSampler) and self.sampler.generator is not None:
            self.sampler.generator.manual_seed(state)
        if self.generator is not None:
            self.generator.manual_seed(state)
        _set_parts_epoch(self, epoch)


def set_epoch(loader: DataLoader[Any], epoch: int) -> None:
    """Prepare ``loader`` for ``epoch``: the shuffling order (for a :class:`SeededLoader`), the
    distributed sampler's shard order and the dataset's per-epoch randomness (crops, flips,
    noise) all follow the epoch number. Call it before iterating over each epoch.
    """
    if isinstance(loader, SeededLoader):
        loader.set_epoch(epoch)
    else:
        _set_parts_epoch(loader, epoch)


def _set_parts_epoch(loader: DataLoader[Any], epoch: int) -> None:
    for obj in (loader.sampler, getattr(loader.batch_sampler, "sampler", None), loader.dataset):
        if obj is not None and hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)
