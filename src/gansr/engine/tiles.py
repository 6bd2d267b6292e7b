"""Tiles: one planner and the runners that cut an image (or a feature map) into tiles.

* :func:`plan` chooses a :class:`TilePlan` for a :class:`~gansr.engine.fast.FastModel` and an
  image: the whole image when its estimated peak fits the memory budget
  (:func:`gansr.engine.device.memory_budget`), else the tile size that computes the fewest
  redundant pixels among those that fit. The Upscaler, ``gansr speed``, video and the web app all
  plan with it.
* :func:`run_tiled` runs any ``forward`` over an image by the plan, blending seams (below).
* :func:`run_exact` runs a spatially local stage (a fused generator's high-resolution tail) in
  tiles with just enough context to be exact, so its large activations never exist whole.
Both cut axes with :func:`axis_spans`.

Layout of :func:`run_tiled`'s tiles (per axis, all in LR pixels):

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
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gansr.engine.device import memory_budget
from gansr.errors import ConfigError

if TYPE_CHECKING:
    from gansr.engine.fast import FastModel

__all__ = ["DEFAULT_TILE_OVERLAP", "MIN_TILE", "TilePlan", "axis_spans", "plan", "run_exact", "run_tiled"]

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


def run_tiled(
    forward: Callable[[Tensor], Tensor],
    image: Tensor,
    *,
    scale: int | None = None,
    tile_plan: TilePlan | None = None,
    size_multiple: int | None = None,
    progress: bool | Callable[[int, int], None] = False,
) -> Tensor:
    """Super-resolve one image ``(C, H, W)`` by tiles; returns float32 ``(C_out, H * scale, W * scale)``
    on the CPU.

    ``forward`` maps a CPU batch ``(B, C, h, w)`` to ``(B, C_out, h * scale, w * scale)`` on any
    device (it does the device transfer). When it is a :class:`~gansr.engine.fast.FastModel`,
    ``scale`` and ``size_multiple`` default to its own and ``tile_plan`` to :func:`plan` for the
    image (the whole image when it fits the budget). Tiles of equal size are batched ``batch_size``
    at a time. ``progress=True`` shows a tqdm bar over tiles when there is more than one; a callable
    is called with ``(tiles done, tiles in all)`` after each batch of tiles (``(1, 1)`` untiled).
    """
    if image.dim() != 3:
        raise ValueError(f"run_tiled takes one image (C, H, W), got shape {tuple(image.shape)}")
    image = image.detach().to("cpu", torch.float32)
    scale = int(forward.scale) if scale is None else scale  # type: ignore[attr-defined]  # a FastModel
    if size_multiple is None:
        size_multiple = int(getattr(forward, "size_multiple", 1))
    chosen = plan(forward, image.shape[-2], image.shape[-1]) if tile_plan is None else tile_plan  # type: ignore[arg-type]
    report = progress if callable(progress) else None
    _, height, width = image.shape
    if chosen.tile == 0 or (height <= chosen.tile and width <= chosen.tile):
        out = _to_cpu_float(forward(image.unsqueeze(0)))[0]
        if report is not None:
            report(1, 1)
        return out

    multiple = max(1, size_multiple)
    ys = axis_spans(height, chosen.tile, chosen.overlap, multiple)
    xs = axis_spans(width, chosen.tile, chosen.overlap, multiple)
    # Ramps of neighbouring seams must not overlap, or the weights would no longer sum to one.
    ramp_y = min(_round_up(chosen.overlap, multiple), min(s.core_hi - s.core_lo for s in ys)) * scale
    ramp_x = min(_round_up(chosen.overlap, multiple), min(s.core_hi - s.core_lo for s in xs)) * scale
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
            for start in range(0, len(members), chosen.batch_size):
                chunk = members[start : start + chosen.batch_size]
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


def _tile_cost(height: int, width: int, tile: int, overlap: int, multiple: int) -> tuple[int, int, int]:
    """(pixels computed, largest tile height, largest tile width) for square cores of ``tile``."""
    ys = axis_spans(height, tile, overlap, multiple)
    xs = axis_spans(width, tile, overlap, multiple)
    area = sum(s.hi - s.lo for s in ys) * sum(s.hi - s.lo for s in xs)
    return area, max(s.hi - s.lo for s in ys), max(s.hi - s.lo for s in xs)


def plan(
    fast: FastModel,
    height: int,
    width: int,
    *,
    tile: int | None = None,
    overlap: int = DEFAULT_TILE_OVERLAP,
    budget_bytes: int | None = None,
) -> TilePlan:
    """The tile plan for a ``height x width`` LR image, chosen for speed within the memory budget.

    ``tile=0`` never tiles; an explicit ``tile`` is used as given (rounded to the model's
    ``size_multiple``). With ``tile=None`` the whole image runs in one piece when its estimated
    peak fits ``budget_bytes`` (default :func:`memory_budget`): tiling only adds the overlap work.
    Otherwise every core size that splits the image into 1, 2, 3, ... tiles per axis is tried
    and the one that computes the fewest pixels (core plus overlap) while fitting is chosen;
    ties go to fewer, larger tiles. A tiled run also holds the whole float32 output canvas (768 MB
    for an 8000x8000 RGB result) besides one tile's pass, so tiles get the budget minus the canvas
    (but at least a quarter of it). On a GPU equal tiles are batched while they fit.
    """
    if overlap < 0:
        raise ConfigError(f"tile overlap must be >= 0, got {overlap}")
    if tile is not None and tile < 0:
        raise ConfigError(f"tile must be >= 0 (0 = no tiling), got {tile}")
    multiple = fast.size_multiple
    if tile == 0:
        return TilePlan(0, overlap, 1)
    budget = memory_budget(fast.device) if budget_bytes is None else budget_bytes
    if tile is None:
        if fast.memory_bytes(height, width) <= budget:
            return TilePlan(0, overlap, 1)
        canvas = fast.out_channels * height * width * fast.scale**2 * 4  # on the CPU, whatever the device
        tile_budget = max(budget // 4, budget - canvas) if fast.device.type == "cpu" else budget
        best: tuple[int, int, int] | None = None  # (pixels computed, tiles, core)
        candidates = {
            max(MIN_TILE, -(-math.ceil(side / count) // multiple) * multiple)
            for side in (height, width)
            for count in range(1, -(-side // MIN_TILE) + 1)
        }
        for core in sorted(candidates, reverse=True):
            area, th, tw = _tile_cost(height, width, core, overlap, multiple)
            if fast.memory_bytes(th, tw) > tile_budget:
                continue
            tiles = len(axis_spans(height, core, overlap, multiple)) * len(
                axis_spans(width, core, overlap, multiple)
            )
            if best is None or (area, tiles) < best[:2]:
                best = (area, tiles, core)
        tile = best[2] if best is not None else MIN_TILE
    tile = -(-tile // multiple) * multiple
    batch = 1
    if fast.device.type != "cpu":  # GPUs gain from batches of equal tiles; CPUs do not
        _, th, tw = _tile_cost(height, width, tile, overlap, multiple)
        per_tile = max(fast.memory_bytes(th, tw) - fast.fixed_bytes(), 1)
        batch = max(1, int((budget - fast.fixed_bytes()) // per_tile))
    return TilePlan(tile, overlap, batch)


def run_exact(
    stage: Callable[[Tensor], Tensor],
    x: Tensor,
    *,
    scale: int,
    halo: int,
    tile: int,
    out: Tensor | None = None,
    out_dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Apply a spatially local ``stage`` (``(N, C, h, w)`` -> ``(N, C', h * scale, w * scale)``) tile
    by tile, each tile read with ``halo`` pixels of context that are cropped off again.

    With ``halo`` from :func:`gansr.models.fused.tail_halo` the result equals ``stage(x)`` (up to
    the summation order inside the convolutions): the context absorbs what zero padding at an inner
    tile edge gets wrong, and at the image edge the tile edge *is* the image edge. Cores are at most
    ``tile`` wide (:func:`axis_spans`). Only one tile's activations exist at a time. The result is
    written into ``out`` (allocated as NCHW ``out_dtype`` on ``x``'s device when None) and returned.
    """
    n, _, height, width = x.shape
    for ys in axis_spans(height, tile, halo):
        for xs in axis_spans(width, tile, halo):
            piece = stage(x[:, :, ys.lo : ys.hi, xs.lo : xs.hi])
            if out is None:
                out = torch.empty(
                    n, piece.shape[1], height * scale, width * scale, dtype=out_dtype, device=x.device
                )
            oy, ox = (ys.core_lo - ys.lo) * scale, (xs.core_lo - xs.lo) * scale
            h, w = (ys.core_hi - ys.core_lo) * scale, (xs.core_hi - xs.core_lo) * scale
            out[:, :, ys.core_lo * scale : ys.core_hi * scale, xs.core_lo * scale : xs.core_hi * scale].copy_(
                piece[:, :, oy : oy + h, ox : ox + w]
            )
            del piece
    assert out is not None
    return out
