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

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gansr.errors import ModelError
from gansr.models.blocks import (
    Generator,
    _check_batch,
    check_int,
    crop_to,
    default_init_weights,
    layer,
    make_layer,
    pad_to_multiple,
)
from gansr.models.fused import (
    ActivationWidths,
    FusedConv2d,
    FusedGenerator,
    FusedNearestUpConv,
    tail_halo,
    winograd_kernel_fits,
)

__all__ = ["RRDB", "FusedRRDBNet", "RRDBNet", "ResidualDenseBlock"]

# Pixel-unshuffle factor applied to the input per scale (Real-ESRGAN's x2/x1 models).
_UNSHUFFLE = {1: 4, 2: 2, 4: 1, 8: 1}


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; output ``x + res_scale * conv5(...)`` (residual scaling).

    ``conv_k`` reads ``cat(x, x1, ..., x_{k-1})`` (``num_feat + (k - 1) * num_grow_ch`` channels)
    and ``lrelu`` follows conv1..conv4.
    """

    res_scale: ClassVar[float] = 0.2

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
        return x5 * self.res_scale + x

    def convs(self) -> list[nn.Conv2d]:
        """``conv1`` ... ``conv5``, checked to be convolutions of the dense widths (ModelError if not)."""
        convs = [layer(self, f"conv{k}", nn.Conv2d) for k in range(1, 6)]
        num_feat, grow = convs[0].in_channels, convs[0].out_channels
        for k, conv in enumerate(convs):
            want = (num_feat + k * grow, num_feat if k == 4 else grow)
            if (conv.in_channels, conv.out_channels) != want:
                got = f"{conv.in_channels} -> {conv.out_channels}"
                raise ModelError(
                    f"ResidualDenseBlock.conv{k + 1} maps {got} channels, expected {want[0]} -> {want[1]}"
                )
        return convs


class RRDB(nn.Module):
    """Residual-in-residual dense block: ``x + res_scale * rdb3(rdb2(rdb1(x)))``."""

    res_scale: ClassVar[float] = 0.2

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: Tensor) -> Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * self.res_scale + x

    def rdbs(self) -> list[ResidualDenseBlock]:
        """``rdb1``, ``rdb2``, ``rdb3``, checked to be :class:`ResidualDenseBlock` (ModelError if not)."""
        return [layer(self, f"rdb{k}", ResidualDenseBlock) for k in (1, 2, 3)]


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

    def fuse_for_inference(
        self, dtype: torch.dtype = torch.float32, channels_last: bool = True
    ) -> FusedRRDBNet:
        """An inference-only copy computing the same function faster (see :class:`FusedRRDBNet`)."""
        return FusedRRDBNet(self, dtype=dtype, channels_last=channels_last)


class _FusedRDB(nn.Module):
    """:class:`ResidualDenseBlock` for inference, in one of two forms.

    * **Dense buffer** (with the Winograd kernel, :mod:`gansr.kernels.winograd`): one
      channels-last tensor holds ``x, x1..x4`` side by side; ``conv_k`` reads its first channels
      (a strided view, no copy) and writes ``x_k`` straight into its slice, LeakyReLU fused, and
      conv5 adds the residual ``x`` in the same kernel. The only extra pass is copying ``x`` in.
    * **Split** (oneDNN): ``conv_k(cat(x, x1, ..., x_{k-1}))`` computed as
      ``conv_k|x(x) + conv_k|x1(x1) + ...``, the same convolution split along its input channels:
      the first slice runs out of place (with the bias, and for conv5 the residual ``x`` fused in),
      the others add into it in place through oneDNN's sum post-op. oneDNN reads only dense
      tensors fast, and a channels-last ``torch.cat`` is a strided copy that took ~17% of the
      block's time.

    conv5's weights carry the residual scale.
    """

    def __init__(self, rdb: ResidualDenseBlock, dtype: torch.dtype, channels_last: bool) -> None:
        super().__init__()
        kw = {"dtype": dtype, "channels_last": channels_last}
        convs = rdb.convs()
        self.negative_slope = slope = layer(rdb, "lrelu", nn.LeakyReLU).negative_slope
        res_scale = rdb.res_scale
        self.num_feat = num_feat = convs[0].in_channels
        self.num_grow_ch = grow = convs[0].out_channels
        last = len(convs) - 1
        self.dense = (
            channels_last
            and all(c.kernel_size == (3, 3) for c in convs)
            and all(winograd_kernel_fits(c.in_channels, c.out_channels, dtype) for c in convs)
        )
        if self.dense:
            self.convs = nn.ModuleList(
                FusedConv2d(c, scale=res_scale, **kw)
                if k == last
                else FusedConv2d(c, negative_slope=slope, **kw)
                for k, c in enumerate(convs)
            )
            return
        self.parts = nn.ModuleList()
        for k, conv in enumerate(convs):
            bounds = [0, num_feat] + [num_feat + grow * j for j in range(1, k + 1)]
            self.parts.append(
                nn.ModuleList(
                    FusedConv2d(
                        weight=conv.weight[:, lo:hi],
                        bias=conv.bias,
                        padding=conv.padding[0],
                        scale=res_scale if k == last else 1.0,
                        with_bias=j == 0,
                        # conv1 has one slice, so its LeakyReLU fuses; the others apply it after the sum.
                        negative_slope=slope if k == 0 else None,
                        allow_winograd=False,
                        **kw,
                    )
                    for j, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))
                )
            )

    def forward(self, x: Tensor, *, out: Tensor | None = None, buffer: Tensor | None = None) -> Tensor:
        """The block's output, written into ``out`` when given (in the dense form ``out`` may be
        ``x`` itself: ``x`` is copied into the buffer before anything is written). ``buffer`` is
        the dense form's workspace, :meth:`new_buffer`, reusable from block to block."""
        if not self.dense:
            y = self._forward_split(x)
            return y if out is None else out.copy_(y)
        c = x.shape[1]
        buf = self.new_buffer(x) if buffer is None else buffer
        *growing, conv5 = self.convs
        buf[:, :c].copy_(x)
        lo = c
        for conv in growing:
            conv(buf[:, :lo], out=buf[:, lo : lo + conv.out_channels])
            lo += conv.out_channels
        return conv5(buf, residual=buf[:, :c], out=out)

    def new_buffer(self, x: Tensor) -> Tensor:
        """The dense form's workspace for inputs shaped like ``x``: ``x, x1..x4`` side by side."""
        n, _, h, w = x.shape
        width = self.convs[-1].weight.shape[1]
        fmt = torch.channels_last
        return torch.empty((n, width, h, w), dtype=x.dtype, device=x.device, memory_format=fmt)

    def _forward_split(self, x: Tensor) -> Tensor:
        feats = [x]
        last = len(self.parts) - 1
        for k, parts in enumerate(self.parts):
            acc = parts[0](x, residual=x) if k == last else parts[0](x)
            for part, feat in zip(parts[1:], feats[1:], strict=True):
                part.accumulate_(acc, feat)
            if k == last:
                return acc
            if k > 0:
                F.leaky_relu(acc, self.negative_slope, inplace=True)
            feats.append(acc)
        raise AssertionError("unreachable")


