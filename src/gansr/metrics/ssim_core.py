"""Differentiable SSIM and MS-SSIM cores, shared by the metrics and the SSIM training losses.

Both work on batches ``(N, C, H, W)`` in the input's dtype and device (float32 for training,
float64 for the metrics) and return one value per image, so they can be used as losses directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

# Wang et al. 2003, "Multi-scale structural similarity for image quality assessment", Table 1.
MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def gaussian_kernel_1d(window_size: int, sigma: float, *, dtype: torch.dtype, device=None) -> Tensor:
    """Normalized 1-D Gaussian of ``window_size`` taps (the 2-D window is its outer product).

    The outer product equals MATLAB's ``fspecial('gaussian', window_size, sigma)``.
    """
    coords = torch.arange(window_size, dtype=dtype, device=device) - (window_size - 1) / 2
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def _check_pair(x: Tensor, y: Tensor, window_size: int, sigma: float) -> None:
    if x.shape != y.shape:
        raise ValueError(f"SSIM inputs must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.ndim != 4:
        raise ValueError(f"SSIM expects (N, C, H, W) batches, got shape {tuple(x.shape)}")
    if window_size < 1 or window_size % 2 == 0:
        raise ValueError(f"SSIM window_size must be a positive odd number, got {window_size}")
    if sigma <= 0:
        raise ValueError(f"SSIM sigma must be positive, got {sigma}")


def _filter_valid(img: Tensor, kernel: Tensor) -> Tensor:
    """Separable Gaussian filtering of every channel, 'valid' region only (no padding)."""
    channels = img.shape[1]
    size = kernel.numel()
    k_h = kernel.view(1, 1, size, 1).expand(channels, 1, size, 1)
    k_w = kernel.view(1, 1, 1, size).expand(channels, 1, 1, size)
    return F.conv2d(F.conv2d(img, k_h, groups=channels), k_w, groups=channels)


def _ssim_terms(x: Tensor, y: Tensor, kernel: Tensor, data_range: float) -> tuple[Tensor, Tensor]:
    """Mean SSIM and mean contrast-structure term per image, each ``(N,)``."""
    size = kernel.numel()
    if x.shape[-2] < size or x.shape[-1] < size:
        raise ValueError(
            f"SSIM with a {size}x{size} window needs images of at least {size}x{size} pixels, "
            f"got {x.shape[-2]}x{x.shape[-1]}"
        )
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mu_x = _filter_valid(x, kernel)
    mu_y = _filter_valid(y, kernel)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    # Population (biased) moments as in Wang et al.'s ssim_index.m.
    sigma_xx = _filter_valid(x * x, kernel) - mu_xx
    sigma_yy = _filter_valid(y * y, kernel) - mu_yy
    sigma_xy = _filter_valid(x * y, kernel) - mu_xy
    cs_map = (2 * sigma_xy + c2) / (sigma_xx + sigma_yy + c2)
    ssim_map = (2 * mu_xy + c1) / (mu_xx + mu_yy + c1) * cs_map
    return ssim_map.flatten(1).mean(dim=1), cs_map.flatten(1).mean(dim=1)


def ssim_index(
    x: Tensor, y: Tensor, *, data_range: float = 1.0, window_size: int = 11, sigma: float = 1.5
) -> Tensor:
    """Mean SSIM of each image pair (Wang et al. 2004, MATLAB ``ssim_index.m``).

    Gaussian window ``window_size`` x ``window_size`` with standard deviation ``sigma``, 'valid'
    filtering (no padding), ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2`` with ``L = data_range``; the SSIM
    map is averaged over channels and pixels. Differentiable; computed in ``x``'s dtype.

    Args:
        x, y: ``(N, C, H, W)`` batches of the same shape, values in ``[0, data_range]``.
        data_range: the value range ``L`` (1 for ``[0, 1]`` images, 255 for 0..255 units).
        window_size: odd window side; images must be at least this large.
        sigma: standard deviation of the Gaussian window.

    Returns:
        ``(N,)`` SSIM per image (1 for identical images).

    Raises:
        ValueError: mismatched shapes, not 4-D, images smaller than the window, bad window.
    """
    _check_pair(x, y, window_size, sigma)
    kernel = gaussian_kernel_1d(window_size, sigma, dtype=x.dtype, device=x.device)
    return _ssim_terms(x, y, kernel, data_range)[0]


def ms_ssim_min_size(levels: int = len(MS_SSIM_WEIGHTS), window_size: int = 11) -> int:
    """Smallest image side MS-SSIM accepts: the coarsest scale must still hold one window."""
    return window_size * 2 ** (levels - 1)


def ms_ssim_index(
    x: Tensor,
    y: Tensor,
    *,
    data_range: float = 1.0,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
    window_size: int = 11,
    sigma: float = 1.5,
) -> Tensor:
    """Multi-scale SSIM of each image pair (Wang, Simoncelli and Bovik 2003).

    ``MS-SSIM = prod_{j<M} cs_j^{w_j} * ssim_M^{w_M}`` over ``M = len(weights)`` scales; between scales
    the images are downsampled 2x by 2x2 average pooling (an odd last row/column is dropped). The
    contrast-structure terms and the last SSIM are clamped to at least the dtype's machine epsilon
    before the fractional powers: negative values would give NaN and zero an infinite gradient,
    so strongly anti-correlated images score ~0 instead of NaN.

    Args:
        x, y: ``(N, C, H, W)`` batches of the same shape, values in ``[0, data_range]``; both sides
            must be at least :func:`ms_ssim_min_size` (176 for the 5 default scales). Pass fewer
            weights (e.g. the first 3) for smaller images.
        data_range: the value range ``L``.
        weights: per-scale exponents; the default is the paper's 5-scale set.
        window_size, sigma: the SSIM Gaussian window at each scale.

    Returns:
        ``(N,)`` MS-SSIM per image (1 for identical images). Differentiable.

    Raises:
        ValueError: mismatched shapes, not 4-D, no weights, or images too small for the scales.
    """
    _check_pair(x, y, window_size, sigma)
    levels = len(weights)
    if levels == 0:
        raise ValueError("MS-SSIM needs at least one scale weight")
    min_size = ms_ssim_min_size(levels, window_size)
    if min(x.shape[-2:]) < min_size:
        raise ValueError(
            f"MS-SSIM with {levels} scales needs images of at least {min_size}x{min_size} pixels, "
            f"got {x.shape[-2]}x{x.shape[-1]} (pass fewer weights for smaller images)"
        )
    kernel = gaussian_kernel_1d(window_size, sigma, dtype=x.dtype, device=x.device)
    eps = torch.finfo(x.dtype).eps
    result = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
    for level, weight in enumerate(weights):
        ssim_val, cs_val = _ssim_terms(x, y, kernel, data_range)
        term = ssim_val if level == levels - 1 else cs_val
        result = result * term.clamp(min=eps) ** weight
        if level < levels - 1:
            x = F.avg_pool2d(x, kernel_size=2, stride=2)
            y = F.avg_pool2d(y, kernel_size=2, stride=2)
    return result
