"""Single degradation operations: bicubic LR, Gaussian blur, decimation, box average, noise, JPEG.

Every function takes a float image in ``[0, 1]`` of shape ``(C, H, W)`` or ``(N, C, H, W)`` (the
filters work on any ``(..., H, W)``), returns the same dtype and device, and draws randomness only
from the ``torch.Generator`` it is given. Bad arguments raise ``ValueError``/``TypeError`` (they are
programming errors); an image too small for the requested scale raises :class:`gansr.errors.DataError`.
"""

from __future__ import annotations

import io
import math
import numbers

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gansr.degrade.resize import imresize
from gansr.errors import DataError

__all__ = [
    "MNIST_NOISE_SIGMA",
    "MNIST_SCALE",
    "add_gaussian_noise",
    "area_downsample",
    "bicubic_degrade",
    "blur_downsample",
    "default_blur_sigma",
    "gaussian_blur",
    "gaussian_kernel",
    "jpeg_compress",
    "mnist_degrade",
    "quantize",
]

#: The MNIST reference protocol: 28x28 -> 7x7 box average, then N(0, 10^2) noise in 0..255 units.
MNIST_SCALE = 4
MNIST_NOISE_SIGMA = 10.0


def _check_float(img: torch.Tensor, name: str, min_dims: int = 2) -> None:
    if not isinstance(img, torch.Tensor) or not img.is_floating_point():
        kind = img.dtype if isinstance(img, torch.Tensor) else type(img).__name__
        raise TypeError(f"{name} needs a floating-point tensor in [0, 1], got {kind}")
    if img.ndim < min_dims:
        raise ValueError(f"{name} needs an image of shape (..., H, W), got shape {tuple(img.shape)}")


def _check_int_scale(scale: int, name: str) -> int:
    if isinstance(scale, bool) or not isinstance(scale, numbers.Integral) or scale < 1:
        raise ValueError(f"{name}: scale must be a positive integer, got {scale!r}")
    return int(scale)


def _check_sigma(sigma: float, name: str) -> float:
    sigma = float(sigma)
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"{name}: sigma must be finite and >= 0, got {sigma!r}")
    return sigma


def resolve_generator(generator: torch.Generator | None) -> torch.Generator:
    """The caller's generator, or a fresh OS-seeded one (never the global RNG)."""
    if generator is not None:
        return generator
    fresh = torch.Generator()
    fresh.seed()
    return fresh


def bicubic_degrade(hr: torch.Tensor, scale: float) -> torch.Tensor:
    """The SR literature's LR image: MATLAB ``imresize(hr, 1/scale, 'bicubic')``.

    The result is not clamped or quantized; benchmark LR images are ``quantize(...)``-d (saved
    as 8-bit PNG) before use.
    """
    scale = float(scale)
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"bicubic_degrade: scale must be positive, got {scale!r}")
    return imresize(hr, 1.0 / scale)


