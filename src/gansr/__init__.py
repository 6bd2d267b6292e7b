"""gansr: GAN-based single-image super-resolution.

Sub-packages: :mod:`gansr.data` (reading images and datasets), :mod:`gansr.degrade` (making LR
images), :mod:`gansr.metrics` (PSNR, SSIM, NIQE), :mod:`gansr.models` (generators and
discriminators), :mod:`gansr.losses`, :mod:`gansr.upscale` (:class:`gansr.Upscaler`).
"""

from typing import TYPE_CHECKING, Any

from gansr.version import __version__

__all__ = ["Upscaler", "__version__"]

if TYPE_CHECKING:
    from gansr.upscale.upscaler import Upscaler


def __getattr__(name: str) -> Any:
    # Lazy, so `import gansr` (and the CLI start-up) does not import torch.
    if name == "Upscaler":
        from gansr.upscale.upscaler import Upscaler

        return Upscaler
    raise AttributeError(f"module 'gansr' has no attribute {name!r}")
