"""The inference pool (N worker threads, one cached Upscaler per model) and what a job costs.

A job reaches the pool only once its memory is reserved (:mod:`gansr.serve.admission`); the
pool then bounds the *wait for a thread*: a job that has not started by its deadline is taken
off the queue and its request gets 503, so no admitted request waits without bound behind
others. The job's reservation is released when the job ends in its thread (not when the
request's coroutine ends), so a client that disconnects mid-job cannot free memory still in use.

Each finished job hands freed memory back to the operating system (glibc ``malloc_trim``): the
decoded and upscaled images are large, short-lived buffers allocated in the worker threads' malloc
arenas, which glibc otherwise keeps, so a burst of requests would leave the server's resident
memory at its peak for good.

Upscalers are built once per model and shared by the threads: inference runs under
``torch.inference_mode`` and reads the weights only. Building one is serialized per model, and
its memory probe (lazily computed in the Upscaler) is run right away, so no two threads probe
the same model at once.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from gansr.serve.catalog import ModelEntry
from gansr.serve.codec import encode
from gansr.serve.errors import ApiError
from gansr.serve.limits import ACCEPTED_FORMATS, OUTPUT_FORMATS, ImageHeader

if TYPE_CHECKING:
    from gansr.upscale.upscaler import Upscaler

__all__ = ["InferencePool", "JobResult", "job_cost", "upscale_bytes"]

logger = logging.getLogger("gansr.serve")
T = TypeVar("T")

RETRY_AFTER_MAX_S = 60

# Bytes per pixel and channel that decoding, upscaling and encoding hold besides the model's own
# forward pass, measured as peak RSS growth per job (bicubic, so no forward pass): 8-bit PNG and
# JPEG results need 12-14 (float32 planes, the clamped copy, the uint8 array, Pillow's image, the
# file), 16-bit PNG 47-51 (gansr's own PNG encoder filters in int16). Rounded up. WebP's encoder
# adds its own buffers per pixel, whatever the channels (measured 23 for gray, 76 for RGBA).
SAMPLE_BYTES_8 = 16
SAMPLE_BYTES_16 = 56
WEBP_PIXEL_BYTES = 16
# The heap reuse of gansr.engine.allocator can take a forward pass up to ~1.5x the engine's estimate
# (see gansr.engine.device.memory_budget).
PASS_FACTOR = 1.5
# Per job: Python objects, the response, thread stacks touched; small next to any image.
JOB_OVERHEAD_BYTES = 4_000_000
# Per LR pixel when a model's engine gives no estimate (the largest probed unfused models need ~16 KB).
FALLBACK_PASS_BYTES_PER_PIXEL = 20_000


def _memory_trimmer() -> Callable[[], None]:
    """glibc's ``malloc_trim(0)``, or a no-op where the C library has none (macOS, Windows, musl)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[[], None]) -> None:
    """Run ``fn`` on ``loop`` from any thread; after shutdown (loop closed) there is nothing to do."""
    try:
        loop.call_soon_threadsafe(fn)
    except RuntimeError:
        pass