def gaussian_kernel(
    sigma: float, kernel_size: int | None = None, *, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Normalised 1-D Gaussian; ``kernel_size`` defaults to ``2 * ceil(3 * sigma) + 1``."""
    sigma = _check_sigma(sigma, "gaussian_kernel")
    if kernel_size is None:
        kernel_size = 2 * math.ceil(3 * sigma) + 1
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, numbers.Integral):
        raise ValueError(f"gaussian_kernel: kernel_size must be an odd integer, got {kernel_size!r}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"gaussian_kernel: kernel_size must be odd and positive, got {kernel_size}")
    x = torch.arange(kernel_size, dtype=torch.float64) - kernel_size // 2
    if sigma == 0:
        kernel = (x == 0).to(torch.float64)
    else:
        kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return (kernel / kernel.sum()).to(dtype)


def _reflect_index(length: int, pad: int, device: torch.device) -> torch.Tensor:
    """Indices of ``0..length-1`` padded by ``pad`` with mirror (edge not repeated) reflection.

    Unlike ``F.pad(mode="reflect")`` this works for any ``pad``, also ``pad >= length`` (a wide
    kernel on a tiny MNIST digit): it keeps bouncing between the edges.
    """
    index = torch.arange(-pad, length + pad, device=device)
    if length == 1:
        return torch.zeros_like(index)
    period = 2 * (length - 1)
    index = index.remainder(period)
    return torch.where(index >= length, period - index, index)


def _conv_last(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Correlate the last axis of ``x`` with a symmetric odd 1-D kernel, reflect-padded."""
    pad = kernel.numel() // 2
    padded = x.index_select(-1, _reflect_index(x.shape[-1], pad, x.device))
    flat = padded.reshape(-1, 1, padded.shape[-1])
    return F.conv1d(flat, kernel.view(1, 1, -1)).reshape(x.shape)


def gaussian_blur(img: torch.Tensor, sigma: float, *, kernel_size: int | None = None) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding (mirror without repeating the edge, as
    ``cv2.BORDER_REFLECT_101`` and ``F.pad(mode="reflect")``).

    Args:
        img: Float tensor ``(..., H, W)``.
        sigma: Standard deviation in pixels; 0 returns a copy.
        kernel_size: Odd kernel length; default ``2 * ceil(3 * sigma) + 1``.
    """
    _check_float(img, "gaussian_blur")
    sigma = _check_sigma(sigma, "gaussian_blur")
    kernel = gaussian_kernel(sigma, kernel_size, dtype=img.dtype).to(img.device)
    if kernel.numel() == 1:
        return img.clone()
    out = _conv_last(img, kernel)
    return _conv_last(out.transpose(-1, -2), kernel).transpose(-1, -2).contiguous()


def default_blur_sigma(scale: int) -> float:
    """Default Gaussian sigma of :func:`blur_downsample`: ``(scale - 1) / 2`` (1.5 for x4).

    This is scikit-image's anti-aliasing rule (``rescale(..., anti_aliasing=True)``): it keeps
    most of the energy above the new Nyquist frequency out of the decimated image. The SRGAN
    paper names no sigma; the "BD" degradation of RDN/SRMD uses 1.6 with a 7x7 kernel for x3,
    pass ``sigma=1.6, kernel_size=7`` to reproduce that.
    """
    return (scale - 1) / 2


def blur_downsample(
    img: torch.Tensor, scale: int, *, sigma: float | None = None, kernel_size: int | None = None
) -> torch.Tensor:
    """The SRGAN recipe: Gaussian blur, then keep every ``scale``-th pixel (starting at 0).

    Args:
        img: Float tensor ``(..., H, W)``.
        scale: Integer decimation factor.
        sigma: Blur sigma in HR pixels; default :func:`default_blur_sigma` (1.5 for x4).
        kernel_size: Odd blur kernel length; default ``2 * ceil(3 * sigma) + 1``.

    Returns:
        ``(..., H // scale, W // scale)``: trailing rows/columns that do not fill a whole
        ``scale`` step are dropped.
    """
    _check_float(img, "blur_downsample")
    scale = _check_int_scale(scale, "blur_downsample")
    h, w = _lr_size(img, scale, "blur_downsample")
    blurred = gaussian_blur(
        img, default_blur_sigma(scale) if sigma is None else sigma, kernel_size=kernel_size
    )
    return blurred[..., : h * scale : scale, : w * scale : scale].contiguous()


def _lr_size(img: torch.Tensor, scale: int, name: str) -> tuple[int, int]:
    h, w = img.shape[-2] // scale, img.shape[-1] // scale
    if h == 0 or w == 0:
        raise DataError(
            f"{name}: image of {img.shape[-1]}x{img.shape[-2]} pixels is smaller than the scale {scale}"
        )
    return h, w


def area_downsample(img: torch.Tensor, scale: int) -> torch.Tensor:
    """Box average over ``scale x scale`` blocks (= PIL ``BOX`` / cv2 ``INTER_AREA`` for integer factors).

    Returns ``(..., H // scale, W // scale)``; rows/columns beyond a multiple of ``scale`` are dropped.
    """
    _check_float(img, "area_downsample")
    scale = _check_int_scale(scale, "area_downsample")
    h, w = _lr_size(img, scale, "area_downsample")
    blocks = img[..., : h * scale, : w * scale].reshape(*img.shape[:-2], h, scale, w, scale)
    return blocks.mean(dim=(-3, -1))


def add_gaussian_noise(
    img: torch.Tensor,
    sigma: float,
    *,
    generator: torch.Generator | None = None,
    clip: bool = True,
    gray: bool = False,
) -> torch.Tensor:
    """Add i.i.d. Gaussian noise of standard deviation ``sigma`` given in 0..255 units.

    Args:
        img: Float tensor in ``[0, 1]``, any shape.
        sigma: Noise standard deviation in 0..255 units (``10`` adds ``N(0, (10/255)^2)``).
        generator: Source of the noise (on any device); ``None`` uses a fresh OS-seeded one.
        clip: Clamp the result to ``[0, 1]``.
        gray: One noise image shared by all channels of an image ``(..., C, H, W)`` (luminance
            noise, as a camera's after its denoiser), instead of independent colour noise.
    """
    _check_float(img, "add_gaussian_noise", min_dims=0)
    sigma = _check_sigma(sigma, "add_gaussian_noise")
    gen = resolve_generator(generator)
    shape = (*img.shape[:-3], 1, *img.shape[-2:]) if gray and img.ndim >= 3 else img.shape
    noise = torch.randn(shape, generator=gen, device=gen.device, dtype=img.dtype).to(img.device)
    out = img + noise * (sigma / 255.0)
    return out.clamp(0.0, 1.0) if clip else out


def quantize(img: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Round to the levels of a ``bits``-bit image (``round(x * (2**bits - 1))``, clamped), as saving does."""
    _check_float(img, "quantize", min_dims=0)
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or not 1 <= bits <= 16:
        raise ValueError(f"quantize: bits must be an integer in 1..16, got {bits!r}")
    levels = float(2**bits - 1)
    return (img * levels).round().clamp(0.0, levels) / levels


def _jpeg_one(image: torch.Tensor, quality: int) -> np.ndarray:
    array = (image.detach() * 255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
    pil = Image.fromarray(array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0))
    buffer = io.BytesIO()
    pil.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        out = np.asarray(decoded)
    return out[None] if out.ndim == 2 else out.transpose(2, 0, 1)


def jpeg_compress(img: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode and decode through JPEG with Pillow (default 4:2:0 chroma subsampling for RGB).

    Args:
        img: ``(C, H, W)`` or ``(N, C, H, W)`` float tensor in ``[0, 1]``, ``C`` 1 or 3; each image
            is quantized to 8 bits and compressed on its own.
        quality: Pillow/libjpeg quality, 1 (worst) to 100.

    Returns:
        The decoded image(s), 8-bit levels as floats, same shape, dtype and device. Not differentiable.
    """
    _check_float(img, "jpeg_compress", min_dims=3)
    if img.ndim not in (3, 4) or img.shape[-3] not in (1, 3):
        raise ValueError(
            f"jpeg_compress needs (C, H, W) or (N, C, H, W) with C 1 or 3, got {tuple(img.shape)}"
        )
    if isinstance(quality, bool) or not isinstance(quality, numbers.Integral) or not 1 <= quality <= 100:
        raise ValueError(f"jpeg_compress: quality must be an integer in 1..100, got {quality!r}")
    batch = img.reshape(-1, *img.shape[-3:])
    decoded = np.stack([_jpeg_one(image, int(quality)) for image in batch])
    out = torch.from_numpy(decoded).to(device=img.device, dtype=img.dtype) / 255.0
    return out.reshape(img.shape)


def mnist_degrade(hr: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """The MNIST reference protocol: 4x box average (28x28 -> 7x7), add N(0, 10^2) noise in
    0..255 units, clip to ``[0, 1]``."""
    return add_gaussian_noise(area_downsample(hr, MNIST_SCALE), MNIST_NOISE_SIGMA, generator=generator)
