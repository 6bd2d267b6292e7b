"""Baselines: MATLAB bicubic upscaling (``bicubic``) and SRCNN (``srcnn``).

Both upscale with :func:`gansr.degrade.imresize` (MATLAB ``imresize(..., 'bicubic')``), imported
at call time so ``gansr.models`` does not depend on the degradation package being importable.
The resize runs in float32 (or float64 for float64 input) and is cast back to the input dtype,
so bf16 inputs get a bf16 result without bf16 rounding inside the kernel sums.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gansr.errors import ConfigError
from gansr.models.blocks import Generator, check_int, check_kernel_sizes

__all__ = ["Bicubic", "SRCNN", "bicubic_upscale"]


def bicubic_upscale(x: Tensor, scale: int) -> Tensor:
    """MATLAB-compatible bicubic upscaling of ``(..., H, W)`` by ``scale``, keeping ``x``'s dtype."""
    from gansr.degrade import imresize

    work = x if x.dtype == torch.float64 else x.float()
    with torch.autocast(x.device.type, enabled=False):
        out = imresize(work.contiguous(), scale)
    return out.to(x.dtype)


class Bicubic(Generator):
    """MATLAB-compatible bicubic upscaling with no weights (the SR literature's baseline).

    Any channel count is accepted; ``in_channels`` only records what the baseline stands in for.

    Args:
        in_channels: nominal image channels.
        scale: integer upscaling factor (>= 1).
    """

    arch = "bicubic"

    def __init__(self, in_channels: int = 3, scale: int = 4) -> None:
        check_int(self.arch, "in_channels", in_channels)
        check_int(self.arch, "scale", scale)
        super().__init__(
            {"in_channels": in_channels, "scale": scale},
            scale=scale,
            in_channels=in_channels,
            out_channels=in_channels,
        )

    def forward(self, x: Tensor) -> Tensor:
        """Upscale ``x`` ``(N, C, h, w)`` to ``(N, C, scale*h, scale*w)``."""
        return bicubic_upscale(x, self.scale)


class SRCNN(Generator):
    """SRCNN (Dong et al. 2015), 9-1-5 with 64 and 32 filters by default.

    The network refines the MATLAB-bicubic upscaled input, which it computes itself, so its
    interface is LR -> SR like every other generator. Convolutions are zero-padded ("same") so
    the output has exactly ``scale`` times the input size (the paper's valid convolutions shrink
    it by 12 pixels).

    Args:
        in_channels: image channels (the paper uses 1, the Y channel; 3 works too).
        scale: integer upscaling factor (>= 1).
        widths: filters of the first two layers.
        kernels: kernel sizes of the three layers (odd).
    """

    arch = "srcnn"

    def __init__(
        self,
        in_channels: int = 3,
        scale: int = 4,
        widths: Sequence[int] = (64, 32),
        kernels: Sequence[int] = (9, 1, 5),
    ) -> None:
        check_int(self.arch, "in_channels", in_channels)
        check_int(self.arch, "scale", scale)
        kernels = check_kernel_sizes(self.arch, "kernels", kernels)
        if len(kernels) != 3:
            raise ConfigError(f"model {self.arch!r}: kernels must hold 3 sizes, got {kernels}")
        if isinstance(widths, str | bytes) or not isinstance(widths, Sequence) or len(widths) != 2:
            raise ConfigError(f"model {self.arch!r}: widths must hold 2 filter counts, got {widths!r}")
        widths = [check_int(self.arch, "widths", w) for w in widths]
        super().__init__(
            {"in_channels": in_channels, "scale": scale, "widths": widths, "kernels": kernels},
            scale=scale,
            in_channels=in_channels,
            out_channels=in_channels,
        )
        k1, k2, k3 = kernels
        self.conv1 = nn.Conv2d(in_channels, widths[0], k1, 1, k1 // 2)
        self.conv2 = nn.Conv2d(widths[0], widths[1], k2, 1, k2 // 2)
        self.conv3 = nn.Conv2d(widths[1], in_channels, k3, 1, k3 // 2)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        """Upscale ``x`` ``(N, C, h, w)`` to ``(N, C, scale*h, scale*w)``."""
        self.check_input(x)
        up = bicubic_upscale(x, self.scale)
        return self.conv3(self.relu(self.conv2(self.relu(self.conv1(up)))))