class FusedRRDBNet(FusedGenerator):
    """Inference-only :class:`RRDBNet`: the same function with fewer passes over memory.

    * Dense blocks without concatenations (see :class:`_FusedRDB`); LeakyReLU and the residual
      ``x + 0.2 * conv5(...)`` run inside the convolutions (oneDNN post-ops), weights pre-scaled;
      every tensor stays channels-last, and the RRDB residual is added in place.
    * The x4 tail (two nearest-upsample + conv stages, run on the small grid by
      :class:`gansr.models.fused.FusedNearestUpConv`, then ``conv_hr``, ``conv_last``) runs in tiles of
      ``tail_tile`` feature pixels with an exact halo (:func:`gansr.engine.tiles.run_exact`): its
      activations are 16 times larger than the body's and would dominate memory and cache misses.

    The output equals ``RRDBNet.forward`` up to float rounding (summation order, pre-scaled
    weights) in fp32; ``dtype=torch.bfloat16`` computes in bf16 and returns float32.
    """

    def _build(self, model: RRDBNet) -> ActivationWidths:
        kw = self.conv_kw
        slope = layer(model, "lrelu", nn.LeakyReLU).negative_slope
        self.conv_first = FusedConv2d(layer(model, "conv_first", nn.Conv2d), **kw)
        channels_last = self.memory_format == torch.channels_last
        rrdbs = [layer(model, f"body.{i}", RRDB) for i in range(len(model.body))]
        self.blocks = nn.ModuleList(
            nn.ModuleList(_FusedRDB(rdb, self.dtype, channels_last) for rdb in rrdb.rdbs()) for rrdb in rrdbs
        )
        self.rrdb_scales = [rrdb.res_scale for rrdb in rrdbs]
        num_feat = self.conv_first.out_channels
        # The forward shares one workspace between all blocks (so one form): they need equal widths.
        widths = {(rdb.num_feat, rdb.num_grow_ch) for rrdb in self.blocks for rdb in rrdb}
        if len(widths) > 1 or any(feat != num_feat for feat, _ in widths):
            raise ModelError(
                f"dense blocks of (num_feat, num_grow_ch) {sorted(widths)}, expected {num_feat} features"
            )
        self.dense = bool(self.blocks) and self.blocks[0][0].dense
        self.conv_body = FusedConv2d(layer(model, "conv_body", nn.Conv2d), **kw)
        names = ["conv_up1", "conv_up2"] + (["conv_up3"] if model.scale == 8 else [])
        self.ups = nn.ModuleList(
            FusedNearestUpConv(layer(model, name, nn.Conv2d), negative_slope=slope, **kw) for name in names
        )
        self.conv_hr = FusedConv2d(layer(model, "conv_hr", nn.Conv2d), negative_slope=slope, **kw)
        self.conv_last = FusedConv2d(layer(model, "conv_last", nn.Conv2d), **kw)
        self.tail_scale = 2 ** len(names)
        # Each upsampling conv reads one pixel of context on its own (input) grid.
        layers = [(1, 2**i) for i in range(len(names))] + [(1, self.tail_scale)] * 2
        self.tail_halo = tail_halo(layers, self.tail_scale)
        grow = self.blocks[0][0].num_grow_ch if self.blocks else 0
        # The body's peak is at a dense block's conv5: the RRDB input, the block input, x1..x4 and
        # the output (the dense-buffer form of _FusedRDB holds the same: the RRDB input, one buffer
        # of num_feat + 4 * grow channels and one output). The tail keeps the body's output.
        return ActivationWidths(body=3 * num_feat + 4 * grow, kept=num_feat, tail=self.conv_hr.out_channels)

    def _tail(self, feat: Tensor) -> Tensor:
        for up in self.ups:
            feat = up(feat)
        return self.conv_last(self.conv_hr(feat))

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, h, w)`` (any float dtype) -> float32 ``(N, C, scale*h, scale*w)``."""
        _check_batch(self.arch, self.in_channels, x)
        h, w = x.shape[-2:]
        feat = pad_to_multiple(x, self.size_multiple)
        if self.size_multiple > 1:
            feat = F.pixel_unshuffle(feat, self.size_multiple)
        inp = feat.to(self.dtype).contiguous(memory_format=self.memory_format)
        body = self.conv_first(inp)
        if self.dense:
            # One workspace and one output for all 69 blocks: allocating them per block let the
            # heap fragment (a 731x731 pass peaked 2x higher with the heap kept for reuse).
            buf, y = self.blocks[0][0].new_buffer(body), torch.empty_like(body)
            for rrdb, res_scale in zip(self.blocks, self.rrdb_scales, strict=True):
                src = body  # kept for the RRDB residual
                for rdb in rrdb:
                    src = rdb(src, out=y, buffer=buf)
                body.add_(y, alpha=res_scale)
            del buf, y
        else:
            for rrdb, res_scale in zip(self.blocks, self.rrdb_scales, strict=True):
                y = body
                for rdb in rrdb:
                    y = rdb(y)
                body.add_(y, alpha=res_scale)
                del y
        # conv_first is recomputed for the long skip (0.01% of the work) instead of keeping its
        # output alive through the body: that is a fifth of the body's peak memory.
        feat = self.conv_body(body, residual=self.conv_first(inp))
        del body
        out = self._run_tail(feat)
        return crop_to(out, self.scale * h, self.scale * w)
