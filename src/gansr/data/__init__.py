"""Images and datasets: reading/writing images, SR datasets, augmentation, loaders, downloads.

:mod:`gansr.data.io` is imported eagerly (everything needs it); the dataset, loader and download
modules load on first use of one of their names. The download function itself is
:func:`gansr.data.download.download` (the submodule's name would shadow it here).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gansr.data.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    LoadedImage,
    atomic_write,
    encode_image,
    from_pil,
    image_size,
    list_images,
    read_image,
    to_pil,
    write_image,
)

if TYPE_CHECKING:
    from gansr.data.benchmarks import (
        BENCHMARKS,
        BenchmarkInfo,
        BenchmarkSpec,
        benchmark_info,
        resolve_benchmark,
    )
    from gansr.data.datasets import (
        CelebADataset,
        HRFolderDataset,
        MNISTDataset,
        PairedFolderDataset,
        STL10Dataset,
        pair_key,
        read_idx,
        resolve_degradation,
    )
    from gansr.data.download import (
        DATASETS,
        RemoteDataset,
        RemoteFile,
        cache_dir,
        extract_archive,
        fetch_dataset,
    )
    from gansr.data.loader import SeededLoader, make_loader, set_epoch
    from gansr.data.transforms import augment, paired_random_crop, random_crop

_LAZY = {
    "BENCHMARKS": "benchmarks",
    "BenchmarkInfo": "benchmarks",
    "BenchmarkSpec": "benchmarks",
    "benchmark_info": "benchmarks",
    "resolve_benchmark": "benchmarks",
    "CelebADataset": "datasets",
    "HRFolderDataset": "datasets",
    "MNISTDataset": "datasets",
    "PairedFolderDataset": "datasets",
    "STL10Dataset": "datasets",
    "pair_key": "datasets",
    "read_idx": "datasets",
    "resolve_degradation": "datasets",
    "DATASETS": "download",
    "RemoteDataset": "download",
    "RemoteFile": "download",
    "cache_dir": "download",
    "extract_archive": "download",
    "fetch_dataset": "download",
    "SeededLoader": "loader",
    "make_loader": "loader",
    "set_epoch": "loader",
    "augment": "transforms",
    "paired_random_crop": "transforms",
    "random_crop": "transforms",
}

__all__ = [
    "BENCHMARKS",
    "BenchmarkInfo",
    "BenchmarkSpec",
    "CelebADataset",
    "DATASETS",
    "DEFAULT_MAX_PIXELS",
    "HRFolderDataset",
    "IMAGE_SUFFIXES",
    "LoadedImage",
    "MNISTDataset",
    "PairedFolderDataset",
    "RemoteDataset",
    "RemoteFile",
    "STL10Dataset",
    "SeededLoader",
    "atomic_write",
    "augment",
    "benchmark_info",
    "cache_dir",
    "encode_image",
    "extract_archive",
    "fetch_dataset",
    "from_pil",
    "image_size",
    "list_images",
    "make_loader",
    "pair_key",
    "paired_random_crop",
    "random_crop",
    "read_idx",
    "read_image",
    "resolve_benchmark",
    "resolve_degradation",
    "set_epoch",
    "to_pil",
    "write_image",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gansr.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"gansr.data.{module}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
