"""gansr: GAN-based single-image super-resolution.

Sub-packages: :mod:`gansr.data` (reading images and datasets), :mod:`gansr.degrade` (making LR
images), :mod:`gansr.metrics` (PSNR, SSIM, NIQE), :mod:`gansr.models` (generators and
discriminators), :mod:`gansr.losses`.
"""

__version__ = "0.1.0"
