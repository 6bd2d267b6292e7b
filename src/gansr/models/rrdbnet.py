"""ESRGAN's generator (``rrdbnet``) with the public checkpoints' exact parameter names.

State-dict keys match the ESRGAN / Real-ESRGAN / BasicSR ``RRDBNet`` release: ``conv_first``,
``body.{i}.rdb{1,2,3}.conv{1..5}``, ``conv_body``, ``conv_up1``, ``conv_up2``, ``conv_hr``,
``conv_last``; those checkpoints load with ``load_state_dict`` unchanged.

Scales: 4 is the plain ESRGAN network. As in Real-ESRGAN, x2 and x1 first fold the input with
pixel-unshuffle (x2: ``4 * in_channels`` channels into ``conv_first``, x1: ``16 * in_channels``)
and then run the same two 2x upsampling stages, so their inputs must be multiples of 2 / 4: the
input is reflect-padded to that and the output cropped back. x8 (not in BasicSR) adds a third
upsampling stage ``conv_up3`` after ``conv_up2``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gansr.models.blocks import (
    Generator,
    check_int,
    crop_to,
    default_init_weights,
    make_layer,
    pad_to_multiple,
)

__all__ = ["RRDB", "RRDBNet", "ResidualDenseBlock"]

# Pixel-unshuffle factor applied to the input per scale (Real-ESRGAN's x2/x1 models).
_UNSHUFFLE = {1: 4, 2: 2, 4: 1, 8: 1}


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; output ``x + 0.2 * conv5(...)`` (residual scaling)."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2)
        default_init_weights([self.conv1, self.conv2, self.conv3, self.conv4, self.conv5], 0.1)

    def forward(self, x: Tensor) -> Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    """Residual-in-residual dense block: ``x + 0.2 * rdb3(rdb2(rdb1(x)))``."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: Tensor) -> Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(Generator):
    """ESRGAN / Real-ESRGAN generator: 16,697,987 parameters at the defaults (x4, RGB).

    Args:
        in_channels: image channels (1 or 3); the output has the same count.
        num_feat: feature width (64).
        num_block: number of RRDBs (23 in ESRGAN; Real-ESRGAN's anime model uses 6).
        num_grow_ch: growth channels of the dense blocks (32).
        scale: 1, 2, 4 or 8 (see the module docstring); ``size_multiple`` is 4, 2, 1, 1.
    """

    arch = "rrdbnet"

    def __init__(
        self,
        in_channels: int = 3,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
        scale: int = 4,
    ) -> None:
        check_int(self.arch, "in_channels", in_channels)
        check_int(self.arch, "num_feat", num_feat)
        check_int(self.arch, "num_block", num_block, minimum=0)
        check_int(self.arch, "num_grow_ch", num_grow_ch)
        check_int(self.arch, "scale", scale, choices=tuple(_UNSHUFFLE))
        unshuffle = _UNSHUFFLE[scale]
        super().__init__(
            {
                "in_channels": in_channels,
                "num_feat": num_feat,
                "num_block": num_block,
                "num_grow_ch": num_grow_ch,
                "scale": scale,
            },
            scale=scale,
            in_channels=in_channels,
            out_channels=in_channels,
            size_multiple=unshuffle,
        )
        self.conv_first = nn.Conv2d(in_channels * unshuffle * unshuffle, num_feat, 3, 1, 1)
        self.body = make_layer(lambda: RRDB(num_feat, num_grow_ch), num_block)
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        if scale == 8:
            self.conv_up3 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, in_channels, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2)

    def _up(self, conv: nn.Module, feat: Tensor) -> Tensor:
        return self.lrelu(conv(F.interpolate(feat, scale_factor=2, mode="nearest")))

    def forward(self, x: Tensor) -> Tensor:
        """Upscale ``x`` ``(N, C, h, w)`` (any h, w) to ``(N, C, scale*h, scale*w)``."""
        self.check_input(x)
        h, w = x.shape[-2:]
        feat = pad_to_multiple(x, self.size_multiple)
        if self.size_multiple > 1:
            feat = F.pixel_unshuffle(feat, self.size_multiple)
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = self._up(self.conv_up1, feat)
        feat = self._up(self.conv_up2, feat)
        if self.scale == 8:
            feat = self._up(self.conv_up3, feat)
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        return crop_to(out, self.scale * h, self.scale * w)
