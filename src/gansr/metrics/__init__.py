"""Image-quality metrics: PSNR, SSIM, MS-SSIM (full reference), NIQE and the JPEG-grid ratio (no
reference).

The scalar metrics (:func:`psnr`, :func:`ssim`, :func:`ms_ssim`, :func:`niqe`) take one image,
a ``(C, H, W)`` tensor (or ``(H, W, C)`` NumPy array) in ``[0, 1]``, and follow the SR literature's
MATLAB protocol: float64 on 0..255 units, the Y channel of ``rgb2ycbcr``, an optional border crop.
:func:`ssim_index` and :func:`ms_ssim_index` are the differentiable batch cores the SSIM losses
share. :func:`grid_ratio` measures how strongly the 8x8 JPEG grid of an LR input shows in an SR
output (``blockiness.py``).
"""

from gansr.metrics.blockiness import GRID_BLOCK, grid_ratio
from gansr.metrics.color import rgb_to_y
from gansr.metrics.niqe_core import niqe
from gansr.metrics.psnr_ssim import ms_ssim, psnr, ssim
from gansr.metrics.ssim_core import MS_SSIM_WEIGHTS, ms_ssim_index, ssim_index

__all__ = [
    "GRID_BLOCK",
    "MS_SSIM_WEIGHTS",
    "grid_ratio",
    "ms_ssim",
    "ms_ssim_index",
    "niqe",
    "psnr",
    "rgb_to_y",
    "ssim",
    "ssim_index",
]
