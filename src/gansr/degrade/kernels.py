"""Blur kernels of real cameras and pipelines, 2-D filtering, Poisson noise and unsharp masking.

The kernel families of Real-ESRGAN's degradation model (Wang et al. 2021, section 3.1) and
BSRGAN (Zhang et al. 2021), written from the papers' formulas. With ``Σ`` the covariance of
``sigma_x``, ``sigma_y`` rotated by ``theta`` and ``d = xᵀ Σ⁻¹ x`` (x the offset from the
centre, in pixels):

- Gaussian: ``exp(-d / 2)`` (isotropic when ``sigma_x == sigma_y``);
- generalized Gaussian: ``exp(-d ** beta / 2)``, flatter top for ``beta > 1``, heavier tails below;
- plateau: ``1 / (1 + d ** beta)``, a flat top with slowly decaying tails;
- 2-D sinc (ideal circular low-pass of cutoff ``omega`` radians/pixel):
  ``omega * J1(omega * r) / (2 pi r)``; its side lobes make the ringing and overshoot that
  sharpening and resampling leave around edges.

Every kernel is normalised to sum 1, float64, shape ``(size, size)`` with odd ``size``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "KERNEL_KINDS",
    "anisotropic_kernel",
    "filter2d",
    "add_poisson_noise",
    "sinc_kernel",
    "unsharp_mask",
]

#: The Gaussian-like families :func:`anisotropic_kernel` draws (``*_iso`` have ``sigma_x == sigma_y``).
KERNEL_KINDS = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


def _check_size(size: int, name: str) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(f"{name}: kernel size must be a positive odd integer, got {size!r}")
    return size


def _offsets(size: int) -> tuple[Tensor, Tensor]:
    r = torch.arange(size, dtype=torch.float64) - size // 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    return xx, yy


def anisotropic_kernel(
    size: int,
    sigma_x: float,
    sigma_y: float,
    theta: float = 0.0,
    *,
    family: str = "gaussian",
    beta: float = 1.0,
) -> Tensor:
    """A rotated Gaussian-family kernel (see the module docstring).

    Args:
        size: odd side length.
        sigma_x, sigma_y: standard deviations (pixels, > 0) along the kernel's own axes.
        theta: rotation of the x axis (radians).
        family: ``"gaussian"``, ``"generalized"`` or ``"plateau"``.
        beta: the shape exponent of the generalized (``> 0``) and plateau (``> 0``) families.
    """
    _check_size(size, "anisotropic_kernel")
    if not (sigma_x > 0 and sigma_y > 0 and math.isfinite(sigma_x) and math.isfinite(sigma_y)):
        raise ValueError(f"anisotropic_kernel: sigmas must be finite and > 0, got {sigma_x!r}, {sigma_y!r}")
    if family not in ("gaussian", "generalized", "plateau"):
        raise ValueError(f"anisotropic_kernel: unknown family {family!r}")
    if not beta > 0:
        raise ValueError(f"anisotropic_kernel: beta must be > 0, got {beta!r}")
    xx, yy = _offsets(size)
    c, s = math.cos(theta), math.sin(theta)
    # Coordinates in the kernel's own (rotated) frame; Σ⁻¹ is diagonal there.
    u = c * xx + s * yy
    v = -s * xx + c * yy
    d = (u / sigma_x) ** 2 + (v / sigma_y) ** 2
    if family == "gaussian":
        k = torch.exp(-0.5 * d)
    elif family == "generalized":
        k = torch.exp(-0.5 * d**beta)
    else:
        k = 1.0 / (1.0 + d**beta)
    return k / k.sum()


def sinc_kernel(size: int, cutoff: float) -> Tensor:
    """The circular ideal low-pass filter of ``cutoff`` radians per pixel (``pi`` passes everything),
    truncated to ``size x size`` and normalised to sum 1."""
    _check_size(size, "sinc_kernel")
    if not 0 < cutoff <= math.pi:
        raise ValueError(f"sinc_kernel: cutoff must be in (0, pi], got {cutoff!r}")
    xx, yy = _offsets(size)
    r = torch.sqrt(xx**2 + yy**2)
    safe = torch.where(r == 0, torch.ones_like(r), r)
    k = cutoff * torch.special.bessel_j1(cutoff * safe) / (2 * math.pi * safe)
    k = torch.where(r == 0, torch.full_like(r, cutoff**2 / (4 * math.pi)), k)  # the limit at r = 0
    return k / k.sum()


def filter2d(img: Tensor, kernel: Tensor) -> Tensor:
    """Correlate every channel of ``img`` ``(..., H, W)`` with the odd square ``kernel``, reflect-padded
    (mirror without repeating the edge; replicate where the image is smaller than the pad)."""
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 == 0:
        raise ValueError(f"filter2d needs an odd square kernel, got shape {tuple(kernel.shape)}")
    size = kernel.shape[0]
    pad = size // 2
    if pad == 0:
        return img * kernel.to(img.dtype).reshape(())
    flat = img.reshape(-1, 1, *img.shape[-2:])
    mode = "reflect" if pad < min(img.shape[-2:]) else "replicate"
    padded = F.pad(flat, (pad, pad, pad, pad), mode=mode)
    # By FFT: a single-channel 21x21 convolution is 3x slower in oneDNN on a 128px patch, and the
    # loader workers degrade every training patch with one or two of these.
    h, w = padded.shape[-2] + size - 1, padded.shape[-1] + size - 1
    k = kernel.to(device=img.device, dtype=img.dtype).flip(0, 1)  # correlation = convolution with the flip
    full = torch.fft.irfft2(torch.fft.rfft2(padded, s=(h, w)) * torch.fft.rfft2(k, s=(h, w)), s=(h, w))
    out = full[..., size - 1 : size - 1 + img.shape[-2], size - 1 : size - 1 + img.shape[-1]]
    return out.reshape(img.shape).contiguous()


def add_poisson_noise(
    img: Tensor,
    scale: float,
    *,
    gray: bool = False,
    generator: torch.Generator | None = None,
    peak: float = 255.0,
) -> Tensor:
    """Shot noise: photon counts ``Poisson(img * peak) / peak``, the deviation from ``img`` multiplied
    by ``scale`` (0 none, 1 the shot noise of a ``peak``-count sensor). ``gray`` draws one noise
    image from the luma and adds it to every channel (luminance noise); the result is clamped."""
    if not (scale >= 0 and math.isfinite(scale)):
        raise ValueError(f"add_poisson_noise: scale must be finite and >= 0, got {scale!r}")
    from gansr.degrade.ops import resolve_generator

    gen = resolve_generator(generator)
    base = img
    if gray and img.shape[-3] == 3:
        w = torch.tensor([0.299, 0.587, 0.114], dtype=img.dtype, device=img.device).view(3, 1, 1)
        base = (img * w).sum(-3, keepdim=True)
    rate = (base.clamp(0, 1) * peak).to(torch.float64)
    counts = torch.poisson(rate.to(gen.device), generator=gen).to(device=img.device, dtype=img.dtype)
    noise = counts / peak - base
    return (img + noise * scale).clamp(0.0, 1.0)


def unsharp_mask(img: Tensor, *, weight: float = 0.5, sigma: float = 8.0, threshold: float = 10.0) -> Tensor:
    """Real-ESRGAN's sharpened training target: ``img + weight * (img - blur(img))`` where the
    residual exceeds ``threshold`` (0..255 units), blended in with a blurred mask so flat areas
    (noise, sky) stay untouched. ``sigma`` is the Gaussian's (8 = OpenCV's for a 51x51 kernel)."""
    from gansr.degrade.ops import gaussian_blur

    blurred = gaussian_blur(img, sigma)
    residual = img - blurred
    mask = ((residual.abs() * 255) > threshold).to(img.dtype)
    soft = gaussian_blur(mask, sigma)
    sharp = (img + weight * residual).clamp(0.0, 1.0)
    return soft * sharp + (1 - soft) * img
