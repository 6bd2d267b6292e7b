"""Tiled inference: run a fully convolutional SR model over a large image in overlapping tiles.

Layout of the tiles (per axis, all in LR pixels):

* The image is cut into ``n`` *cores* of nearly equal size ``tile`` (a multiple of the model's
  ``size_multiple``). Each tile is its core plus ``overlap`` pixels of real image context on each
  side, clipped at the image border. Neighbouring tiles therefore share a band ``2 * overlap`` wide.
* Tile starts are multiples of ``size_multiple`` and interior tiles are multiples of it in size, so
  the model pads (reflect, zero, whatever it does) only at the true image border, exactly as it
  does untiled: a border tile sees the same border as the whole image.
* Outputs are cross-faded with a linear ramp over the middle ``overlap`` pixels of the shared
  band (``overlap * scale`` output pixels; less when a core is smaller than that), so every
  blended pixel had at least ``overlap / 2`` LR pixels of context in each tile it comes from, and
  any residual difference is smoothed rather than a visible seam. The two ramps of a seam sum to
  one, so no normalization canvas is needed.

For a fully convolutional model whose influence radius is within ``overlap / 2`` the tiled result
equals the untiled one up to float rounding. The output canvas always lives on the CPU; only the
batch of tiles being processed is handed to ``forward`` (which moves it to the device).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from gansr.errors import ConfigError

DEFAULT_TILE_OVERLAP = 32  # LR pixels of context per side; the ramp uses the middle half of the band
MIN_TILE = 32  # smaller cores waste most of the work on overlap


@dataclass(frozen=True)
class TilePlan:
    """How one image is cut: ``tile`` is the core size in LR pixels (0 = one piece).

    ``overlap`` is the context per side in LR pixels and ``batch_size`` how many equal-size tiles
    go through the model at once.
    """

    tile: int
    overlap: int
    batch_size: int = 1

    def __post_init__(self) -> None:
        if self.tile < 0:
            raise ConfigError(f"tile must be >= 0 (0 = no tiling), got {self.tile}")
        if self.overlap < 0:
            raise ConfigError(f"tile overlap must be >= 0, got {self.overlap}")
        if self.batch_size < 1:
            raise ConfigError(f"tile batch size must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class _Span:
    """One tile along one axis: input range ``[lo, hi)`` and core ``[core_lo, core_hi)`` (LR)."""

    lo: int
    hi: int
    core_lo: int
    core_hi: int


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def axis_spans(length: int, tile: int, overlap: int, multiple: int = 1) -> list[_Span]:
    """Cut an axis of ``length`` LR pixels into tiles of core size at most ``tile`` (see module doc)."""
    tile = _round_up(max(tile, 1), multiple)
    overlap = _round_up(overlap, multiple)
    if tile <= 0 or length <= tile:
        return [_Span(0, length, 0, length)]
    count = math.ceil(length / tile)
    core = _round_up(math.ceil(length / count), multiple)  # balanced, so no sliver tile at the end
    spans = []
    for start in range(0, length, core):
        end = min(start + core, length)
        spans.append(_Span(max(0, start - overlap), min(length, end + overlap), start, end))
    return spans


def _axis_weights(span: _Span, scale: int, ramp: int, first: bool, last: bool) -> tuple[int, int, Tensor]:
    """Output range ``[lo, hi)`` this tile contributes to on one axis, and its 1-D blend weights."""
    lo = span.lo * scale if first else max(span.lo * scale, span.core_lo * scale - ramp // 2)
    hi = span.hi * scale if last else min(span.hi * scale, span.core_hi * scale + ramp - ramp // 2)
    centers = torch.arange(lo, hi, dtype=torch.float64) + 0.5
    weight = torch.ones(hi - lo, dtype=torch.float64)
    if not first:
        weight *= _ramp_up(centers, span.core_lo * scale, ramp)
    if not last:
        weight *= 1.0 - _ramp_up(centers, span.core_hi * scale, ramp)
    return lo, hi, weight.float()


def _ramp_up(centers: Tensor, seam: int, ramp: int) -> Tensor:
    """0 before the ramp, 1 after it, linear across ``ramp`` pixels centred on ``seam``."""
    if ramp <= 0:
        return (centers >= seam).double()
    start = seam - ramp // 2
    return ((centers - start) / ramp).clamp(0.0, 1.0)


def tiled_forward(
    forward: Callable[[Tensor], Tensor],
    image: Tensor,
    *,
    scale: int,
    plan: TilePlan,
    size_multiple: int = 1,
    progress: bool | Callable[[int, int], None] = False,
) -> Tensor:
    """Super-resolve one image ``(C, H, W)`` by tiles; returns ``(C_out, H * scale, W * scale)`` on CPU.

    ``forward`` maps a CPU batch ``(B, C, h, w)`` to ``(B, C_out, h * scale, w * scale)`` on any
    device (it does the device transfer). Tiles of equal size are batched ``plan.batch_size`` at a
    time. ``progress=True`` shows a tqdm bar over tiles when there is more than one; a callable is
    called with ``(tiles done, tiles in all)`` after each batch of tiles (``(1, 1)`` untiled).
    """
    if image.dim() != 3:
        raise ValueError(f"tiled_forward takes one image (C, H, W), got shape {tuple(image.shape)}")
    report = progress if callable(progress) else None
    _, height, width = image.shape
    if plan.tile == 0 or (height <= plan.tile and width <= plan.tile):
        out = _to_cpu_float(forward(image.unsqueeze(0)))[0]
        if report is not None:
            report(1, 1)
        return out

    multiple = max(1, size_multiple)
    ys = axis_spans(height, plan.tile, plan.overlap, multiple)
    xs = axis_spans(width, plan.tile, plan.overlap, multiple)
    # Ramps of neighbouring seams must not overlap, or the weights would no longer sum to one.
    ramp_y = min(_round_up(plan.overlap, multiple), min(s.core_hi - s.core_lo for s in ys)) * scale
    ramp_x = min(_round_up(plan.overlap, multiple), min(s.core_hi - s.core_lo for s in xs)) * scale
    tiles = [(iy, ix) for iy in range(len(ys)) for ix in range(len(xs))]
    # Equal input shapes batch together; interior tiles all share one shape.
    groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for iy, ix in tiles:
        shape = (ys[iy].hi - ys[iy].lo, xs[ix].hi - xs[ix].lo)
        groups.setdefault(shape, []).append((iy, ix))

    canvas: Tensor | None = None
    bar = _progress_bar(len(tiles), progress is True)
    done = 0
    try:
        for members in groups.values():
            for start in range(0, len(members), plan.batch_size):
                chunk = members[start : start + plan.batch_size]
                batch = torch.stack(
                    [image[:, ys[iy].lo : ys[iy].hi, xs[ix].lo : xs[ix].hi] for iy, ix in chunk]
                )
                out = _to_cpu_float(forward(batch))
                if canvas is None:
                    canvas = torch.zeros(out.shape[1], height * scale, width * scale, dtype=torch.float32)
                for k, (iy, ix) in enumerate(chunk):
                    y0, y1, wy = _axis_weights(ys[iy], scale, ramp_y, iy == 0, iy == len(ys) - 1)
                    x0, x1, wx = _axis_weights(xs[ix], scale, ramp_x, ix == 0, ix == len(xs) - 1)
                    oy, ox = ys[iy].lo * scale, xs[ix].lo * scale
                    piece = out[k, :, y0 - oy : y1 - oy, x0 - ox : x1 - ox]
                    canvas[:, y0:y1, x0:x1].addcmul_(piece, wy[:, None] * wx[None, :])
                # Free this batch before the next forward pass allocates its own: otherwise the
                # previous output (hundreds of MB for a big x4 tile) adds to the next pass's peak.
                del out, piece, batch
                done += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
                if report is not None:
                    report(done, len(tiles))
    finally:
        if bar is not None:
            bar.close()
    assert canvas is not None
    return canvas


def _to_cpu_float(out: Tensor) -> Tensor:
    return out.detach().to(device="cpu", dtype=torch.float32)


def _progress_bar(total: int, enabled: bool):
    if not enabled or total <= 1:
        return None
    import sys

    from tqdm import tqdm

    return tqdm(total=total, desc="tiles", unit="tile", leave=False, file=sys.stderr)


def plan_tiles(
    height: int,
    width: int,
    *,
    bytes_per_pixel: float,
    budget_bytes: int,
    overlap: int = DEFAULT_TILE_OVERLAP,
    tile: int | None = None,
    size_multiple: int = 1,
) -> TilePlan:
    """Choose the tile size and batch size for an ``height x width`` LR image.

    ``bytes_per_pixel`` is the model's peak memory per LR input pixel (see
    :func:`gansr.upscale.upscaler.estimate_bytes_per_pixel`). With ``tile=None`` the whole image
    runs in one piece when it fits ``budget_bytes``; otherwise the core is the largest multiple of
    ``size_multiple`` whose tile (core + ``2 * overlap``) fits, but at least :data:`MIN_TILE`.
    ``tile=0`` never tiles. The batch is as many equal tiles as fit the budget.
    """
    if tile is not None and tile < 0:
        raise ConfigError(f"tile must be >= 0 (0 = no tiling), got {tile}")
    if overlap < 0:
        raise ConfigError(f"tile overlap must be >= 0, got {overlap}")
    multiple = max(1, size_multiple)
    if tile == 0 or (tile is None and height * width * bytes_per_pixel <= budget_bytes):
        return TilePlan(0, overlap, 1)
    if tile is None:
        side = math.isqrt(int(budget_bytes / max(bytes_per_pixel, 1e-9)))
        tile = max(MIN_TILE, side - 2 * _round_up(overlap, multiple))
        tile = max(multiple, tile // multiple * multiple)
    tile = _round_up(tile, multiple)
    span = tile + 2 * _round_up(overlap, multiple)
    tiles = len(axis_spans(height, tile, overlap, multiple)) * len(axis_spans(width, tile, overlap, multiple))
    batch = int(budget_bytes // max(span * span * bytes_per_pixel, 1.0))
    return TilePlan(tile, overlap, max(1, min(batch, tiles)))
