"""Making LR images from HR images.

- :func:`imresize`: MATLAB-exact bicubic ``imresize`` (the SR benchmarks' LR), in torch.
- :mod:`~gansr.degrade.ops`: :func:`bicubic_degrade`, :func:`gaussian_blur`,
  :func:`blur_downsample` (SRGAN), :func:`area_downsample`, :func:`add_gaussian_noise`,
  :func:`jpeg_compress`, :func:`quantize`, :func:`mnist_degrade` (the MNIST protocol).
- :mod:`~gansr.degrade.kernels`: the real-world model's blur kernels (:func:`anisotropic_kernel`,
  :func:`sinc_kernel`), :func:`filter2d`, :func:`add_poisson_noise` and :func:`unsharp_mask`.
- :class:`Pipeline`: those steps composed from YAML or dicts, with named presets.

Images are float tensors in ``[0, 1]``, ``(C, H, W)`` or ``(N, C, H, W)``; randomness comes only
from the ``torch.Generator`` passed in.
"""

from gansr.degrade.kernels import (
    KERNEL_KINDS,
    add_poisson_noise,
    anisotropic_kernel,
    filter2d,
    sinc_kernel,
    unsharp_mask,
)
from gansr.degrade.ops import (
    MNIST_NOISE_SIGMA,
    MNIST_SCALE,
    add_gaussian_noise,
    area_downsample,
    bicubic_degrade,
    blur_downsample,
    default_blur_sigma,
    gaussian_blur,
    gaussian_kernel,
    jpeg_compress,
    mnist_degrade,
    quantize,
)
from gansr.degrade.pipeline import PRESETS, Pipeline
from gansr.degrade.resize import imresize, imresize_weights

__all__ = [
    "KERNEL_KINDS",
    "MNIST_NOISE_SIGMA",
    "MNIST_SCALE",
    "PRESETS",
    "Pipeline",
    "add_gaussian_noise",
    "add_poisson_noise",
    "anisotropic_kernel",
    "area_downsample",
    "bicubic_degrade",
    "blur_downsample",
    "default_blur_sigma",
    "filter2d",
    "gaussian_blur",
    "gaussian_kernel",
    "imresize",
    "imresize_weights",
    "jpeg_compress",
    "mnist_degrade",
    "quantize",
    "sinc_kernel",
    "unsharp_mask",
]
