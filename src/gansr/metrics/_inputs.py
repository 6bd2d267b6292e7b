"""Turning the images handed to the scalar metrics into float64 ``(C, H, W)`` tensors."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

ImageLike = Tensor | np.ndarray

# Unclamped model outputs overshoot [0, 1] a little; anything far outside is a 0..255 image.
_RANGE_SLACK = 0.5


def as_image(img: ImageLike, *, name: str = "image") -> Tensor:
    """Return ``img`` as a float64 ``(C, H, W)`` tensor in ``[0, 1]`` units, ``C`` in ``{1, 3}``.

    Tensors are ``(C, H, W)`` or ``(H, W)`` (the gansr convention); NumPy arrays are ``(H, W, C)`` or
    ``(H, W)`` (the NumPy/PIL convention). Floating images are in ``[0, 1]``; ``uint8`` images are
    divided by 255 and ``uint16`` images by 65535.

    Raises:
        ValueError: wrong rank, channel count or dtype, or float values far outside ``[0, 1]``.
    """
    if isinstance(img, np.ndarray):
        if img.ndim == 3:
            img = img.transpose(2, 0, 1)
        tensor = torch.from_numpy(np.array(img))  # a copy: arrays from PIL are read-only
    elif isinstance(img, Tensor):
        tensor = img.detach().cpu()
    else:
        raise ValueError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(img).__name__}")
    if tensor.ndim == 2:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 3:
        raise ValueError(
            f"{name} must be one image, (C, H, W) tensor or (H, W, C) array, got shape {tuple(img.shape)}"
        )
    if tensor.shape[0] not in (1, 3):
        raise ValueError(
            f"{name} must have 1 or 3 channels, got {tensor.shape[0]} (shape {tuple(img.shape)})"
        )
    if tensor.dtype == torch.uint8:
        return tensor.double() / 255.0
    if tensor.dtype == torch.uint16:
        return tensor.double() / 65535.0
    if not tensor.is_floating_point():
        raise ValueError(f"{name} must be floating point in [0, 1], uint8 or uint16, got {tensor.dtype}")
    tensor = tensor.double()
    low, high = float(tensor.min()), float(tensor.max())
    if low < -_RANGE_SLACK or high > 1 + _RANGE_SLACK:
        raise ValueError(
            f"{name} values must be in [0, 1], got [{low:.4g}, {high:.4g}] (divide 0..255 images by 255)"
        )
    return tensor


def crop_border(img: Tensor, border: int, *, name: str = "image") -> Tensor:
    """Drop ``border`` pixels at each side of ``(..., H, W)``; raises ValueError if nothing is left."""
    if isinstance(border, bool) or not isinstance(border, int) or border < 0:
        raise ValueError(f"crop_border must be a non-negative integer, got {border!r}")
    if border == 0:
        return img
    height, width = img.shape[-2:]
    if 2 * border >= min(height, width):
        raise ValueError(f"crop_border={border} leaves nothing of the {height}x{width} {name}")
    return img[..., border:-border, border:-border]
