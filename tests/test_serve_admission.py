"""Admission by cost (``gansr serve``): the memory budget, the bounded wait for a worker, job costs.

The budget is driven directly on an event loop (``asyncio.run``), so the waiting line's order,
its bounds and its accounting are checked without a server; the cost estimates are checked
against each other and against what a job is measured to hold.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'gansr[serve]')")

from gansr.serve.admission import MemoryBudget  # noqa: E402
from gansr.serve.errors import ApiError  # noqa: E402
from gansr.serve.limits import ImageHeader, sniff_image  # noqa: E402
from gansr.serve.worker import InferencePool, job_cost  # noqa: E402

MB = 1_000_000


def budget_of(mb: int, *, waiting: int = 4) -> MemoryBudget:
    return MemoryBudget(mb * MB, max_waiting=waiting, retry_after=lambda ahead: 2 + ahead)


def deadline_in(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


# --------------------------------------------------------------------------- the budget


def test_reservations_are_granted_while_they_fit_and_given_back_once():
    async def main() -> None:
        budget = budget_of(100)
        a, b = budget.reservation(), budget.reservation()
        await a.reserve(60 * MB, deadline=deadline_in(1))
        await b.reserve(40 * MB, deadline=deadline_in(1))
        assert budget.used == 100 * MB and budget.open == 2
        a.release()
        a.release()  # idempotent
        assert budget.used == 40 * MB and budget.open == 1
        b.release()
        assert budget.used == 0 and budget.open == 0 and budget.waiting == 0

    asyncio.run(main())


def test_received_bytes_are_charged_and_refused_with_503_when_the_budget_is_full():
    async def main() -> None:
        budget = budget_of(10)
        full = budget.reservation()
        await full.reserve(9 * MB, deadline=deadline_in(1))
        uploading = budget.reservation()
        uploading.grow(MB)  # exactly fills the budget
        with pytest.raises(ApiError) as err:
            uploading.grow(1)
        assert err.value.status == 503 and "busy" in err.value.detail
        assert err.value.headers["Retry-After"] == "2"
        uploading.release()
        full.release()
        assert budget.used == 0

    asyncio.run(main())


def test_a_cost_over_the_whole_budget_is_413_at_once():
    async def main() -> None:
        budget = budget_of(10)
        r = budget.reservation()
        started = time.monotonic()
        with pytest.raises(ApiError) as err:
            await r.reserve(11 * MB, deadline=deadline_in(5))
        assert err.value.status == 413 and "memory" in err.value.detail
        assert time.monotonic() - started < 1  # no waiting for what can never fit
        r.release()
        assert budget.used == 0 and budget.open == 0

    asyncio.run(main())


def test_a_waiter_is_admitted_when_memory_frees_up():
    async def main() -> None:
        budget = budget_of(100)
        big = budget.reservation()
        await big.reserve(80 * MB, deadline=deadline_in(1))
        small = budget.reservation()
        small.grow(MB)  # its upload
        task = asyncio.create_task(small.reserve(30 * MB, deadline=deadline_in(5)))
        await asyncio.sleep(0.05)
        assert budget.waiting == 1 and not task.done()
        big.release()
        await asyncio.wait_for(task, 1)
        assert small.held == 30 * MB and budget.used == 30 * MB and budget.waiting == 0
        small.release()
        assert budget.used == 0

    asyncio.run(main())


def test_cheap_requests_pass_an_expensive_waiter_until_it_has_waited_half_its_bound():
    async def main() -> None:
        budget = budget_of(100)
        running = budget.reservation()
        await running.reserve(60 * MB, deadline=deadline_in(1))
        big = budget.reservation()
        big_task = asyncio.create_task(big.reserve(90 * MB, deadline=deadline_in(0.6)))
        await asyncio.sleep(0.01)
        assert budget.waiting == 1
        cheap = budget.reservation()
        await cheap.reserve(10 * MB, deadline=deadline_in(1))  # fits: passes the big waiter
        cheap.release()
        await asyncio.sleep(0.35)  # the big waiter has used over half of its 0.6 s
        late = budget.reservation()
        late_task = asyncio.create_task(late.reserve(20 * MB, deadline=deadline_in(2)))
        await asyncio.sleep(0.01)
        assert not late_task.done() and budget.waiting == 2  # 40 MB are free, yet it may not pass
        running.release()  # 100 MB free: the big waiter first, and 20 MB do not fit beside it
        await asyncio.wait_for(big_task, 1)
        assert big.held == 90 * MB and not late_task.done()
        big.release()
        await asyncio.wait_for(late_task, 1)
        late.release()
        assert budget.used == 0 and budget.open == 0

    asyncio.run(main())


def test_a_full_line_and_a_passed_deadline_are_503_with_retry_after():
    async def main() -> None:
        budget = budget_of(10, waiting=1)
        hog = budget.reservation()
        await hog.reserve(10 * MB, deadline=deadline_in(1))
        first = budget.reservation()
        first_task = asyncio.create_task(first.reserve(MB, deadline=deadline_in(0.3)))
        await asyncio.sleep(0.01)
        second = budget.reservation()
        with pytest.raises(ApiError) as err:  # the line (one place) is full
            await second.reserve(MB, deadline=deadline_in(5))
        assert err.value.status == 503 and err.value.headers["Retry-After"] == "3"  # one ahead
        second.release()
        with pytest.raises(ApiError) as err:  # no memory came free in time
            await first_task
        assert err.value.status == 503 and "busy" in err.value.detail
        first.release()
        hog.release()
        assert budget.used == 0 and budget.waiting == 0 and budget.open == 0

    asyncio.run(main())


def test_no_waiting_allowed_means_503_at_once():
    async def main() -> None:
        budget = budget_of(10, waiting=0)
        hog = budget.reservation()
        await hog.reserve(10 * MB, deadline=deadline_in(1))
        r = budget.reservation()
        with pytest.raises(ApiError) as err:
            await r.reserve(MB, deadline=deadline_in(5))
        assert err.value.status == 503
        r.release()
        hog.release()

    asyncio.run(main())


def test_a_cancelled_waiter_leaves_nothing_behind():
    async def main() -> None:
        budget = budget_of(10)
        hog = budget.reservation()
        await hog.reserve(10 * MB, deadline=deadline_in(1))
        r = budget.reservation()
        task = asyncio.create_task(r.reserve(MB, deadline=deadline_in(5)))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        r.release()
        hog.release()
        assert budget.used == 0 and budget.waiting == 0 and budget.open == 0

    asyncio.run(main())


def test_hand_over_moves_the_release_to_the_job():
    async def main() -> None:
        budget = budget_of(10)
        r = budget.reservation()
        await r.reserve(5 * MB, deadline=deadline_in(1))
        release = r.hand_over()
        r.release()  # the request's own release no longer frees what the job uses
        assert budget.used == 5 * MB
        release()
        release()
        assert budget.used == 0 and budget.open == 0

    asyncio.run(main())


# --------------------------------------------------------------------------- the pool


def test_a_job_that_cannot_start_in_time_is_dropped_with_503_and_released():
    async def main() -> None:
        pool = InferencePool(1, device="cpu")
        gate = threading.Event()
        released: list[str] = []
        try:
            deadline = deadline_in(30)
            running = asyncio.create_task(
                pool.run(gate.wait, release=lambda: released.append("first"), start_by=deadline)
            )
            await asyncio.sleep(0.05)
            with pytest.raises(ApiError) as err:  # the only thread is busy past the deadline
                await pool.run(
                    lambda: None, release=lambda: released.append("second"), start_by=deadline_in(0.2)
                )
            assert err.value.status == 503 and int(err.value.headers["Retry-After"]) >= 1
            await asyncio.sleep(0.05)
            assert released == ["second"]  # dropped from the queue and released at once
            gate.set()
            assert await running is True
            await asyncio.sleep(0.05)
            assert released == ["second", "first"] and pool.jobs == 0
        finally:
            gate.set()
            pool.shutdown()

    asyncio.run(main())


def test_a_job_already_running_at_its_deadline_is_not_interrupted():
    async def main() -> None:
        pool = InferencePool(1, device="cpu")
        try:
            result = await pool.run(
                lambda: time.sleep(0.3) or 7, release=lambda: None, start_by=deadline_in(0.1)
            )
            assert result == 7
        finally:
            pool.shutdown()

    asyncio.run(main())


# --------------------------------------------------------------------------- costs


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bicubic():
    from gansr.serve.catalog import build_catalog

    pool = InferencePool(1, device="cpu")
    entry = next(e for e in build_catalog() if e.name == "bicubic")
    yield pool.upscaler(entry)
    pool.shutdown()


def test_the_header_gives_bands_and_depth():
    assert sniff_image(png(8, 6), max_pixels=100) == ImageHeader("PNG", 8, 6, 3, False, 8)
    assert sniff_image(png(8, 6, "L"), max_pixels=100) == ImageHeader("PNG", 8, 6, 1, False, 8)
    assert sniff_image(png(8, 6, "RGBA"), max_pixels=100) == ImageHeader("PNG", 8, 6, 3, True, 8)
    assert sniff_image(png(8, 6, "I;16"), max_pixels=100).bits == 16


def test_costs_follow_pixels_channels_and_depth(bicubic):
    rgb = ImageHeader("PNG", 100, 100, 3, False, 8)
    small = job_cost(bicubic, rgb, (400, 400), "png", 1000)
    large = job_cost(bicubic, ImageHeader("PNG", 1000, 1000, 3, False, 8), (4000, 4000), "png", 1000)
    assert large > 50 * small  # ~100x the pixels, plus a fixed part per job
    gray = job_cost(bicubic, ImageHeader("PNG", 100, 100, 1, False, 8), (400, 400), "png", 1000)
    rgba = job_cost(bicubic, ImageHeader("PNG", 100, 100, 3, True, 8), (400, 400), "png", 1000)
    deep = job_cost(bicubic, ImageHeader("PNG", 100, 100, 3, False, 16), (400, 400), "png", 1000)
    deep_jpeg = job_cost(bicubic, ImageHeader("PNG", 100, 100, 3, False, 16), (400, 400), "jpeg", 1000)
    assert gray < small < rgba and small < deep_jpeg < deep


def test_a_model_costs_its_forward_pass_and_tiles_bound_it():
    from gansr.upscale import Upscaler

    model = Upscaler("srresnet-x4", device="cpu")
    bicubic_like = ImageHeader("PNG", 64, 48, 3, False, 8)
    with_model = job_cost(model, bicubic_like, (192, 256), "png", 1000)
    assert with_model > 1.5 * model.bytes_per_pixel() * 64 * 48  # the pass is counted
    # A huge input is tiled: its pass costs one tile, so the cost grows with the images only.
    huge = ImageHeader("PNG", 4000, 4000, 3, False, 8)
    tile_plan = model.plan(4000, 4000)
    assert tile_plan.tile > 0
    images = 3 * 16 * (4000 * 4000 + 16000 * 16000)
    assert job_cost(model, huge, (16000, 16000), "jpeg", 1000) < images + 3 * (3 << 29)


MEASURE = """
import ctypes, io, re, sys
from pathlib import Path
import numpy as np
from PIL import Image
from gansr.serve.catalog import build_catalog
from gansr.serve.limits import sniff_image
from gansr.serve.worker import InferencePool, job_cost, upscale_bytes

