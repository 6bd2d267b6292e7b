"""Training pictures: loss/metric curves (matplotlib, Agg) and LR | bicubic | SR | HR sample grids.

Figures are drawn with the object-oriented API on an Agg canvas, so no global pyplot state or
backend switch is involved and it works on headless machines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gansr.data.io import atomic_write

# Keys of train records that are bookkeeping, not curves.
_NOT_CURVES = {"it", "event", "phase", "time", "elapsed", "it_per_s", "epoch", "nonfinite_total"}


def _save_figure(fig: Any, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    with atomic_write(path) as fh:
        fig.savefig(fh, format="png", dpi=100)
    return path


def _series(records: Sequence[dict[str, Any]], event: str, key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for r in records:
        value = r.get(key)
        if r.get("event") == event and isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(value):
                xs.append(int(r["it"]))
                ys.append(float(value))
    return xs, ys


def plot_curves(records: Sequence[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Write ``losses.png`` (train losses, log scale), ``lr.png`` and ``metrics.png`` (validation).

    Returns the paths written (a figure with nothing to show is skipped).
    """
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    train_keys: list[str] = []
    for r in records:
        if r.get("event") == "train":
            train_keys.extend(k for k in r if k not in _NOT_CURVES and k not in train_keys)
    loss_keys = [k for k in train_keys if not k.startswith("lr") and not k.startswith("w_")]
    lr_keys = [k for k in train_keys if k.startswith("lr")]

    if loss_keys:
        groups = [
            ("generator", [k for k in loss_keys if not k.startswith("d_")]),
            ("discriminator", [k for k in loss_keys if k.startswith("d_")]),
        ]
        groups = [(title, keys) for title, keys in groups if keys]
        fig = Figure(figsize=(7 * len(groups), 4.5))
        for i, (title, keys) in enumerate(groups):
            ax = fig.add_subplot(1, len(groups), i + 1)
            for key in keys:
                xs, ys = _series(records, "train", key)
                if xs:
                    ax.plot(xs, ys, label=key, linewidth=1)
            if all(y > 0 for key in keys for y in _series(records, "train", key)[1]):
                ax.set_yscale("log")
            ax.set(title=title, xlabel="iteration")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.92, wspace=0.2)
        written.append(_save_figure(fig, out_dir / "losses.png"))

    if lr_keys:
        fig = Figure(figsize=(7, 3.5))
        ax = fig.add_subplot(1, 1, 1)
        for key in lr_keys:
            ax.plot(*_series(records, "train", key), label=key)
        ax.set(title="learning rate", xlabel="iteration")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.subplots_adjust(left=0.12, right=0.97, bottom=0.15, top=0.9)
        written.append(_save_figure(fig, out_dir / "lr.png"))

    panels = [(m, f"val_{m}", f"bicubic_{m}") for m in ("psnr", "ssim", "mse")]
    panels = [p for p in panels if _series(records, "val", p[1])[0]]
    if panels:
        fig = Figure(figsize=(5 * len(panels), 4))
        for i, (metric, key, base_key) in enumerate(panels):
            ax = fig.add_subplot(1, len(panels), i + 1)
            xs, ys = _series(records, "val", key)
            ax.plot(xs, ys, marker="o", markersize=3, label="EMA generator")
            bx, by = _series(records, "val", base_key)
            if bx:
                ax.plot(bx, by, linestyle="--", color="gray", label="bicubic")
            ax.set(title=f"validation {metric.upper()}", xlabel="iteration")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.91, wspace=0.25)
        written.append(_save_figure(fig, out_dir / "metrics.png"))
    return written


def _fit(img: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Place ``img`` (C, h, w) top-left on a white (C, height, width) canvas."""
    canvas = torch.ones(img.shape[0], height, width, dtype=img.dtype)
    canvas[:, : img.shape[1], : img.shape[2]] = img
    return canvas


def sample_grid(
    rows: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]],
    *,
    max_size: int = 192,
    min_size: int = 96,
    gap: int = 4,
) -> torch.Tensor:
    """Compose rows of (LR, bicubic, SR, HR) images (C, H, W) into one (3, H, W) grid image.

    Each row is centre-cropped to at most ``max_size`` HR pixels (the matching LR region is
    cropped too) and panels smaller than ``min_size`` are enlarged with nearest neighbour by an
    integer factor so tiny images (MNIST) stay visible. LR is shown enlarged with nearest
    neighbour to the HR size, so its pixels are visible as blocks.
    """
    tiles = []
    for lr, bic, sr, hr in rows:
        scale = max(1, round(hr.shape[-1] / lr.shape[-1]))
        h = min(hr.shape[-2], max_size) // scale * scale
        w = min(hr.shape[-1], max_size) // scale * scale
        top = (hr.shape[-2] - h) // 2 // scale * scale
        left = (hr.shape[-1] - w) // 2 // scale * scale
        lr_crop = lr[:, top // scale : (top + h) // scale, left // scale : (left + w) // scale]
        lr_big = F.interpolate(lr_crop[None].float(), size=(h, w), mode="nearest")[0]
        panels = [lr_big] + [x[:, top : top + h, left : left + w].float() for x in (bic, sr, hr)]
        zoom = max(1, math.ceil(min_size / max(h, w)))
        if zoom > 1:
            panels = [F.interpolate(p[None], scale_factor=zoom, mode="nearest")[0] for p in panels]
        panels = [p.clamp(0, 1).expand(3, -1, -1) for p in panels]
        tiles.append(panels)
    height = max(p.shape[1] for row in tiles for p in row)
    width = max(p.shape[2] for row in tiles for p in row)
    ncols = 4
    grid = torch.ones(3, len(tiles) * (height + gap) + gap, ncols * (width + gap) + gap)
    for r, row in enumerate(tiles):
        for c, panel in enumerate(row):
            y, x = gap + r * (height + gap), gap + c * (width + gap)
            grid[:, y : y + height, x : x + width] = _fit(panel, height, width)
    return grid


def save_sample_grid(
    rows: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]], path: Path
) -> Path:
    """Write :func:`sample_grid` of ``rows`` as a PNG (atomically, via ``gansr.data.io``)."""
    from gansr.data.io import write_image

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_image(path, sample_grid(rows))
