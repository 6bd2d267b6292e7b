"""Reuse large CPU allocations within a forward pass (glibc malloc tuning, Linux only).

PyTorch allocates CPU tensors with plain ``malloc``. glibc serves any block above its *mmap
threshold* (which adapts upwards to at most 32 MiB) with a fresh ``mmap`` and ``free`` unmaps it,
so every activation of a large image (64 channels of a 1024x1024 map in fp32 is 256 MiB) comes
as brand-new pages that the kernel must fault in and zero, layer after layer. On this project's
2-core CPU that cost 14-19% of ``rrdbnet``'s time at 1024x1024 and made it slower per pixel than
at 256x256, whose activations stay under the threshold and are recycled by malloc.

:func:`reuse_large_blocks` raises the mmap and trim thresholds while it is active, so a freed
activation's memory stays in the heap and the next layer's output reuses it; when the outermost
scope exits, the thresholds go back to glibc's own adaptive ceiling (32 MiB mmap / 64 MiB trim,
what a long-running process converges to anyway) and ``malloc_trim`` returns the free heap to the
operating system. The thresholds are process-wide allocator settings: scopes nest and may
overlap across threads (a counter under a lock). On other C libraries, or with
``GANSR_MALLOC_TUNING=0``, the scope does nothing.

The price is memory: blocks freed in one size cannot always serve the next size, so a pass
peaks ~1.5x higher than with fresh mmaps (measured: 1.54 vs 1.03 GB for one RRDB at
1024x1024, 20% faster). gansr therefore scopes one forward pass at a time
(:class:`gansr.engine.fast.FastModel`; a tiled run trims between tiles, so its peak stays one
tile's) and the training loop, whose steps repeat the same sizes.

The same effect without code: ``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=...`` or an
allocator such as jemalloc / tcmalloc via ``LD_PRELOAD``, as PyTorch's CPU performance guide
recommends; this module makes it the default for gansr's inference engine.
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import torch

__all__ = ["reuse_large_blocks"]

_M_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
_HIGH = 2**31 - 1  # mallopt takes an int: blocks above 2 GiB still get their own mmap
_RESTORE_MMAP = 32 * 2**20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
_RESTORE_TRIM = 2 * _RESTORE_MMAP  # what the adaptive scheme pairs with it

_lock = threading.Lock()
_depth = 0


@cache
def _glibc() -> ctypes.CDLL | None:
    """The process's glibc with ``mallopt`` and ``malloc_trim``, or None where they do not apply."""
    if os.environ.get("GANSR_MALLOC_TUNING", "1") == "0":
        return None
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


@contextmanager
def reuse_large_blocks(device: torch.device | str = "cpu") -> Iterator[None]:
    """Within this scope, large freed blocks stay in the heap for reuse (see the module doc).

    ``device`` is where the work in the scope allocates; only CPU memory comes from malloc, so for
    any other device the scope does nothing.
    """
    global _depth
    libc = _glibc() if torch.device(device).type == "cpu" else None
    if libc is None:
        yield
        return
    with _lock:
        if _depth == 0:
            libc.mallopt(_M_MMAP_THRESHOLD, _HIGH)
            libc.mallopt(_M_TRIM_THRESHOLD, _HIGH)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(_M_MMAP_THRESHOLD, _RESTORE_MMAP)
                libc.mallopt(_M_TRIM_THRESHOLD, _RESTORE_TRIM)
                libc.malloc_trim(0)
