"""gansr.allocator: large freed blocks are reused inside the scope and returned after it."""

from __future__ import annotations

import os
import resource

import pytest
import torch

from gansr.allocator import _glibc, reuse_large_blocks

pytestmark = pytest.mark.skipif(
    _glibc() is None,
    reason="glibc malloc tuning applies on Linux/glibc only (and not with GANSR_MALLOC_TUNING=0)",
)

BLOCK = 64 * 2**20  # above glibc's largest adaptive mmap threshold (32 MiB)


def _faults_of_layers(steps: int = 6) -> int:
    """Minor page faults of a chain of ``steps`` layer-like ops on BLOCK-sized tensors: each step
    allocates its output and frees its input, as a network's forward pass does."""
    x = torch.ones(BLOCK // 4)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    y = x
    for _ in range(steps):
        y = y + 1.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_freed_blocks_are_reused_inside_the_scope_not_outside() -> None:
    pages = BLOCK // os.sysconf("SC_PAGE_SIZE")
    outside = _faults_of_layers()
    with reuse_large_blocks():
        _faults_of_layers()  # the first passes fault their blocks in
        _faults_of_layers()
        inside = _faults_of_layers()
    after = _faults_of_layers()
    assert outside > 5 * pages  # fresh pages for every layer (with 4 KiB pages: ~16k faults each)
    # The same memory again and again (a block whose slot is fragmented may still be new).
    assert inside <= 2 * pages
    assert after > 5 * pages  # the default behaviour is back


def test_nested_scopes_keep_reusing_until_the_outermost_exits() -> None:
    pages = BLOCK // os.sysconf("SC_PAGE_SIZE")
    with reuse_large_blocks():
        with reuse_large_blocks():
            _faults_of_layers()
            _faults_of_layers()
        assert _faults_of_layers() <= 2 * pages


def test_memory_goes_back_to_the_os_when_the_scope_exits() -> None:
    with reuse_large_blocks():
        t = torch.empty(BLOCK)  # 4 * BLOCK bytes
        t.fill_(1.0)
        del t  # kept in the heap for reuse ...
        held = _rss_bytes()
    released = _rss_bytes()  # ... and trimmed on exit
    assert held - released > 3 * BLOCK
