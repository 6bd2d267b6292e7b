"""SRResNet family: SRGAN's generator (``srresnet``) and BasicSR's modified SRResNet (``msrresnet``).

``srresnet`` follows Ledig et al. 2017: a 9x9 head, residual blocks with BatchNorm and PReLU, a
long skip, sub-pixel (PixelShuffle) upsampling and a 9x9 tail. ``msrresnet`` is BasicSR's BN-free
variant used as the standard PSNR baseline; its parameter names are exactly BasicSR's so a BasicSR
``MSRResNet`` state dict loads with ``load_state_dict`` unchanged.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from gansr.models.blocks import (
    Generator,
    ResidualBlockNoBN,
    check_choice,
    check_int,
    default_init_weights,
    make_layer,
)

__all__ = ["MSRResNet", "SRResNet"]


class _BNResidualBlock(nn.Module):
    """SRGAN residual block: conv3x3 -> BN -> PReLU -> conv3x3 -> BN, plus the identity."""

    def __init__(self, num_feat: int, batch_norm: bool) -> None:
        super().__init__()

        def norm() -> nn.Module:
            return nn.BatchNorm2d(num_feat) if batch_norm else nn.Identity()

        self.body = nn.Sequential(
            nn.Conv2d(num_feat, num_feat, 3, 1, 1),
            norm(),
            nn.PReLU(),
            nn.Conv2d(num_feat, num_feat, 3, 1, 1),
            norm(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def _upsample_factors(scale: int) -> list[int]:
    """The PixelShuffle stages for ``scale``: 2 -> [2], 3 -> [3], 4 -> [2, 2], 8 -> [2, 2, 2]."""
    return [3] if scale == 3 else [2] * (scale.bit_length() - 1)


class SRResNet(Generator):
    """SRGAN's generator (SRResNet): 1,549,462 parameters at the defaults (x4, RGB).

    Args:
        in_channels: image channels (1 or 3); the output has the same count.
        num_feat: feature width (64 in the paper).
        num_block: number of residual blocks (16 in the paper).
        scale: 2, 3, 4 or 8 (x3 is one PixelShuffle(3) stage, the others PixelShuffle(2) stages).
        norm: ``"batch"`` (the paper) or ``"none"`` (BN removed, as ESRGAN recommends).
    """

    arch = "srresnet"

    def __init__(
        self,
        in_channels: int = 3,
        num_feat: int = 64,
        num_block: int = 16,
        scale: int = 4,
        norm: str = "batch",
    ) -> None:
        check_int(self.arch, "in_channels", in_channels)
        check_int(self.arch, "num_feat", num_feat)
        check_int(self.arch, "num_block", num_block, minimum=0)
        check_int(self.arch, "scale", scale, choices=(2, 3, 4, 8))
        check_choice(self.arch, "norm", norm, ("batch", "none"))
        super().__init__(
            {
                "in_channels": in_channels,
                "num_feat": num_feat,
                "num_block": num_block,
                "scale": scale,
                "norm": norm,
            },
            scale=scale,
            in_channels=in_channels,
            out_channels=in_channels,
        )
        batch_norm = norm == "batch"
        self.conv_first = nn.Sequential(nn.Conv2d(in_channels, num_feat, 9, 1, 4), nn.PReLU())
        self.body = make_layer(lambda: _BNResidualBlock(num_feat, batch_norm), num_block)
        self.conv_body = nn.Sequential(
            nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.BatchNorm2d(num_feat) if batch_norm else nn.Identity()
        )
        self.upsample = nn.Sequential(
            *(
                nn.Sequential(nn.Conv2d(num_feat, num_feat * f * f, 3, 1, 1), nn.PixelShuffle(f), nn.PReLU())
                for f in _upsample_factors(scale)
            )
        )
        self.conv_last = nn.Conv2d(num_feat, in_channels, 9, 1, 4)

    def forward(self, x: Tensor) -> Tensor:
        """Upscale ``x`` ``(N, C, h, w)`` to ``(N, C, scale*h, scale*w)``."""
        self.check_input(x)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        return self.conv_last(self.upsample(feat))


class MSRResNet(Generator):
    """BasicSR's modified SRResNet (no BN): the common PSNR-oriented baseline.

    Parameter names are BasicSR's (``conv_first``, ``body.{i}.conv1``, ``body.{i}.conv2``,
    ``upconv1``, ``upconv2``, ``conv_hr``, ``conv_last``), so its checkpoints load directly.

    Args:
        in_channels: image channels (1 or 3); the output has the same count (global skip).
        num_feat: feature width (64).
        num_block: residual blocks (16).
        scale: 2, 3 or 4, as in BasicSR.
        upsample_skip: how the input is upsampled for the global skip: ``"bilinear"`` (BasicSR)
            or ``"bicubic"`` (torch's bicubic, ``align_corners=False``).
    """

    arch = "msrresnet"

    def __init__(
        self,
        in_channels: int = 3,
        num_feat: int = 64,
        num_block: int = 16,
        scale: int = 4,
        upsample_skip: str = "bilinear",
    ) -> None:
        check_int(self.arch, "in_channels", in_channels)
        check_int(self.arch, "num_feat", num_feat)
        check_int(self.arch, "num_block", num_block, minimum=0)
        check_int(self.arch, "scale", scale, choices=(2, 3, 4))
        check_choice(self.arch, "upsample_skip", upsample_skip, ("bilinear", "bicubic"))
        super().__init__(
            {
                "in_channels": in_channels,
                "num_feat": num_feat,
                "num_block": num_block,
                "scale": scale,
                "upsample_skip": upsample_skip,
            },
            scale=scale,
            in_channels=in_channels,
            out_channels=in_channels,
        )
        self.upsample_skip = upsample_skip
        self.conv_first = nn.Conv2d(in_channels, num_feat, 3, 1, 1)
        self.body = make_layer(lambda: ResidualBlockNoBN(num_feat), num_block)
        if scale in (2, 3):
            self.upconv1 = nn.Conv2d(num_feat, num_feat * scale * scale, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(scale)
        else:
            self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.upconv2 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(2)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, in_channels, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.1)
        init = [self.conv_first, self.upconv1, self.conv_hr, self.conv_last]
        if scale == 4:
            init.append(self.upconv2)
        default_init_weights(init, 0.1)

    def forward(self, x: Tensor) -> Tensor:
        """Upscale ``x`` ``(N, C, h, w)`` to ``(N, C, scale*h, scale*w)``."""
        self.check_input(x)
        out = self.body(self.lrelu(self.conv_first(x)))
        out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))
        if self.scale == 4:
            out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))
        out = self.conv_last(self.lrelu(self.conv_hr(out)))
        base = F.interpolate(x, scale_factor=self.scale, mode=self.upsample_skip, align_corners=False)
        return out + base
