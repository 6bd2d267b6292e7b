"""Argument types shared by the sub-commands: one meaning of ``--size`` everywhere.

A size on the command line is ``WIDTHxHEIGHT`` (ImageMagick's and ffmpeg's order, and the order
image viewers print), or a bare ``N`` for ``NxN``. The parsers return :class:`Size`, whose
:attr:`Size.hw` gives the ``(height, width)`` order that tensors and the library use.
"""

from __future__ import annotations

import argparse
import re
from typing import NamedTuple

_SIZE = re.compile(r"\s*(?:(\d+)|(\d*)\s*[xX]\s*(\d*))\s*")


class Size(NamedTuple):
    """A size in pixels as the user writes it: width first."""

    width: int
    height: int

    @property
    def hw(self) -> tuple[int, int]:
        """``(height, width)``: the order of tensor shapes and of gansr's library functions."""
        return self.height, self.width

    def __str__(self) -> str:
        return f"{self.width or ''}x{self.height or ''}"


def _parse(text: str, *, open_side: bool) -> Size:
    match = _SIZE.fullmatch(text)
    size = Size(0, 0)
    if match is not None and match[1] is not None:
        size = Size(int(match[1]), int(match[1]))
    elif match is not None:
        size = Size(int(match[2] or 0), int(match[3] or 0))  # 0: a side left out
    if min(size) > 0 or (open_side and max(size) > 0):
        return size
    if open_side:
        raise argparse.ArgumentTypeError(f"must be WxH, N, Wx or xH (e.g. 1920x1080, 1920x), got {text!r}")
    raise argparse.ArgumentTypeError(f"must be WxH or N with positive sides (e.g. 64x48), got {text!r}")


def parse_size(text: str) -> Size:
    """``"64x48"`` -> ``Size(width=64, height=48)``; ``"64"`` -> ``Size(64, 64)``.

    An argparse ``type=``: bad text raises :class:`argparse.ArgumentTypeError`, which argparse
    reports as ``argument --size: must be WxH or N ...`` with exit status 2.
    """
    return _parse(text, open_side=False)


def parse_output_size(text: str) -> Size:
    """:func:`parse_size`, where one side may be left out to keep the aspect ratio: ``"1920x"``
    -> ``Size(1920, 0)``, ``"x1080"`` -> ``Size(0, 1080)`` (0 marks the side to derive)."""
    return _parse(text, open_side=True)


def parse_sizes(text: str) -> tuple[Size, ...]:
    """A comma-separated list of :func:`parse_size` sizes: ``"256,512x384"``."""
    sizes = tuple(parse_size(part) for part in text.split(",") if part.strip())
    if not sizes:
        raise argparse.ArgumentTypeError(f"must be sizes WxH or N separated by commas, got {text!r}")
    return sizes


def non_negative_int(text: str) -> int:
    """An integer >= 0 (argparse ``type=``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (argparse ``type=``)."""
    value = non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (argparse ``type=``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value
