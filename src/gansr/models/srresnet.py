"""SRResNet family: SRGAN's generator (``srresnet``) and BasicSR's modified SRResNet (``msrresnet``).

``srresnet`` follows Ledig et al. 2017: a 9x9 head, residual blocks with BatchNorm and PReLU, a
long skip, sub-pixel (PixelShuffle) upsampling and a 9x9 tail. ``msrresnet`` is BasicSR's BN-free
variant used as the standard PSNR baseline; its parameter names are exactly BasicSR's so a BasicSR
``MSRResNet`` state dict loads with ``load_state_dict`` unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gansr.errors import ModelError
from gansr.models.attention import WindowAttention, check_attention
from gansr.models.blocks import (
    Generator,
    ResidualBlockNoBN,
    _check_batch,
    check_choice,
    check_int,
    default_init_weights,
    layer,
    make_layer,
    norm_layer,
)
from gansr.models.fused import (
    ActivationWidths,
    FusedConv2d,
    FusedGenerator,
    conv_after_pixel_shuffle,
    prelu_slope,
    tail_halo,
)

__all__ = ["FusedMSRResNet", "FusedSRResNet", "MSRResNet", "SRResNet"]


class _BNResidualBlock(nn.Module):
    """SRGAN residual block: conv3x3 -> BN -> PReLU -> conv3x3 -> BN, plus the identity.

    The layers stay in ``body`` (state-dict keys ``body.0`` ... ``body.4``, as checkpoints hold
    them); :attr:`conv1`, :attr:`bn1`, :attr:`act`, :attr:`conv2` and :attr:`bn2` name them,
    checked (:func:`gansr.models.blocks.layer`). Without BatchNorm the norms are ``nn.Identity``.
    """

    def __init__(self, num_feat: int, batch_norm: bool) -> None:
        super().__init__()
        self.batch_norm = batch_norm

        def norm() -> nn.Module:
            return nn.BatchNorm2d(num_feat) if batch_norm else nn.Identity()

        self.body = nn.Sequential(
            nn.Conv2d(num_feat, num_feat, 3, 1, 1),
            norm(),
            nn.PReLU(),
            nn.Conv2d(num_feat, num_feat, 3, 1, 1),
            norm(),
        )

    @property
    def conv1(self) -> nn.Conv2d:
        return layer(self, "body.0", nn.Conv2d, of=5)

    @property
    def bn1(self) -> nn.BatchNorm2d | None:
        return norm_layer(self, "body.1", batch_norm=self.batch_norm, of=5)

    @property
    def act(self) -> nn.PReLU:
        return layer(self, "body.2", nn.PReLU, of=5)

    @property
    def conv2(self) -> nn.Conv2d:
        return layer(self, "body.3", nn.Conv2d, of=5)

    @property
    def bn2(self) -> nn.BatchNorm2d | None:
        return norm_layer(self, "body.4", batch_norm=self.batch_norm, of=5)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class _ConvPReLU(nn.Sequential):
    """``conv`` then ``act`` (a PReLU); keys ``0.*`` and ``1.*``."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__(conv, nn.PReLU())

    @property
    def conv(self) -> nn.Conv2d:
        return layer(self, "0", nn.Conv2d, of=2)

    @property
    def act(self) -> nn.PReLU:
        return layer(self, "1", nn.PReLU, of=2)


class _ConvNorm(nn.Sequential):
    """``conv`` then ``bn`` (a BatchNorm2d, or ``nn.Identity`` without BatchNorm); keys ``0.*``, ``1.*``."""

    def __init__(self, num_feat: int, batch_norm: bool) -> None:
        super().__init__(
            nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.BatchNorm2d(num_feat) if batch_norm else nn.Identity()
        )
        self.batch_norm = batch_norm

    @property
    def conv(self) -> nn.Conv2d:
        return layer(self, "0", nn.Conv2d, of=2)

    @property
    def bn(self) -> nn.BatchNorm2d | None:
        return norm_layer(self, "1", batch_norm=self.batch_norm, of=2)


