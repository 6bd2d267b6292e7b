"""MATLAB-compatible bicubic ``imresize``.

The SR literature builds its LR images with MATLAB's ``imresize(hr, 1/s, 'bicubic')`` and
reports PSNR on them, so matching MATLAB to the last digit matters: torch's and PIL's bicubic
use a different kernel (a=-0.75), no antialiasing or a different boundary rule and give
visibly different PSNR. This module transcribes MATLAB's ``contributions`` routine (Keys cubic
with a=-0.5, kernel widened by 1/scale when shrinking, symmetric boundary, weights normalised,
all-zero columns trimmed) and applies it as two 1-D passes.

It is hand-written because no library here reproduces MATLAB: ``skimage.transform.resize``
uses spline interpolation and a Gaussian prefilter, torch/PIL bicubic use a=-0.75.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch

__all__ = ["cubic", "imresize", "imresize_weights"]

#: Support of the Keys cubic kernel (it is zero for |x| >= 2).
KERNEL_WIDTH = 4.0

#: Use a dense matmul for a pass while ``in_length <= ratio * taps`` (the gather path beyond).
_DENSE_MAX_RATIO = 256

ArrayT = TypeVar("ArrayT", torch.Tensor, np.ndarray)


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel with a = -0.5, exactly as MATLAB's ``imresize`` writes it."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * (
        (ax > 1) & (ax <= 2)
    )


@functools.lru_cache(maxsize=256)
def imresize_weights(
    in_length: int, out_length: int, scale: float, antialias: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Weights and source indices of one 1-D resize pass (MATLAB's ``contributions``).

    Args:
        in_length: Input length along the resized axis.
        out_length: Output length.
        scale: Scale factor used for the coordinate mapping (``out/in`` when a size was given).
        antialias: Widen the kernel by ``1/scale`` when shrinking, as MATLAB does by default.

    Returns:
        ``(weights, indices)``, both of shape ``(out_length, P)``: output ``i`` is
        ``sum_p weights[i, p] * input[indices[i, p]]``. Indices are 0-based and already folded
        into ``0..in_length-1`` by the symmetric (edge-repeating) boundary rule. The arrays are
        cached, hence read-only.
    """
    if scale < 1 and antialias:
        width = KERNEL_WIDTH / scale

        def kernel(x: np.ndarray) -> np.ndarray:
            return scale * cubic(scale * x)
    else:
        width = KERNEL_WIDTH
        kernel = cubic

    # MATLAB works in 1-based output/input coordinates; keep them so every line matches it.
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)
    weights = kernel(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    # Symmetric padding: 1..n, n..1 repeated (the edge sample is repeated), then 0-based.
    aux = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    folded = aux[np.mod(indices.astype(np.int64) - 1, aux.size)]
    keep = np.any(weights != 0, axis=0)
    weights, folded = np.ascontiguousarray(weights[:, keep]), np.ascontiguousarray(folded[:, keep])
    weights.setflags(write=False)
    folded.setflags(write=False)
    return weights, folded


@functools.lru_cache(maxsize=64)
def _dense_matrix(in_length: int, out_length: int, scale: float, antialias: bool) -> np.ndarray:
    """The pass as an ``(out, in)`` matrix; mirrored taps that land on one sample are summed."""
    weights, indices = imresize_weights(in_length, out_length, scale, antialias)
    matrix = np.zeros((out_length, in_length))
    np.add.at(matrix, (np.arange(out_length)[:, None], indices), weights)
    matrix.setflags(write=False)
    return matrix


def _resize_dim(x: torch.Tensor, dim: int, out_length: int, scale: float, antialias: bool) -> torch.Tensor:
    """Resize ``x`` along ``dim`` (-1 or -2)."""
    in_length = x.shape[dim]
    weights_np, indices_np = imresize_weights(in_length, out_length, scale, antialias)
    taps = weights_np.shape[1]
    if in_length <= _DENSE_MAX_RATIO * taps:
        # A BLAS matmul beats the gather below by 3-5x on CPU up to ~2k-pixel axes (measured),
        # even though it multiplies mostly zeros.
        matrix = torch.tensor(
            _dense_matrix(in_length, out_length, scale, antialias), dtype=x.dtype, device=x.device
        )
        return x @ matrix.T if dim == -1 else matrix @ x
    # Very long axes: gather the P taps of every output sample, O(out * P) instead of O(out * in).
    weights = torch.tensor(weights_np, dtype=x.dtype, device=x.device)
    index = torch.tensor(indices_np, device=x.device).reshape(-1)
    gathered = x.index_select(dim, index)
    if dim == -1:
        return (gathered.unflatten(-1, (out_length, taps)) * weights).sum(-1)
    return (gathered.unflatten(-2, (out_length, taps)) * weights[:, :, None]).sum(-2)


def _pair(value: float | Sequence[float], name: str) -> tuple[float, float]:
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 2:
            raise ValueError(f"imresize: {name} must be a number or a pair (h, w), got {value!r}")
        return float(value[0]), float(value[1])
    return float(value), float(value)


def imresize(
    img: ArrayT,
    scale: float | tuple[float, float] | None = None,
    *,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> ArrayT:
    """Resize like MATLAB's ``imresize(img, scale, 'bicubic')`` or ``imresize(img, [h w], 'bicubic')``.

    Args:
        img: Float tensor of shape ``(..., H, W)`` (any leading dimensions), or a NumPy float
            array with the same layout (the result is then a NumPy array). The computation runs
            in the input's dtype and device; use float64 for the exact benchmark protocol.
            Values are not clamped (bicubic overshoots slightly near edges).
        scale: Scale factor (``0.25`` shrinks 4x), or a pair ``(scale_h, scale_w)``. The output
            size is ``ceil(scale * input_size)`` as in MATLAB.
        size: Output size ``(height, width)`` instead of ``scale``; the per-axis scale is then
            ``out / in``.
        antialias: Widen the kernel when shrinking (MATLAB's default ``'Antialiasing', true``).

    Returns:
        The resized image, same type, dtype and device as ``img``. Differentiable.

    Raises:
        ValueError: Neither or both of ``scale`` and ``size`` given, or a non-positive value.
        TypeError: ``img`` is not a floating-point tensor or array.
    """
    if isinstance(img, np.ndarray):
        if not np.issubdtype(img.dtype, np.floating):
            raise TypeError(f"imresize needs a floating-point array, got {img.dtype} (divide uint8 by 255)")
        array = np.ascontiguousarray(img)
        if not array.flags.writeable:  # torch.from_numpy warns on read-only memory
            array = array.copy()
        return imresize(torch.from_numpy(array), scale, size=size, antialias=antialias).numpy()
    if not isinstance(img, torch.Tensor) or not img.is_floating_point():
        kind = img.dtype if isinstance(img, torch.Tensor) else type(img).__name__
        raise TypeError(f"imresize needs a floating-point tensor, got {kind}")
    if img.ndim < 2:
        raise ValueError(f"imresize needs an image of shape (..., H, W), got shape {tuple(img.shape)}")
    if (scale is None) == (size is None):
        raise ValueError("imresize: give exactly one of scale and size")

    in_h, in_w = img.shape[-2], img.shape[-1]
    if size is not None:
        out_h, out_w = (int(s) for s in size)
        if out_h < 1 or out_w < 1:
            raise ValueError(f"imresize: size must be positive, got {size!r}")
        scale_h, scale_w = out_h / in_h, out_w / in_w
    else:
        assert scale is not None
        scale_h, scale_w = _pair(scale, "scale")
        if not (scale_h > 0 and scale_w > 0 and math.isfinite(scale_h) and math.isfinite(scale_w)):
            raise ValueError(f"imresize: scale must be positive and finite, got {scale!r}")
        out_h, out_w = math.ceil(scale_h * in_h), math.ceil(scale_w * in_w)

    # MATLAB resizes the axis with the smaller scale first (less work); ties go height first.
    passes = [(-2, out_h, scale_h), (-1, out_w, scale_w)]
    if scale_w < scale_h:
        passes.reverse()
    out = img
    for dim, length, s in passes:
        if length == out.shape[dim] and s == 1.0:
            continue  # the cubic kernel at integer offsets is the identity
        out = _resize_dim(out, dim, length, s, antialias)
    return out if out is not img else img.clone()
