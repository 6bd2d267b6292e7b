"""Progress of a batch (``gansr upscale``, ``gansr eval``) for the user, on a terminal or not.

On a terminal it is a tqdm bar. When stderr is a pipe or a file (a script, a cluster job's log)
a bar would be a stream of carriage returns, so it is a plain line at most every ``interval``
seconds instead, e.g. ``upscale: 37% (3 of 8 images done), 1.2 s per image, ETA 6s: photo.jpg``.
A run shorter than ``interval`` prints no progress line at all; the caller's summary says enough.

Work may be counted in fractions: one large image advances the count tile by tile.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

__all__ = ["PLAIN_LINE_INTERVAL", "Progress", "format_duration"]

PLAIN_LINE_INTERVAL = 2.0
"""Default seconds between plain progress lines (when stderr is not a terminal)."""


def format_duration(seconds: float) -> str:
    """``4m12s``, ``1h03m``, ``9s``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class Progress:
    """Counts work done against ``total`` items (fractions allowed) for the user.

    Args:
        label: what is being done (``"upscale"``).
        total: how many items there are.
        unit: the items' name in the plural (``"images"``).
        enabled: False shows nothing.
        stream: where to write (default: stderr); a terminal gets a bar, anything else lines.
        interval: seconds between plain lines (default: :data:`PLAIN_LINE_INTERVAL`).
        clock: the time source (tests pass a fake one).
        fractional: counts move by fractions of an item (the bar shows one decimal).
    """

    def __init__(
        self,
        label: str,
        total: float,
        *,
        unit: str = "images",
        enabled: bool = True,
        stream: TextIO | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        fractional: bool = False,
    ) -> None:
        self.label = label
        self.total = float(total)
        self.unit = unit
        self.done = 0.0
        self.item = ""
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = enabled
        self._interval = PLAIN_LINE_INTERVAL if interval is None else interval
        self._clock = clock
        self._start = self._last_line = clock()
        self._bar: Any = None
        if enabled and _isatty(self._stream):
            from tqdm import tqdm

            # Counts move by fractions (tiles of an image): one decimal, not tqdm's 0.015625/1.
            count = f"{{n:.1f}}/{{total_fmt}} {unit}" if fractional else f"{{n_fmt}}/{{total_fmt}} {unit}"
            self._bar = tqdm(
                total=total,
                desc=label,
                unit=unit[:-1] if unit.endswith("s") else unit,
                file=self._stream,
                leave=False,
                dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| " + count + " [{elapsed}<{remaining}{postfix}]",
            )

    def set_item(self, name: str) -> None:
        """Name what is being worked on now (shown beside the count)."""
        self.item = name
        if self._bar is not None:
            self._bar.set_postfix_str(name, refresh=False)

    def update(self, amount: float = 1.0) -> None:
        """Count ``amount`` more items (may be a fraction) as done."""
        amount = min(amount, self.total - self.done)
        if amount <= 0:
            return
        self.done += amount
        if self._bar is not None:
            self._bar.update(amount)
        elif self._enabled and self._clock() - self._last_line >= self._interval:
            self._last_line = self._clock()
            print(self.line(), file=self._stream, flush=True)

    def line(self) -> str:
        """The plain progress line (see the module doc)."""
        elapsed = self._clock() - self._start
        percent = int(100 * self.done / self.total) if self.total else 100
        text = f"{self.label}: {percent}% ({int(self.done)} of {self.total:g} {self.unit} done)"
        if self.done > 0 and self.total:
            per_item = elapsed / self.done
            text += f", {per_item:.1f} s per {self.unit.rstrip('s')}"
            text += f", ETA {format_duration(per_item * (self.total - self.done))}"
        return text + (f": {self.item}" if self.item else "")

    @contextmanager
    def printing(self) -> Iterator[None]:
        """Print other lines (errors, notes) inside this without breaking the bar."""
        if self._bar is None:
            yield
            return
        from tqdm import tqdm

        with tqdm.external_write_mode(file=self._stream):
            yield

    def close(self) -> None:
        """Remove the bar (plain lines need no ending: the caller prints its summary)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
