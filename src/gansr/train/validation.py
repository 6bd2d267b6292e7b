"""Validation during training: PSNR / SSIM / MSE of the EMA generator vs. the bicubic baseline.

SR and bicubic outputs are clamped and quantized to 8 bits (as a saved image would be) before
measuring; PSNR/SSIM follow :mod:`gansr.metrics` (Y channel for RGB). Under DDP each process
measures every ``world_size``-th image and the sums and counts are all-reduced, so the means are
over the whole set whatever the process count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from gansr.train.data import ValItem
from gansr.train.distributed import DistContext, all_reduce_sum

METRICS = ("psnr", "ssim", "mse")
_BATCH = 64  # images of equal size go through G together


def run_generator(model: nn.Module, lr: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``model(lr)``; arbitrary-scale models (``vae_cppn``) render exactly ``size``."""
    if getattr(model, "arbitrary_scale", False):
        return model(lr, size=tuple(size))
    return model(lr)


def _quantize(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x.clamp(0, 1) * 255) / 255


def _groups(indices: list[int], items: Sequence[ValItem]) -> list[list[int]]:
    groups: list[list[int]] = []
    for i in indices:
        last = groups[-1] if groups else None
        if (
            last
            and len(last) < _BATCH
            and items[last[0]].lr.shape == items[i].lr.shape
            and (items[last[0]].hr.shape == items[i].hr.shape)
        ):
            last.append(i)
        else:
            groups.append([i])
    return groups


@torch.no_grad()
def upscale_items(
    model: nn.Module,
    items: Sequence[ValItem],
    indices: list[int],
    device: torch.device,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> dict[int, torch.Tensor]:
    """Quantized SR outputs (on the CPU) of ``items[i]`` for ``i`` in ``indices``."""
    out: dict[int, torch.Tensor] = {}
    for group in _groups(indices, items):
        lr = torch.stack([items[i].lr for i in group]).to(device).contiguous(memory_format=memory_format)
        sr = run_generator(model, lr, items[group[0]].hr.shape[-2:]).float()
        for i, img in zip(group, _quantize(sr).cpu(), strict=True):
            out[i] = img
    return out


def bicubic(lr: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """MATLAB-bicubic upscaling of ``lr`` to ``size`` (quantized), the baseline."""
    from gansr.degrade import imresize

    return _quantize(imresize(lr, size=tuple(size)))


def _measure(sr: torch.Tensor, hr: torch.Tensor, crop: int) -> list[float]:
    from gansr.metrics import psnr, ssim

    sq = (
        (
            sr[..., crop : sr.shape[-2] - crop, crop : sr.shape[-1] - crop]
            - hr[..., crop : hr.shape[-2] - crop, crop : hr.shape[-1] - crop]
        ).double()
        ** 2
    ).mean()
    return [psnr(sr, hr, crop_border=crop), ssim(sr, hr, crop_border=crop), float(sq)]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    items: Sequence[ValItem],
    *,
    ctx: DistContext,
    crop_border: int,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> dict[str, Any]:
    """Mean ``val_psnr``, ``val_ssim``, ``val_mse`` and the same for ``bicubic_*`` over ``items``.

    ``model`` must be in eval mode (the EMA copy is). ``val_images`` is the number measured.
    """
    mine = list(range(ctx.rank, len(items), ctx.world_size))
    srs = upscale_items(model, items, mine, ctx.device, memory_format)
    sums = torch.zeros(2 * len(METRICS) + 1, dtype=torch.float64)
    for i in mine:
        hr = items[i].hr
        values = _measure(srs[i], hr, crop_border) + _measure(
            bicubic(items[i].lr, hr.shape[-2:]), hr, crop_border
        )
        sums += torch.tensor(values + [1.0], dtype=torch.float64)
    sums = all_reduce_sum(ctx, sums.to(ctx.device)).cpu()
    count = max(1.0, float(sums[-1]))
    means = (sums[:-1] / count).tolist()
    names = [f"val_{m}" for m in METRICS] + [f"bicubic_{m}" for m in METRICS]
    return {**dict(zip(names, means, strict=True)), "val_images": int(sums[-1])}


@torch.no_grad()
def sample_rows(
    model: nn.Module, items: Sequence[ValItem], count: int, device: torch.device
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(LR, bicubic, SR, HR) of the first ``count`` items, for the sample grid."""
    indices = list(range(min(count, len(items))))
    srs = upscale_items(model, items, indices, device)
    return [(items[i].lr, bicubic(items[i].lr, items[i].hr.shape[-2:]), srs[i], items[i].hr) for i in indices]