def rss(key):
    return int(re.search(key + r":\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024

name, side, mode, fmt = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
entry = next(e for e in build_catalog() if e.name == name)
pool = InferencePool(1, device="cpu")
up = pool.upscaler(entry)
channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
noise = np.random.default_rng(0).integers(0, 256, (side, side, channels), dtype=np.uint8)
buffer = io.BytesIO()
Image.fromarray(noise[..., 0] if channels == 1 else noise, mode).save(buffer, "PNG", compress_level=1)
data = buffer.getvalue()
small = io.BytesIO()
Image.fromarray(noise[:16, :16, 0] if channels == 1 else noise[:16, :16], mode).save(small, "PNG")
upscale_bytes(up, small.getvalue(), outscale=None, fmt=fmt, max_pixels=10**9)  # warm up
ctypes.CDLL(None).malloc_trim(0)
base = rss("VmRSS")
Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to now
result = upscale_bytes(up, data, outscale=None, fmt=fmt, max_pixels=10**9)
header = sniff_image(data, max_pixels=10**9)
cost = job_cost(up, header, result.output_size[::-1], fmt, len(data))
print(rss("VmHWM") - base, cost)
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize(
    ("model", "side", "mode", "fmt"),
    [("bicubic", 400, "RGB", "png"), ("bicubic", 400, "RGBA", "webp"), ("srresnet-x4", 160, "L", "jpeg")],
)
def test_the_estimate_covers_the_measured_peak(model, side, mode, fmt):
    """What a job really holds (peak RSS growth in a fresh process) stays within its estimated cost."""
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, model, str(side), mode, fmt],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert out.returncode == 0, out.stderr
    measured, cost = (int(v) for v in re.findall(r"-?\d+", out.stdout.strip().splitlines()[-1]))
    print(
        f"\n{model} {side}x{side} {mode} -> {fmt}: peak {measured / MB:.0f} MB, estimate {cost / MB:.0f} MB"
    )
    assert 0 < measured <= cost
    assert cost < 4 * max(measured, 8 * MB)  # an estimate, not a wild over-reservation
