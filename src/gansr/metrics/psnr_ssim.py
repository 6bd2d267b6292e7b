"""Full-reference metrics with the SR literature's protocol: PSNR, SSIM and MS-SSIM.

The protocol (as in the MATLAB evaluation scripts behind published tables): float64 on 0..255
units, optionally on the Y channel of MATLAB's ``rgb2ycbcr``, with ``crop_border`` pixels (usually
the scale) removed at each side. Quantize SR outputs to 8 bits before calling, where the
protocol does.
"""

from __future__ import annotations

import math

from torch import Tensor

from gansr.metrics._inputs import ImageLike, as_image
from gansr.metrics._inputs import crop_border as _crop
from gansr.metrics.color import rgb_to_y
from gansr.metrics.ssim_core import ms_ssim_index, ssim_index

_PEAK = 255.0


def _prepare_pair(sr: ImageLike, hr: ImageLike, border: int, y_channel: bool) -> tuple[Tensor, Tensor]:
    """Both images as float64 ``(1, C, H, W)`` batches in 0..255 units, converted and cropped."""
    sr_t = as_image(sr, name="sr")
    hr_t = as_image(hr, name="hr")
    if sr_t.shape != hr_t.shape:
        raise ValueError(
            f"sr and hr must have the same shape, got {tuple(sr_t.shape)} and {tuple(hr_t.shape)} "
            "(as (C, H, W))"
        )
    if y_channel:
        sr_t, hr_t = rgb_to_y(sr_t), rgb_to_y(hr_t)
    sr_t = _crop(sr_t, border, name="sr")
    hr_t = _crop(hr_t, border, name="hr")
    return (sr_t * _PEAK).unsqueeze(0), (hr_t * _PEAK).unsqueeze(0)


def psnr(sr: ImageLike, hr: ImageLike, *, crop_border: int = 0, y_channel: bool = True) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(255^2 / MSE)`` on 0..255 units.

    Args:
        sr, hr: one image each, same shape: a ``(C, H, W)`` tensor or ``(H, W, C)`` array in
            ``[0, 1]`` (see :func:`gansr.metrics._inputs.as_image`), ``C`` in ``{1, 3}``.
        crop_border: pixels removed at each side before measuring (usually the SR scale).
        y_channel: measure on the Y channel of MATLAB's ``rgb2ycbcr`` (ignored for gray images);
            otherwise on all channels together.

    Returns:
        PSNR in dB; ``math.inf`` for identical images.

    Raises:
        ValueError: shapes differ, unsupported input, or the crop leaves nothing.
    """
    a, b = _prepare_pair(sr, hr, crop_border, y_channel)
    mse = float(((a - b) ** 2).mean())
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(_PEAK**2 / mse)


def ssim(sr: ImageLike, hr: ImageLike, *, crop_border: int = 0, y_channel: bool = True) -> float:
    """Structural similarity (Wang et al. 2004) as MATLAB's ``ssim_index.m`` computes it.

    11x11 Gaussian window with sigma 1.5, 'valid' filtering, ``C1 = (0.01*255)^2``,
    ``C2 = (0.03*255)^2``, mean of the SSIM map; for RGB (``y_channel=False``) the mean over the
    channels. Uses :func:`gansr.metrics.ssim_core.ssim_index` (the core the SSIM loss uses) in float64.

    Args:
        sr, hr: as for :func:`psnr`; at least 11x11 after cropping.
        crop_border: pixels removed at each side before measuring.
        y_channel: measure on the Y channel (ignored for gray images).

    Returns:
        SSIM in ``[-1, 1]``; 1 for identical images.

    Raises:
        ValueError: shapes differ, unsupported input, or the image is too small.
    """
    a, b = _prepare_pair(sr, hr, crop_border, y_channel)
    return float(ssim_index(a, b, data_range=_PEAK))


def ms_ssim(sr: ImageLike, hr: ImageLike, *, y_channel: bool = True) -> float:
    """Multi-scale SSIM (Wang et al. 2003), 5 scales with the paper's weights, on 0..255 units.

    Args:
        sr, hr: as for :func:`psnr`; both sides at least 176 pixels (5 scales of an 11x11 window).
        y_channel: measure on the Y channel (ignored for gray images).

    Returns:
        MS-SSIM in ``[0, 1]``; 1 for identical images.

    Raises:
        ValueError: shapes differ, unsupported input, or the image is smaller than 176x176.
    """
    a, b = _prepare_pair(sr, hr, 0, y_channel)
    return float(ms_ssim_index(a, b, data_range=_PEAK))