class _UpsampleStage(nn.Sequential):
    """Sub-pixel upsampling by ``factor``: ``conv`` (to ``factor**2`` times the channels),
    ``shuffle`` (PixelShuffle), ``act`` (PReLU); keys ``0.*``, ``1.*``, ``2.*``."""

    def __init__(self, num_feat: int, factor: int) -> None:
        super().__init__(
            nn.Conv2d(num_feat, num_feat * factor * factor, 3, 1, 1), nn.PixelShuffle(factor), nn.PReLU()
        )

    @property
    def conv(self) -> nn.Conv2d:
        return layer(self, "0", nn.Conv2d, of=3)

    @property
    def shuffle(self) -> nn.PixelShuffle:
        return layer(self, "1", nn.PixelShuffle, of=3)

    @property
    def act(self) -> nn.PReLU:
        return layer(self, "2", nn.PReLU, of=3)


def _one_slope(prelu: nn.PReLU) -> float:
    """The slope of a one-parameter PReLU (the fused form runs it as a LeakyReLU)."""
    slope = prelu_slope(prelu)
    if slope is None:
        raise ModelError(f"PReLU with {prelu.weight.numel()} slopes, expected one")
    return slope


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
        attention: windowed self-attention blocks (:mod:`gansr.models.attention`) spread evenly
            between the residual blocks, at LR resolution; 0 (the paper) for none. Consecutive
            ones alternate shifted windows.
        attention_window: their window side in LR pixels (memory and time linear in the image).
        attention_heads: their heads (must divide ``num_feat``).
    """

    arch = "srresnet"

    def __init__(
        self,
        in_channels: int = 3,
        num_feat: int = 64,
        num_block: int = 16,
        scale: int = 4,
        norm: str = "batch",
        attention: int = 0,
        attention_window: int = 8,
        attention_heads: int = 4,
    ) -> None:
        check_int(self.arch, "in_channels", in_channels)
        check_int(self.arch, "num_feat", num_feat)
        check_int(self.arch, "num_block", num_block, minimum=0)
        check_int(self.arch, "scale", scale, choices=(2, 3, 4, 8))
        check_choice(self.arch, "norm", norm, ("batch", "none"))
        check_int(self.arch, "attention", attention, minimum=0)
        config = {
            "in_channels": in_channels,
            "num_feat": num_feat,
            "num_block": num_block,
            "scale": scale,
            "norm": norm,
            "attention": attention,
            "attention_window": attention_window,
            "attention_heads": attention_heads,
        }
        if attention:
            check_attention(self.arch, num_feat, attention_heads, attention_window)
        super().__init__(config, scale=scale, in_channels=in_channels, out_channels=in_channels)
        batch_norm = norm == "batch"
        self.conv_first = _ConvPReLU(nn.Conv2d(in_channels, num_feat, 9, 1, 4))
        self.body = make_layer(lambda: _BNResidualBlock(num_feat, batch_norm), num_block)
        if attention:
            # After residual blocks k * num_block / (attention + 1): evenly through the body.
            layers: list[nn.Module] = list(self.body)
            for k in range(attention, 0, -1):
                shift = (k - 1) % 2 == 1
                block = WindowAttention(num_feat, heads=attention_heads, window=attention_window, shift=shift)
                layers.insert(round(k * num_block / (attention + 1)), block)
            self.body = nn.Sequential(*layers)
        self.conv_body = _ConvNorm(num_feat, batch_norm)
        self.upsample = nn.Sequential(*(_UpsampleStage(num_feat, f) for f in _upsample_factors(scale)))
        self.conv_last = nn.Conv2d(num_feat, in_channels, 9, 1, 4)

    def forward(self, x: Tensor) -> Tensor:
        """Upscale ``x`` ``(N, C, h, w)`` to ``(N, C, scale*h, scale*w)``."""
        self.check_input(x)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        return self.conv_last(self.upsample(feat))

    def fuse_for_inference(
        self, dtype: torch.dtype = torch.float32, channels_last: bool = True
    ) -> FusedSRResNet | None:
        """An inference-only copy computing the same function faster (see :class:`FusedSRResNet`);
        None when a PReLU has one slope per channel (not expressible as a fused LeakyReLU) or the
        body has attention blocks (the fused body is convolutions only)."""
        if self.config.get("attention"):
            return None
        prelus = [m for m in self.modules() if isinstance(m, nn.PReLU)]
        if any(prelu_slope(m) is None for m in prelus):
            return None
        return FusedSRResNet(self, dtype=dtype, channels_last=channels_last)


class FusedSRResNet(FusedGenerator):
    """Inference-only :class:`SRResNet` (eval semantics): the same function with fewer memory passes.

    * BatchNorm is folded into the convolutions and the one-parameter PReLUs run as fused
      LeakyReLU post-ops (PReLU after PixelShuffle commutes with it, so it fuses into the conv
      before); residual adds are fused into the second conv of each block and into ``conv_body``.
    * ``conv_last`` (9x9, 64 -> 3 at full resolution, which oneDNN runs at a fraction of its
      speed) is rewritten to act before the last PixelShuffle (:func:`conv_after_pixel_shuffle`):
      256 -> 12 channels, 5x5, on a quarter of the pixels.
    * The upsampling tail runs in tiles with an exact halo (:func:`gansr.engine.tiles.run_exact`).
    """

    def _build(self, model: SRResNet) -> ActivationWidths:
        kw = self.conv_kw
        head = layer(model, "conv_first", _ConvPReLU)
        self.conv_first = FusedConv2d(head.conv, negative_slope=_one_slope(head.act), **kw)
        self.blocks = nn.ModuleList()
        for i in range(len(model.body)):
            block = layer(model, f"body.{i}", _BNResidualBlock)
            conv1 = FusedConv2d(block.conv1, bn=block.bn1, negative_slope=_one_slope(block.act), **kw)
            self.blocks.append(nn.ModuleList([conv1, FusedConv2d(block.conv2, bn=block.bn2, **kw)]))
        body_end = layer(model, "conv_body", _ConvNorm)
        self.conv_body = FusedConv2d(body_end.conv, bn=body_end.bn, **kw)
        self.ups = nn.ModuleList()
        self.factors: list[int] = []
        for i in range(len(model.upsample)):
            stage = layer(model, f"upsample.{i}", _UpsampleStage)
            self.ups.append(FusedConv2d(stage.conv, negative_slope=_one_slope(stage.act), **kw))
            self.factors.append(stage.shuffle.upscale_factor)
        if not self.factors or math.prod(self.factors) != self.scale:
            raise ModelError(f"upsample stages by {self.factors} do not make scale {self.scale}")
        w, b, pad = conv_after_pixel_shuffle(layer(model, "conv_last", nn.Conv2d), self.factors[-1])
        self.conv_last = FusedConv2d(weight=w, bias=b, padding=pad, **kw)
        layers, resolution = [], 1
        for conv, f in zip(self.ups, self.factors, strict=True):
            layers.append((conv.padding, resolution))
            resolution *= f
        layers.append((pad, resolution // self.factors[-1]))
        self.tail_halo = tail_halo(layers, self.scale)
        num_feat = self.conv_first.out_channels
        # The body holds the long skip, a block's input and its two conv outputs.
        return ActivationWidths(body=4 * num_feat, kept=num_feat, tail=num_feat)

    def _tail(self, feat: Tensor) -> Tensor:
        for conv, f in zip(self.ups[:-1], self.factors[:-1], strict=True):
            feat = F.pixel_shuffle(conv(feat), f)
        # conv_last runs before the last PixelShuffle (see the class docstring).
        return F.pixel_shuffle(self.conv_last(self.ups[-1](feat)), self.factors[-1])

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, h, w)`` (any float dtype) -> float32 ``(N, C, scale*h, scale*w)``."""
        _check_batch(self.arch, self.in_channels, x)
        feat = x.to(self.dtype).contiguous(memory_format=self.memory_format)
        feat = self.conv_first(feat)
        body = feat
        for conv1, conv2 in self.blocks:
            body = conv2(conv1(body), residual=body)
        feat = self.conv_body(body, residual=feat)
        del body
        return self._run_tail(feat)


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
        tail: ``"basicsr"``: BasicSR's upsampler (conv + PixelShuffle x2 per factor of 2, then
            ``conv_hr`` and ``conv_last`` at the output size); ``"subpixel"``: one conv from the
            features to ``in_channels * scale**2`` channels and a single PixelShuffle (ESPCN/IMDN
            style). The BasicSR tail costs as much as the 16-block body (its last two convolutions
            run at 16x the pixels); the sub-pixel tail halves the work per pixel, which buys twice
            the training iterations for the same time. Parameter names: ``upconv1`` only.
    """

    arch = "msrresnet"

    def __init__(
        self,
        in_channels: int = 3,
        num_feat: int = 64,
        num_block: int = 16,
        scale: int = 4,
        upsample_skip: str = "bilinear",
        tail: str = "basicsr",
    ) -> None:
        check_int(self.arch, "in_channels", in_channels)
        check_int(self.arch, "num_feat", num_feat)
        check_int(self.arch, "num_block", num_block, minimum=0)
        check_int(self.arch, "scale", scale, choices=(2, 3, 4))
        check_choice(self.arch, "upsample_skip", upsample_skip, ("bilinear", "bicubic"))
        check_choice(self.arch, "tail", tail, ("basicsr", "subpixel"))
        super().__init__(
            {
                "in_channels": in_channels,
                "num_feat": num_feat,
                "num_block": num_block,
                "scale": scale,
                "upsample_skip": upsample_skip,
                "tail": tail,
            },
            scale=scale,
            in_channels=in_channels,
            out_channels=in_channels,
        )
        self.upsample_skip = upsample_skip
        self.tail = tail
        self.conv_first = nn.Conv2d(in_channels, num_feat, 3, 1, 1)
        self.body = make_layer(lambda: ResidualBlockNoBN(num_feat), num_block)
        self.lrelu = nn.LeakyReLU(0.1)
        if tail == "subpixel":
            self.upconv1 = nn.Conv2d(num_feat, in_channels * scale * scale, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(scale)
            default_init_weights([self.conv_first, self.upconv1], 0.1)
            return
        if scale in (2, 3):
            self.upconv1 = nn.Conv2d(num_feat, num_feat * scale * scale, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(scale)
        else:
            self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.upconv2 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(2)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, in_channels, 3, 1, 1)
        init = [self.conv_first, self.upconv1, self.conv_hr, self.conv_last]
        if scale == 4:
            init.append(self.upconv2)
        default_init_weights(init, 0.1)

    def forward(self, x: Tensor) -> Tensor:
        """Upscale ``x`` ``(N, C, h, w)`` to ``(N, C, scale*h, scale*w)``."""
        self.check_input(x)
        out = self.body(self.lrelu(self.conv_first(x)))
        if self.tail == "subpixel":
            out = self.pixel_shuffle(self.upconv1(out))
        else:
            out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))
            if self.scale == 4:
                out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))
            out = self.conv_last(self.lrelu(self.conv_hr(out)))
        base = F.interpolate(x, scale_factor=self.scale, mode=self.upsample_skip, align_corners=False)
        return out + base

    def fuse_for_inference(
        self, dtype: torch.dtype = torch.float32, channels_last: bool = True
    ) -> FusedMSRResNet:
        """An inference-only copy computing the same function faster (see :class:`FusedMSRResNet`)."""
        return FusedMSRResNet(self, dtype=dtype, channels_last=channels_last)


class FusedMSRResNet(FusedGenerator):
    """Inference-only :class:`MSRResNet`: ReLU/LeakyReLU and the residual adds run inside the
    convolutions (LeakyReLU after PixelShuffle commutes with it), and the upsampling tail, with the
    interpolated global skip added by ``conv_last``, runs in tiles with an exact halo."""

    def _build(self, model: MSRResNet) -> ActivationWidths:
        kw = self.conv_kw
        self.upsample_skip = model.upsample_skip
        slope = layer(model, "lrelu", nn.LeakyReLU).negative_slope
        self.conv_first = FusedConv2d(layer(model, "conv_first", nn.Conv2d), negative_slope=slope, **kw)
        self.blocks = nn.ModuleList()
        for i in range(len(model.body)):
            block = layer(model, f"body.{i}", ResidualBlockNoBN)
            layer(block, "relu", nn.ReLU)
            conv1 = FusedConv2d(layer(block, "conv1", nn.Conv2d), negative_slope=0.0, **kw)
            conv2 = FusedConv2d(layer(block, "conv2", nn.Conv2d), scale=block.res_scale, **kw)
            self.blocks.append(nn.ModuleList([conv1, conv2]))
        self.subpixel = model.tail == "subpixel"
        self.factor = layer(model, "pixel_shuffle", nn.PixelShuffle).upscale_factor
        names = ["upconv1"] + (["upconv2"] if model.scale == 4 and not self.subpixel else [])
        if self.factor ** len(names) != self.scale:
            raise ModelError(f"{len(names)} PixelShuffle({self.factor}) stage(s) do not make x{self.scale}")
        if self.subpixel:  # one conv and PixelShuffle(scale), then the skip is added
            self.ups = nn.ModuleList([FusedConv2d(layer(model, "upconv1", nn.Conv2d), **kw)])
            self.conv_hr = self.conv_last = None
            layers = [(1, 1)]
        else:
            self.ups = nn.ModuleList(
                FusedConv2d(layer(model, name, nn.Conv2d), negative_slope=slope, **kw) for name in names
            )
            self.conv_hr = FusedConv2d(layer(model, "conv_hr", nn.Conv2d), negative_slope=slope, **kw)
            self.conv_last = FusedConv2d(layer(model, "conv_last", nn.Conv2d), **kw)
            layers = [(1, self.factor**i) for i in range(len(names))] + [(1, self.scale)] * 2
        # Bilinear reads 1 input pixel around each output pixel, bicubic 2.
        self.tail_halo = max(tail_halo(layers, self.scale), 1 if self.upsample_skip == "bilinear" else 2)
        num_feat = self.conv_first.out_channels
        tail = self.out_channels if self.conv_hr is None else self.conv_hr.out_channels
        # Four feature maps in the body; the tail keeps the body output and the LR image.
        return ActivationWidths(body=4 * num_feat, kept=num_feat + self.in_channels, tail=tail)

    def _tail(self, feat_and_image: Tensor) -> Tensor:
        feat, image = feat_and_image[:, : -self.in_channels], feat_and_image[:, -self.in_channels :]
        for conv in self.ups:
            feat = F.pixel_shuffle(conv(feat), self.factor)
        base = F.interpolate(
            image.float(), scale_factor=self.scale, mode=self.upsample_skip, align_corners=False
        )
        base = base.to(self.dtype).contiguous(memory_format=self.memory_format)
        if self.conv_last is None:
            return feat.add_(base)
        return self.conv_last(self.conv_hr(feat), residual=base)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, h, w)`` (any float dtype) -> float32 ``(N, C, scale*h, scale*w)``."""
        _check_batch(self.arch, self.in_channels, x)
        inp = x.to(self.dtype).contiguous(memory_format=self.memory_format)
        body = self.conv_first(inp)
        for conv1, conv2 in self.blocks:
            body = conv2(conv1(body), residual=body)
        # The tail needs the LR image too (global skip): one tensor, so the tiles cut both alike.
        both = torch.cat((body, x.to(self.dtype).contiguous(memory_format=self.memory_format)), 1)
        del body
        return self._run_tail(both)
