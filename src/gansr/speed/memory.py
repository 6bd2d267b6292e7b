"""Peak memory of a block of code: resident set size on the CPU, allocator peak on CUDA.

On Linux the kernel keeps the process's RSS high-water mark (``VmHWM`` in ``/proc/self/status``)
and resets it to the current RSS when ``5`` is written to ``/proc/self/clear_refs``, so the peak
of a block is exact and free to measure. Where that reset is not allowed a thread samples the RSS
every millisecond; without ``/proc`` (macOS) only the process's lifetime peak (``ru_maxrss``) is
known, and that is what is reported.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import TracebackType

import torch

__all__ = ["MemoryPeak", "current_rss", "process_peak_rss"]

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def _status_kib(field: str) -> int | None:
    try:
        with open(_STATUS) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def current_rss() -> int:
    """This process's resident set size in bytes (0 when it cannot be read)."""
    kib = _status_kib("VmRSS")
    return kib * 1024 if kib is not None else 0


def process_peak_rss() -> int:
    """The peak RSS of this process so far, in bytes (``VmHWM``, else ``ru_maxrss``)."""
    kib = _status_kib("VmHWM")
    if kib is not None:
        return kib * 1024
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)
    except (ImportError, OSError):
        return 0


def _reset_hwm() -> bool:
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


@dataclass
class MemoryPeak:
    """Context manager measuring the peak memory of its block.

    After the block: ``baseline`` (RSS when it started), ``peak`` (highest RSS during it; on CUDA
    also ``device_peak``, the allocator's peak of ``device``) and ``increase`` (``peak - baseline``),
    all in bytes. ``exact`` says whether the kernel's high-water mark was used rather than sampling.
    """

    device: torch.device | None = None
    baseline: int = 0
    peak: int = 0
    device_peak: int | None = None
    exact: bool = False

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def increase(self) -> int:
        return max(0, self.peak - self.baseline)

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, current_rss())

    def __enter__(self) -> MemoryPeak:
        self.baseline = current_rss()
        self.peak = self.baseline
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self.exact = _reset_hwm() and _status_kib("VmHWM") is not None
        if not self.exact:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.device_peak = int(torch.cuda.max_memory_allocated(self.device))
        if self.exact:
            self.peak = max(self.peak, process_peak_rss())
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, current_rss())
        if self.baseline == 0:  # no /proc: the process's lifetime peak is all there is
            self.peak = process_peak_rss()
