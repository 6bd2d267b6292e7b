"""Progress of a long video job: frames done of the total, frames per second and time left.

On a terminal it is a tqdm bar (as ``gansr upscale`` shows for images); when stderr is a pipe or
a file (a cluster job's log) it is a plain line every couple of seconds, which logs keep
readable: ``clip.mp4: frames 120/900 (13%) 3.1 fps ETA 4m12s``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from gansr.upscale.progress import format_duration

__all__ = ["FrameProgress", "format_duration"]


class FrameProgress:
    """Counts upscaled frames against ``total`` (``None``: unknown) for the user.

    Args:
        label: what is being done (the source's name).
        enabled: False shows nothing.
        stream: where to write (stderr); a TTY gets a bar, anything else plain lines.
        interval: seconds between plain lines.
    """

    def __init__(
        self,
        label: str,
        total: int | None,
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self._stream = stream or sys.stderr
        self._interval = interval
        self._clock = clock
        self._start = clock()
        self._last_line = self._start
        self._printed = 0  # the count the last plain line showed
        self._bar = None
        self._enabled = enabled
        if enabled and _isatty(self._stream):
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, desc=label, unit="frame", file=self._stream, leave=False, dynamic_ncols=True
            )

    def update(self, frames: int = 1) -> None:
        self.done += frames
        if self._bar is not None:
            self._bar.update(frames)
        elif self._enabled and self._clock() - self._last_line >= self._interval:
            self._print()

    def line(self) -> str:
        """``LABEL: frames D/T (P%) R fps ETA E`` (total, percent and ETA when the total is known)."""
        elapsed = max(self._clock() - self._start, 1e-9)
        rate = self.done / elapsed
        if self.total:
            left = max(self.total - self.done, 0)
            eta = format_duration(left / rate) if rate > 0 else "?"
            head = f"frames {self.done}/{self.total} ({100 * self.done // self.total}%)"
            return f"{self.label}: {head} {rate:.2f} fps ETA {eta}"
        return f"{self.label}: frames {self.done} {rate:.2f} fps"

    def write(self, message: str) -> None:
        """Print a line without breaking the bar."""
        if self._bar is not None:
            self._bar.write(message, file=self._stream)
        else:
            print(message, file=self._stream, flush=True)

    def close(self) -> None:
        """End the bar; in plain-line mode print the final count (for logs)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._enabled and self.done != self._printed:
            self._print()
        self._enabled = False

    def _print(self) -> None:
        self._last_line = self._clock()
        self._printed = self.done
        print(self.line(), file=self._stream, flush=True)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
