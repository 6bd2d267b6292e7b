"""Colour conversion used by the metrics: MATLAB's ``rgb2ycbcr`` luma."""

from __future__ import annotations

import torch
from torch import Tensor

# BT.601 studio-range luma as MATLAB's rgb2ycbcr computes it, for RGB in [0, 1]: 0..255 units.
_Y_WEIGHTS = (65.481, 128.553, 24.966)
_Y_OFFSET = 16.0


def rgb_to_y(img: Tensor) -> Tensor:
    """Return the Y channel of MATLAB's ``rgb2ycbcr`` (BT.601 studio range) in ``[0, 1]`` units.

    ``Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255`` for ``R, G, B`` in ``[0, 1]``, so ``Y`` lies in
    ``[16/255, 235/255]``. This is the luma the SR literature measures PSNR/SSIM on.

    Args:
        img: ``(3, H, W)`` or ``(N, 3, H, W)`` RGB in ``[0, 1]``. A 1-channel image (``(1, H, W)`` or
            ``(N, 1, H, W)``) is returned unchanged: gray images have no Y conversion.

    Returns:
        ``(1, H, W)`` or ``(N, 1, H, W)`` in ``img``'s dtype (differentiable).

    Raises:
        ValueError: ``img`` is not 3-D or 4-D, or has a channel count other than 1 or 3.
    """
    if img.ndim not in (3, 4):
        raise ValueError(f"rgb_to_y expects (C, H, W) or (N, C, H, W), got shape {tuple(img.shape)}")
    channels = img.shape[-3]
    if channels == 1:
        return img
    if channels != 3:
        raise ValueError(f"rgb_to_y expects 1 or 3 channels, got {channels}")
    # fp16/bf16 would round the 0..255 intermediate sum (bf16: to whole units), 3-4x the input's own
    # rounding error; compute those in float32 and hand back the input's dtype.
    work = img.float() if img.dtype in (torch.float16, torch.bfloat16) else img
    weights = torch.tensor(_Y_WEIGHTS, dtype=work.dtype, device=img.device).view(3, 1, 1)
    y = (work * weights).sum(dim=-3, keepdim=True) + _Y_OFFSET
    return (y / 255.0).to(img.dtype)
