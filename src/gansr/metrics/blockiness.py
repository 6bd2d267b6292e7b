"""Blockiness of an SR output: how strongly the JPEG block grid of its LR input shows through.

JPEG codes 8x8 blocks independently, so a compressed LR image has small steps at every eighth
row and column. An SR model that does not remove them magnifies them into a grid with the period
``8 * scale`` in its output (32 pixels for x4). :func:`grid_ratio` compares the mean absolute step
between neighbouring pixels across that grid's lines with the mean step everywhere else (the
issue's definition, the one gansr's targets use). About 1.0 means no visible grid; on the Set5
photos it reads 0.85 to 1.15 for the HR images, 1.0 to 1.26 for bicubic x4 upscales of their
clean LR (an interpolator's steps between two LR pixels are larger than inside one), and more
for bicubic x4 of a JPEG LR. ``reference="lr_grid"`` measures against the other lines of the LR
pixel grid only, which removes that interpolation bias (clean bicubic: 0.9 to 1.1). Strong edges
and busy textures mask the grid (and lower the ratio), so the absolute value depends on the
content: compare models on the same inputs.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gansr.metrics.color import rgb_to_y

__all__ = ["GRID_BLOCK", "grid_ratio"]

GRID_BLOCK = 32  # the 8x8 JPEG blocks of an LR image, as they land in an x4 output


def grid_ratio(img: Tensor, block: int = GRID_BLOCK, *, reference: str = "all") -> float:
    """The JPEG-grid ratio of one SR output: mean step across block boundaries / mean step elsewhere.

    Measured on the Y channel of MATLAB's ``rgb2ycbcr`` (RGB) or as is (gray). A horizontal step
    ``|I[y, x] - I[y, x - 1]|`` is a boundary step when ``x % block == 0``, a vertical step
    ``|I[y, x] - I[y - 1, x]|`` when ``y % block == 0``; both directions are pooled.

    The reference steps are all other adjacent pairs (``reference="all"``, the default), or only
    those *at the same phase of the LR pixel grid* (``reference="lr_grid"``: positions with
    ``x % (block // 8) == 0``, every ``scale``-th line when ``block = 8 * scale``). Interpolating
    upscalers make steps between two LR pixels larger than steps inside one (bicubic x4: about 1.1
    to 1.25 times), which "all" counts as a little grid and "lr_grid" does not.

    Args:
        img: ``(C, H, W)`` float tensor in ``[0, 1]``, ``C`` 1 or 3 (an SR output; quantized or not).
        block: the grid period in output pixels: ``8 * scale`` for a JPEG'd LR input (32 at x4).
        reference: ``"all"`` or ``"lr_grid"`` (see above).

    Returns:
        The ratio: ~1.0 without a grid at that period, larger the more visible the grid is. 1.0 for
        a flat image (no steps at all), ``math.inf`` when only the boundaries have steps.

    Raises:
        ValueError: not a 1- or 3-channel ``(C, H, W)`` tensor, ``block < 2``, an unknown
            ``reference``, or an image with no
            boundary inside it (both sides at most ``block`` pixels).
    """
    if not isinstance(img, Tensor) or img.ndim != 3 or img.shape[0] not in (1, 3):
        shape = tuple(img.shape) if isinstance(img, Tensor) else type(img).__name__
        raise ValueError(f"grid_ratio expects a (C, H, W) tensor with C 1 or 3, got {shape}")
    if isinstance(block, bool) or not isinstance(block, int) or block < 2:
        raise ValueError(f"grid_ratio: block must be an integer >= 2, got {block!r}")
    h, w = img.shape[-2:]
    if h <= block and w <= block:
        raise ValueError(f"grid_ratio: a {w}x{h} image has no {block}-pixel block boundary inside it")
    if reference not in ("all", "lr_grid"):
        raise ValueError(f"grid_ratio: reference must be 'all' or 'lr_grid', got {reference!r}")
    # The LR pixel pitch in output pixels ("lr_grid"), or every position ("all").
    pitch = block // 8 if reference == "lr_grid" and block % 8 == 0 else 1
    y = rgb_to_y(img.detach().cpu().double())[0]
    dx = (y[:, 1:] - y[:, :-1]).abs().sum(dim=0)  # entry j: the column of steps into x = j + 1
    dy = (y[1:, :] - y[:-1, :]).abs().sum(dim=1)
    xs, ys = torch.arange(1, w), torch.arange(1, h)
    edge_x, edge_y = xs % block == 0, ys % block == 0
    ref_x, ref_y = (xs % pitch == 0) & ~edge_x, (ys % pitch == 0) & ~edge_y
    edge_n = int(edge_x.sum()) * h + int(edge_y.sum()) * w
    ref_n = int(ref_x.sum()) * h + int(ref_y.sum()) * w
    edge = float(dx[edge_x].sum() + dy[edge_y].sum()) / edge_n
    ref = float(dx[ref_x].sum() + dy[ref_y].sum()) / ref_n if ref_n else 0.0
    if ref == 0.0:
        return 1.0 if edge == 0.0 else math.inf
    return edge / ref