class InferencePool:
    """Runs blocking inference jobs in ``workers`` threads.

    Args:
        workers: threads running jobs at once.
        device: torch device for the Upscalers.
    """

    def __init__(self, workers: int, *, device: str = "auto") -> None:
        self.workers = workers
        self.device = device
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gansr-serve")
        self._lock = threading.Lock()  # guards the counters below, updated from worker threads
        self._submitted = 0  # jobs queued or running
        self._mean_seconds = 1.0  # running mean job time, for Retry-After
        self._upscalers: dict[str, Upscaler] = {}
        self._model_locks: dict[str, threading.Lock] = {}
        self._trim_memory = _memory_trimmer()

    @property
    def jobs(self) -> int:
        """Jobs queued for a thread or running."""
        with self._lock:
            return self._submitted

    def retry_after(self, waiting: int = 0) -> int:
        """Seconds until about ``waiting`` more requests could have been served (1 to 60)."""
        with self._lock:
            waves = (self._submitted + waiting + 1) / self.workers
            return min(RETRY_AFTER_MAX_S, max(1, math.ceil(self._mean_seconds * waves)))

    async def run(self, fn: Callable[[], T], *, release: Callable[[], None], start_by: float) -> T:
        """Run ``fn()`` in a worker thread and return its result.

        Args:
            fn: the blocking job.
            release: called on the event loop when the job is over (done, failed or dropped).
            start_by: loop time by which a thread must have picked the job up.

        Raises:
            ApiError: 503 with ``Retry-After`` when no thread was free by ``start_by``.
        """
        loop = asyncio.get_running_loop()

        def job() -> T:
            started = time.perf_counter()
            try:
                return fn()
            finally:
                elapsed = time.perf_counter() - started
                self._trim_memory()
                with self._lock:
                    self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * elapsed

        def done(_future: Future[T]) -> None:
            with self._lock:
                self._submitted -= 1
            _call_soon(loop, release)

        try:
            future = self._executor.submit(job)
        except RuntimeError:  # shutting down
            release()
            raise ApiError(503, "the server is shutting down", headers={"Retry-After": "5"}) from None
        with self._lock:
            self._submitted += 1
        future.add_done_callback(done)
        result = asyncio.wrap_future(future)
        finished, _ = await asyncio.wait({result}, timeout=max(0.0, start_by - loop.time()))
        if not finished and future.cancel():  # still queued: drop it (cancel fails once it runs)
            retry = self.retry_after()
            raise ApiError(
                503,
                f"the server is busy (no worker came free in time); retry in {retry} s",
                headers={"Retry-After": str(retry)},
            )
        return await result

    async def load(self, entry: ModelEntry) -> Upscaler:
        """:meth:`upscaler`, from the event loop: the cached one at once, else built in a thread."""
        cached = self._upscalers.get(entry.name)
        return cached if cached is not None else await asyncio.to_thread(self.upscaler, entry)

    def upscaler(self, entry: ModelEntry) -> Upscaler:
        """The shared :class:`~gansr.upscale.Upscaler` for ``entry``, built on first use."""
        with self._lock:
            cached = self._upscalers.get(entry.name)
            if cached is not None:
                return cached
            model_lock = self._model_locks.setdefault(entry.name, threading.Lock())
        with model_lock:
            with self._lock:
                cached = self._upscalers.get(entry.name)
            if cached is not None:
                return cached
            from gansr.upscale import Upscaler

            upscaler = Upscaler(entry.source, device=self.device)
            upscaler.bytes_per_pixel()  # probe now, while no other thread runs this model
            logger.info("loaded model %s: %r", entry.name, upscaler)
            with self._lock:
                self._upscalers[entry.name] = upscaler
            return upscaler

    def shutdown(self) -> None:
        """Wait for running jobs, then stop the threads and drop the cached models."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            self._upscalers.clear()


# --------------------------------------------------------------------------- what a job costs


def _is_resize(upscaler: Upscaler) -> bool:
    """Whether the model is the weightless bicubic resize (no forward pass, any channel count)."""
    return getattr(upscaler.model, "arch", None) == "bicubic"


def _pass_bytes(upscaler: Upscaler, height: int, width: int, output_pixels: int) -> float:
    """Peak memory of the forward passes for a ``height x width`` input, as the engine runs them:
    one pass on the whole image, or one tile at a time."""
    if _is_resize(upscaler):
        return 0.0  # its planes are counted with the images
    if upscaler.device.type != "cpu":
        return 0.0  # runs in device memory, which the engine's plan keeps within the device's
    try:
        batch = 1
        if upscaler.arbitrary_scale:  # one pass straight to the final size, never tiled
            grow = max(1.0, output_pixels / (height * width * upscaler.scale**2))
        else:
            grow = 1.0
            tile_plan = upscaler.plan(height, width)
            if tile_plan.tile:
                side = tile_plan.tile + 2 * tile_plan.overlap
                height, width, batch = min(height, side), min(width, side), tile_plan.batch_size
        # The engine's own estimate, including the part that does not grow with the input (a
        # fused model's tail tiles); the Upscaler exposes only the per-pixel part.
        engine = getattr(upscaler, "_fast", None)
        if engine is not None and hasattr(engine, "memory_bytes"):
            return float(engine.memory_bytes(height, width)) * batch * grow
        return upscaler.bytes_per_pixel() * height * width * batch * grow
    except Exception:  # an engine without estimates (e.g. an exported graph): assume a heavy model
        logger.debug("no memory estimate for %r", upscaler, exc_info=True)
        return float(FALLBACK_PASS_BYTES_PER_PIXEL * height * width)


def job_cost(
    upscaler: Upscaler, header: ImageHeader, output_hw: tuple[int, int], fmt: str, upload_bytes: int
) -> int:
    """Estimated peak memory of :func:`upscale_bytes` on an image, in bytes.

    The upload itself, the decoded input and the result (per pixel and channel, 16-bit PNGs
    costing three times more), and the model's forward pass (:data:`PASS_FACTOR` times the
    engine's estimate for the whole image or one tile, as it will be run).
    """
    out_h, out_w = output_hw
    # A model runs on its own channel count (gray images are expanded for colour models).
    colour = header.channels if _is_resize(upscaler) else max(header.channels, upscaler.in_channels)
    alpha = int(header.alpha)
    sample_in = SAMPLE_BYTES_16 if header.bits > 8 else SAMPLE_BYTES_8
    sample_out = SAMPLE_BYTES_16 if header.bits > 8 and fmt == "png" else SAMPLE_BYTES_8
    out_pixel = (colour + alpha) * sample_out + (WEBP_PIXEL_BYTES if fmt == "webp" else 0)
    images = (colour + alpha) * header.width * header.height * sample_in + out_h * out_w * out_pixel
    forward = PASS_FACTOR * _pass_bytes(upscaler, header.height, header.width, out_h * out_w)
    return int(upload_bytes + images + forward + JOB_OVERHEAD_BYTES)


@dataclass(frozen=True)
class JobResult:
    """An encoded result and what the response headers report about it."""

    body: bytes
    media_type: str
    input_size: tuple[int, int]  # (width, height)
    output_size: tuple[int, int]  # (width, height)
    seconds: float


def upscale_bytes(
    upscaler: Upscaler, data: bytes, *, outscale: float | None, fmt: str, max_pixels: int
) -> JobResult:
    """Decode, upscale and encode one uploaded image (blocking: runs in a worker thread).

    Raises:
        ApiError: 422 when the image cannot be decoded (corrupt, truncated), 415 when the decoded
            format is not allowed.
    """
    from gansr.data.io import read_image
    from gansr.errors import DataError

    started = time.perf_counter()
    try:
        loaded = read_image(data, max_pixels=max_pixels)
    except DataError as exc:
        reason = str(exc).removeprefix("<bytes>: ")
        raise ApiError(422, f"cannot decode the image: {reason}") from None
    if loaded.format not in ACCEPTED_FORMATS:  # sniffed before; re-checked on what was decoded
        raise ApiError(415, f"unsupported image type {loaded.format}")
    result = upscaler.upscale_loaded(loaded, outscale=outscale)
    body = encode(result, fmt)
    seconds = time.perf_counter() - started
    return JobResult(
        body=body,
        media_type=OUTPUT_FORMATS[fmt].media_type,
        input_size=(loaded.width, loaded.height),
        output_size=(result.width, result.height),
        seconds=seconds,
    )
