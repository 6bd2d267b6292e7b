"""The modified SRGAN generator (``msrgan``): multi-kernel features, ELU residual blocks, upsizing conv.

Design (STL-10 12x12 -> 48x48, x4):

1. feature extraction: parallel convs with several kernel sizes (default 3, 5, 7, 9; each
   ``num_feat`` channels, ELU) see several receptive fields at once; their concatenation is fused
   back to ``num_feat`` channels by a 1x1 conv;
2. residual blocks with ELU and more convs per block (default 3), plus a long skip;
3. reconstruction by "upsizing convolution" instead of PixelShuffle: per factor of two, either a
   nearest/bilinear 2x resize followed by a 3x3 conv (``upsample="resize_conv"``, free of
   checkerboard artefacts) or a stride-2 transposed conv (``upsample="transposed"``, k4 s2 p1);
4. a final conv (kernel ``final_kernel``) to the image channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gansr.models.blocks import (
    Generator,
    check_choice,
    check_int,
    check_kernel_sizes,
    check_power_of_two,
    num_doublings,
)

__all__ = ["MSRGANGenerator"]


class _ELUResidualBlock(nn.Module):
    """``num_convs`` 3x3 convs with ELU between them, plus the identity."""

    def __init__(self, num_feat: int, num_convs: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(num_convs):
            layers.append(nn.Conv2d(num_feat, num_feat, 3, 1, 1))
            if i < num_convs - 1:
                layers.append(nn.ELU())
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class _Upsize(nn.Module):
    """One 2x "upsizing convolution" stage followed by ELU."""

    def __init__(self, num_feat: int, upsample: str, resize_mode: str) -> None:
        super().__init__()
        self.resize_mode = resize_mode if upsample == "resize_conv" else None
        if self.resize_mode is None:
            self.conv: nn.Module = nn.ConvTranspose2d(num_feat, num_feat, 4, 2, 1)
        else:
            self.conv = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.act = nn.ELU()

    def forward(self, x: Tensor) -> Tensor:
        if self.resize_mode == "nearest":
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        elif self.resize_mode == "bilinear":
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return self.act(self.conv(x))


class MSRGANGenerator(Generator):
    """Modified SRGAN generator (multi-kernel feature fusion, ELU residual blocks, upsizing conv).

    Args:
        in_channels: image channels (1 or 3); the output has the same count.
        num_feat: feature width, also the width of each feature-extraction branch.
        kernels: kernel sizes of the parallel feature-extraction convs (odd).
        num_block: residual blocks.
        convs_per_block: 3x3 convs in each residual block (the design's "more conv layers").
        scale: a power of two (one upsizing stage per factor of two).
        upsample: ``"resize_conv"`` or ``"transposed"``.
        resize_mode: ``"nearest"`` or ``"bilinear"`` resize for ``resize_conv``.
        final_kernel: kernel size of the last conv (odd).
    """

    arch = "msrgan"

    def __init__(
        self,
        in_channels: int = 3,
        num_feat: int = 64,
        kernels: Sequence[int] = (3, 5, 7, 9),
        num_block: int = 8,
        convs_per_block: int = 3,
        scale: int = 4,
        upsample: str = "resize_conv",
        resize_mode: str = "nearest",
        final_kernel: int = 3,
    ) -> None:
        check_int(self.arch, "in_channels", in_channels)
        check_int(self.arch, "num_feat", num_feat)
        kernels = check_kernel_sizes(self.arch, "kernels", kernels)
        check_int(self.arch, "num_block", num_block, minimum=0)
        check_int(self.arch, "convs_per_block", convs_per_block)
        check_power_of_two(self.arch, "scale", scale)
        check_choice(self.arch, "upsample", upsample, ("resize_conv", "transposed"))
        check_choice(self.arch, "resize_mode", resize_mode, ("nearest", "bilinear"))
        check_kernel_sizes(self.arch, "final_kernel", [final_kernel])
        super().__init__(
            {
                "in_channels": in_channels,
                "num_feat": num_feat,
                "kernels": kernels,
                "num_block": num_block,
                "convs_per_block": convs_per_block,
                "scale": scale,
                "upsample": upsample,
                "resize_mode": resize_mode,
                "final_kernel": final_kernel,
            },
            scale=scale,
            in_channels=in_channels,
            out_channels=in_channels,
        )
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels, num_feat, k, 1, k // 2), nn.ELU()) for k in kernels
        )
        self.fuse = nn.Sequential(nn.Conv2d(num_feat * len(kernels), num_feat, 1), nn.ELU())
        self.body = nn.Sequential(*(_ELUResidualBlock(num_feat, convs_per_block) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.upsample = nn.Sequential(
            *(_Upsize(num_feat, upsample, resize_mode) for _ in range(num_doublings(scale)))
        )
        self.conv_last = nn.Conv2d(num_feat, in_channels, final_kernel, 1, final_kernel // 2)

    def forward(self, x: Tensor) -> Tensor:
        """Upscale ``x`` ``(N, C, h, w)`` to ``(N, C, scale*h, scale*w)``."""
        self.check_input(x)
        feat = self.fuse(torch.cat([branch(x) for branch in self.branches], 1))
        feat = feat + self.conv_body(self.body(feat))
        return self.conv_last(self.upsample(feat))
