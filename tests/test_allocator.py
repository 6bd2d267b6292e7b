"""gansr.engine.allocator: large freed blocks are reused inside the scope and returned after it.

Page faults and RSS depend on what the heap already holds, so the measurements run in a fresh
interpreter (one, shared by the tests): inside pytest, free chunks left by earlier tests can
serve some blocks even without the scope and make the baseline flaky.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from gansr.engine.allocator import _glibc

pytestmark = pytest.mark.skipif(
    _glibc() is None,
    reason="glibc malloc tuning applies on Linux/glibc only (and not with GANSR_MALLOC_TUNING=0)",
)

BLOCK = 64 * 2**20  # above glibc's largest adaptive mmap threshold (32 MiB)

_PROGRAM = textwrap.dedent(
    """
    import json, os, resource, sys
    import torch
    from gansr.engine.allocator import reuse_large_blocks

    BLOCK = int(sys.argv[1])

    def faults_of_layers(steps=6, size=BLOCK):
        # A chain of layer-like ops on size-byte tensors: each allocates its output and frees
        # its input, as a network's forward pass does.
        x = torch.ones(size // 4)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        y = x
        for _ in range(steps):
            y = y + 1.0
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    r = {"pages": BLOCK // os.sysconf("SC_PAGE_SIZE")}
    r["outside"] = faults_of_layers()
    with reuse_large_blocks():
        faults_of_layers()  # the first passes fault their blocks in
        faults_of_layers()
        r["inside"] = faults_of_layers()
    # Bigger blocks than any chunk the scope left in the heap: with the thresholds back at glibc's
    # defaults they are fresh mmaps again (still in the heap, they would be reused).
    r["after"] = faults_of_layers(size=3 * BLOCK)
    with reuse_large_blocks():
        with reuse_large_blocks():
            faults_of_layers()
            faults_of_layers()
        r["nested_after_inner_exit"] = faults_of_layers()
    with reuse_large_blocks():
        t = torch.empty(BLOCK)  # 4 * BLOCK bytes
        t.fill_(1.0)
        del t  # kept in the heap for reuse ...
        r["held"] = rss()
    r["released"] = rss()  # ... and trimmed on exit
    print(json.dumps(r))
    """
)


@pytest.fixture(scope="module")
def measured() -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM, str(BLOCK)], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_freed_blocks_are_reused_inside_the_scope_not_outside(measured: dict[str, Any]) -> None:
    pages = measured["pages"]
    assert measured["outside"] > 5 * pages  # fresh pages for every layer (~16k faults each with 4 KiB pages)
    # The same memory again and again (a block whose slot is fragmented may still be new).
    assert measured["inside"] <= 2 * pages
    assert measured["after"] > 5 * 3 * pages  # the default behaviour is back


def test_nested_scopes_keep_reusing_until_the_outermost_exits(measured: dict[str, Any]) -> None:
    assert measured["nested_after_inner_exit"] <= 2 * measured["pages"]


def test_memory_goes_back_to_the_os_when_the_scope_exits(measured: dict[str, Any]) -> None:
    assert measured["held"] - measured["released"] > 3 * BLOCK
