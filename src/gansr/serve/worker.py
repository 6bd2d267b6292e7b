"""The bounded inference pool: N worker threads, a queue limit, and one cached Upscaler per model.

Admission happens before the upload is read: a request takes a :class:`Ticket` (or gets 503 at
once), so at most ``workers + queue`` uploads are held in memory and at most ``workers`` images
are being decoded, upscaled and encoded at any time. The ticket is released when the job ends in
its thread (not when the request's coroutine ends), so a client that disconnects mid-job cannot
free a slot that is still using a CPU.

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
from gansr.serve.limits import ACCEPTED_FORMATS, OUTPUT_FORMATS

if TYPE_CHECKING:
    from gansr.upscale.upscaler import Upscaler

__all__ = ["InferencePool", "JobResult", "Ticket", "upscale_bytes"]

logger = logging.getLogger("gansr.serve")
T = TypeVar("T")

RETRY_AFTER_MAX_S = 60


def _memory_trimmer() -> Callable[[], None]:
    """glibc's ``malloc_trim(0)``, or a no-op where the C library has none (macOS, Windows, musl)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


class Ticket:
    """A reserved slot in the pool; :meth:`release` is idempotent and thread-safe."""

    def __init__(self, pool: InferencePool) -> None:
        self._pool = pool
        self._released = False
        self._owned_by_job = False

    def release(self, *, by_job: bool = False) -> None:
        """Give the slot back. Once a job owns the ticket only the job's end releases it."""
        with self._pool._lock:
            if self._released or (self._owned_by_job and not by_job):
                return
            self._released = True
            self._pool._active -= 1


class InferencePool:
    """Runs blocking inference jobs in ``workers`` threads with at most ``queue`` waiting.

    Args:
        workers: threads running jobs at once.
        queue: jobs (or uploads on their way to becoming jobs) allowed to wait beyond those.
        device: torch device for the Upscalers.
    """

    def __init__(self, workers: int, queue: int, *, device: str = "auto") -> None:
        self.workers = workers
        self.capacity = workers + queue
        self.device = device
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gansr-serve")
        self._lock = threading.Lock()
        self._active = 0
        self._mean_seconds = 1.0  # running mean job time, for Retry-After
        self._upscalers: dict[str, Upscaler] = {}
        self._model_locks: dict[str, threading.Lock] = {}
        self._trim_memory = _memory_trimmer()

    @property
    def active(self) -> int:
        """Requests holding a slot (running, waiting for a thread, or still uploading)."""
        with self._lock:
            return self._active

    def admit(self) -> Ticket:
        """Reserve a slot for one request.

        Raises:
            ApiError: 503 with a ``Retry-After`` header when ``workers + queue`` slots are taken.
        """
        with self._lock:
            if self._active >= self.capacity:
                waves = self._active / self.workers
                retry = min(RETRY_AFTER_MAX_S, max(1, math.ceil(self._mean_seconds * waves)))
                raise ApiError(
                    503,
                    f"the server is busy ({self._active} requests in progress); retry in {retry} s",
                    headers={"Retry-After": str(retry)},
                )
            self._active += 1
        return Ticket(self)

    async def run(self, ticket: Ticket, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` in a worker thread; the job takes over ``ticket`` and releases it when done."""
        started = time.perf_counter()

        def job() -> T:
            try:
                return fn(*args)
            finally:
                elapsed = time.perf_counter() - started
                self._trim_memory()
                with self._lock:
                    self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * elapsed
                ticket.release(by_job=True)

        future: Future[T] = self._executor.submit(job)
        ticket._owned_by_job = True  # after submit: a refused job leaves the ticket to its request
        return await asyncio.wrap_future(future)

    def upscaler(self, entry: ModelEntry) -> Upscaler:
        """The shared :class:`~gansr.upscale.Upscaler` for ``entry``, built on first use (in a worker)."""
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


@dataclass(frozen=True)
class JobResult:
    """An encoded result and what the response headers report about it."""

    body: bytes
    media_type: str
    input_size: tuple[int, int]  # (width, height)
    output_size: tuple[int, int]  # (width, height)
    seconds: float


def upscale_bytes(
    pool: InferencePool, entry: ModelEntry, data: bytes, *, outscale: float | None, fmt: str, max_pixels: int
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
    result = pool.upscaler(entry).upscale_loaded(loaded, outscale=outscale)
    body = encode(result, fmt)
    seconds = time.perf_counter() - started
    return JobResult(
        body=body,
        media_type=OUTPUT_FORMATS[fmt].media_type,
        input_size=(loaded.width, loaded.height),
        output_size=(result.width, result.height),
        seconds=seconds,
    )
