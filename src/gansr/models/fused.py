"""Inference-only building blocks of the fused generators (``fuse_for_inference()`` of
``rrdbnet``, ``srresnet``, ``msrresnet`` and ``compact``).

A fused generator is a frozen copy of a trained one that computes the same function with fewer
passes over memory. Super-resolution networks are convolution-bound, but in eager PyTorch every
activation, BatchNorm, residual add and (in NCHW) layout reorder is another full pass over
activations far larger than the CPU caches. :class:`FusedGenerator` is their common base (it
builds the fused form from the trained model's named parts, checked, and derives the memory
estimates); the pieces here remove those passes:

* :class:`FusedConv2d`: one convolution with its BatchNorm folded into the weights, an output
  scale folded in too, and its activation or residual add done inside the convolution kernel.
  On the CPU a 3x3 convolution in fp32 (bf16 on AVX512-BF16) runs gansr's Winograd kernel
  (:mod:`gansr.kernels.winograd`: 4x fewer multiplies, activation and residual in its epilogue)
  when it is available; otherwise oneDNN with *post-ops*
  (``torch.ops.mkldnn._convolution_pointwise``, the op ``torch.compile`` itself emits for these
  patterns); plain ``F.conv2d`` plus in-place ops elsewhere.
* :func:`conv_after_pixel_shuffle`: a convolution that follows ``PixelShuffle(f)`` rewritten as
  a convolution *before* it, so a thin output layer (64 -> 3 channels) runs with ``f * f`` times
  more output channels on a ``f * f`` times smaller image; oneDNN is several times faster there.
* :class:`FusedNearestUpConv`: ``conv3x3(nearest_upsample_2x(x))`` (ESRGAN's upsampler) computed
  on the small grid with one 2x2 kernel per output phase: 4/9 of the multiply-adds and no
  upsampled copy of the input.
* :func:`tail_halo`: the context that makes tiles of a generator's high-resolution tail exact; the
  tail runs in :func:`gansr.engine.tiles.run_exact`, so its huge activations never exist whole.

These modules have no autograd support on the fused CPU path and are meant for
``torch.inference_mode()``; outside it they fall back to ordinary differentiable ops.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gansr.engine.tiles import run_exact
from gansr.errors import ModelError
from gansr.kernels import winograd
from gansr.models.blocks import Generator

__all__ = [
    "ActivationWidths",
    "FusedConv2d",
    "FusedGenerator",
    "FusedNearestUpConv",
    "conv_after_pixel_shuffle",
    "prelu_slope",
    "tail_halo",
    "tail_tile_bytes",
    "winograd_kernel_fits",
]


def _mkldnn_ok(x: Tensor) -> bool:
    """Whether oneDNN's fused convolution can run ``x`` (CPU, fp32/bf16, no autograd needed)."""
    if x.device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    if _needs_grad(x):
        return False
    if x.dtype == torch.float32:
        return True
    return x.dtype == torch.bfloat16 and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def _needs_grad(x: Tensor) -> bool:
    return x.requires_grad and torch.is_grad_enabled()


def winograd_kernel_fits(in_channels: int, out_channels: int, dtype: torch.dtype = torch.float32) -> bool:
    """Whether a 3x3 convolution of these widths in ``dtype`` would run the Winograd kernel here."""
    return winograd.supports(in_channels, out_channels) and winograd.available(dtype)


def prelu_slope(module: nn.Module) -> float | None:
    """The single negative slope of a one-parameter ``nn.PReLU`` (None for per-channel PReLU)."""
    if isinstance(module, nn.PReLU) and module.weight.numel() == 1:
        return float(module.weight.detach().float().item())
    return None


@dataclass(frozen=True)
class ActivationWidths:
    """How wide a fused generator's activations are, in channels: the description
    :class:`FusedGenerator` derives its memory estimates from.

    Attributes:
        body: the most channels alive at once in the body, per feature pixel (the grid the tail
            starts from: the LR image, or its pixel-unshuffled grid), in the compute dtype.
        kept: the channels per feature pixel (compute dtype) alive while the tail writes the
            float32 result.
        tail: the width of the tail's activations at the output resolution (see
            :func:`tail_tile_bytes`).
        tail_itemsize: bytes per value in the tail; None for the compute dtype's.
    """

    body: int
    kept: int
    tail: int
    tail_itemsize: int | None = None


class FusedGenerator(nn.Module, ABC):
    """Base of the fused generators: an inference-only copy of a trained generator.

    The constructor copies the trained model's interface attributes (``arch``, ``scale``, channels,
    ``size_multiple``) and the compute settings, then calls the subclass's :meth:`_build`, which
    reads the trained layers by name (:func:`gansr.models.blocks.layer`) and builds fused ones with
    ``**self.conv_kw``. A structure the fused form cannot represent raises :class:`ModelError`.
    The memory estimates derive from the :class:`ActivationWidths` that ``_build`` returns, and
    :meth:`_run_tail` runs the subclass's high-resolution ``_tail`` in tiles (``_build`` sets
    ``tail_halo``, and ``tail_scale`` where the tail upscales less than the model).

    Args:
        model: the trained generator (eval semantics: BatchNorm's running statistics are used).
        dtype: the compute dtype (inputs are converted; outputs are float32).
        channels_last: compute in channels-last layout.
        tail_tile: the tail's tile side in feature pixels; None: the class's ``default_tail_tile``.
    """

    default_tail_tile: ClassVar[int] = 96

    def __init__(
        self,
        model: Generator,
        *,
        dtype: torch.dtype = torch.float32,
        channels_last: bool = True,
        tail_tile: int | None = None,
    ) -> None:
        super().__init__()
        self.arch: str = model.arch
        self.scale: int = model.scale
        self.in_channels: int = model.in_channels
        self.out_channels: int = model.out_channels
        self.size_multiple: int = model.size_multiple
        self.dtype = dtype
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.tail_tile = self.default_tail_tile if tail_tile is None else tail_tile
        self.tail_scale = self.scale
        self.tail_halo = 0
        self.conv_kw = {"dtype": dtype, "channels_last": channels_last}  # for FusedConv2d
        try:
            self.widths = self._build(model)
        except (ModelError, ValueError) as e:  # ValueError: a layer FusedConv2d & co. cannot take
            raise ModelError(f"cannot fuse model {self.arch!r} for inference: {e}") from e

    @abstractmethod
    def _build(self, model: Generator) -> ActivationWidths:
        """Build the fused layers from ``model``'s named parts; return how wide the activations are."""

    @abstractmethod
    def _tail(self, feat: Tensor) -> Tensor:
        """The spatially local high-resolution stage, run tile by tile by :meth:`_run_tail`."""

    def _run_tail(self, feat: Tensor) -> Tensor:
        return run_exact(self._tail, feat, scale=self.tail_scale, halo=self.tail_halo, tile=self.tail_tile)

    def bytes_per_pixel(self) -> float:
        """Peak memory per LR input pixel, beyond :meth:`fixed_bytes`: the body's widest activations,
        or what the tail keeps plus the float32 result, whichever is more; plus the input in
        float32 and ``dtype``."""
        e = self.dtype.itemsize
        feat_px = (self.scale / self.tail_scale) ** 2  # feature pixels per LR pixel
        body = self.widths.body * e * feat_px
        tail = self.widths.kept * e * feat_px + self.out_channels * self.scale**2 * 4
        return max(body, tail) + self.in_channels * (4 + e)

    def fixed_bytes(self) -> int:
        """Peak memory of one tail tile (independent of the image size)."""
        itemsize = self.widths.tail_itemsize or self.dtype.itemsize
        return tail_tile_bytes(self.tail_tile, self.tail_halo, self.tail_scale, self.widths.tail, itemsize)


class FusedConv2d(nn.Module):
    """A frozen ``Conv2d`` computing ``act(scale * bn(conv(x)) + residual)`` in one kernel.

    Args:
        conv: the trained convolution (only ``groups=1`` is needed by the generators here).
        bn: an eval-mode ``BatchNorm2d`` after it, folded into the weights and bias.
        scale: an output scale folded into the weights (residual scaling such as ESRGAN's 0.2).
        negative_slope: the activation: ``None`` none, ``0.0`` ReLU, else LeakyReLU / one-parameter
            PReLU with that slope. Applied after the residual add.
        prelu: a trained ``nn.PReLU`` as the activation instead (one slope, or one per output
            channel; the Winograd kernel applies per-channel slopes in its epilogue, oneDNN
            convolutions are followed by a separate PReLU pass).
        dtype: the compute dtype of weights (and of the inputs it expects).
        channels_last: store weights channels-last (inputs should be channels-last too).
        weight / bias / padding: use these instead of the conv's own (for rewritten convs).
        with_bias: False drops the bias (for the extra input slices of a split convolution).
        allow_winograd: use the Winograd kernel for CPU inputs when it fits (3x3, padding 1,
            channels-last, channel counts it supports) and is available on this machine. Its
            transformed weights take 4x the memory of the weights (kept too, for other inputs).

    The Winograd kernel fuses both the residual add and the activation; oneDNN fuses an
    activation *or* a residual add into the kernel, and when both are asked for the activation
    runs as a separate in-place pass (no generator here needs both).
    """

    def __init__(
        self,
        conv: nn.Conv2d | None = None,
        *,
        bn: nn.BatchNorm2d | None = None,
        scale: float = 1.0,
        negative_slope: float | None = None,
        prelu: nn.PReLU | None = None,
        dtype: torch.dtype = torch.float32,
        channels_last: bool = True,
        weight: Tensor | None = None,
        bias: Tensor | None = None,
        padding: int | None = None,
        with_bias: bool = True,
        allow_winograd: bool = True,
    ) -> None:
        super().__init__()
        if conv is not None:
            if conv.groups != 1 or conv.stride != (1, 1) or conv.dilation != (1, 1):
                raise ValueError("FusedConv2d supports stride-1, dilation-1, ungrouped convolutions only")
            if not isinstance(conv.padding, tuple) or conv.padding[0] != conv.padding[1]:
                raise ValueError("FusedConv2d needs symmetric integer padding")
            weight = conv.weight if weight is None else weight
            bias = conv.bias if bias is None else bias
            padding = conv.padding[0] if padding is None else padding
        if weight is None or padding is None:
            raise ValueError("FusedConv2d needs a conv or an explicit weight and padding")
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        if bn is None and scale == 1.0:  # nothing to fold: a plain copy (quick for big models)
            w, b = weight.detach(), bias.detach() if bias is not None else None
        else:
            w, b = self._fold(weight, bias, bn, scale)
        self.register_buffer("weight", w.to(dtype=dtype, memory_format=fmt, copy=True))
        self.register_buffer("bias", b.to(dtype=dtype, copy=True) if b is not None and with_bias else None)
        self.padding = int(padding)
        slopes = None
        if prelu is not None:
            if negative_slope is not None:
                raise ValueError("FusedConv2d takes negative_slope or prelu, not both")
            negative_slope = prelu_slope(prelu)
            if negative_slope is None:  # one slope per channel
                slopes = prelu.weight.detach().float().clone()
                if slopes.shape != (w.shape[0],):
                    raise ValueError(f"PReLU has {slopes.numel()} slopes for {w.shape[0]} output channels")
        self.negative_slope = negative_slope
        self.register_buffer("slopes", slopes)
        cout, cin, kh, kw = w.shape
        use_winograd = (
            allow_winograd
            and (kh, kw, self.padding) == (3, 3, 1)
            and channels_last
            and winograd_kernel_fits(cin, cout, dtype)
        )
        # The weights in the Winograd domain (not saved: derived from ``weight``).
        u = winograd.transform_weights(self.weight, dtype) if use_winograd else None
        self.register_buffer("winograd_weight", u, persistent=False)

    @staticmethod
    def _fold(
        weight: Tensor, bias: Tensor | None, bn: nn.BatchNorm2d | None, scale: float
    ) -> tuple[Tensor, Tensor]:
        """Weights and bias with ``bn`` and ``scale`` folded in, computed in float64 so they are the
        correctly rounded products."""
        w = weight.detach().double()
        b = bias.detach().double() if bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
        if bn is not None:
            if bn.running_mean is None or bn.running_var is None:
                raise ValueError("cannot fold a BatchNorm2d without running statistics")
            inv = torch.rsqrt(bn.running_var.detach().double() + bn.eps)
            gamma = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(inv)
            beta = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(inv)
            w = w * (gamma * inv)[:, None, None, None]
            b = (b - bn.running_mean.detach().double()) * gamma * inv + beta
        return w * scale, b * scale

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])

    def extra_repr(self) -> str:
        cout, cin, kh, kw = self.weight.shape
        slope = "per-channel" if self.slopes is not None else self.negative_slope
        return f"{cin}, {cout}, kernel_size=({kh}, {kw}), padding={self.padding}, slope={slope}"

    def forward(self, x: Tensor, residual: Tensor | None = None, *, out: Tensor | None = None) -> Tensor:
        """``act(conv(x) + residual)`` (``residual`` optional, same shape as the output), written
        into ``out`` when given (e.g. a channel slice of a bigger channels-last tensor)."""
        u = self.winograd_weight
        if u is not None and x.device.type == "cpu" and x.dtype == u.dtype and not _needs_grad(x):
            slope = self.slopes if self.slopes is not None else self.negative_slope
            return winograd.conv3x3(x, u, self.bias, residual=residual, negative_slope=slope, out=out)
        y = self._forward(x, residual)
        if self.slopes is not None:
            y = F.prelu(y, self.slopes.to(y.dtype))
        return y if out is None else out.copy_(y)

    def _forward(self, x: Tensor, residual: Tensor | None) -> Tensor:
        pad = [self.padding, self.padding]
        one = [1, 1]
        slope = self.negative_slope if self.slopes is None else None  # per-channel: applied by forward
        if _mkldnn_ok(x):
            if residual is None:
                if slope is None:
                    attr, scalars = "none", []
                elif slope == 0.0:
                    attr, scalars = "relu", []
                else:
                    attr, scalars = "leaky_relu", [slope]
                return torch.ops.mkldnn._convolution_pointwise(
                    x, self.weight, self.bias, pad, one, one, 1, attr, scalars, ""
                )
            if slope is None or slope == 0.0:
                return torch.ops.mkldnn._convolution_pointwise.binary(
                    x, residual, self.weight, self.bias, pad, one, one, 1, "add", None,
                    "relu" if slope == 0.0 else None, [], None,
                )  # fmt: skip
        y = F.conv2d(x, self.weight, self.bias, padding=self.padding)
        if residual is not None:
            y = y + residual if y.requires_grad else y.add_(residual)
        if slope is not None:
            y = F.leaky_relu(y, slope, inplace=not y.requires_grad)
        return y

    def accumulate_(self, acc: Tensor, x: Tensor) -> Tensor:
        """``acc += conv(x)`` (plus the bias, if this conv has one) in place: oneDNN's sum post-op,
        one pass and no temporary. Activation and residual are not applied. Returns ``acc``."""
        if _mkldnn_ok(x) and acc.is_contiguous(memory_format=torch.channels_last):
            one = [1, 1]
            return torch.ops.mkldnn._convolution_pointwise_.binary(
                acc, x, self.weight, self.bias, [self.padding] * 2, one, one, 1, "add", None, None, [], None
            )
        return acc.add_(F.conv2d(x, self.weight, self.bias, padding=self.padding))


class FusedNearestUpConv(nn.Module):
    """``act(conv(nearest_upsample_2x(x)))`` for a 3x3, padding-1 ``conv``, without upsampling.

    Output pixel ``(2i + a, 2j + b)`` sees the 3x3 window of the upsampled image, which covers only
    2x2 input pixels: rows ``i - 1 + a, i + a`` (the kernel rows that land on the same input row
    are summed), likewise for columns. So one 2x2 convolution with padding 1 and ``4 * out``
    channels (one group per phase ``(a, b)``) computes all four phases on the input grid, and
    phase ``(a, b)`` of output ``(i, j)`` is its result at ``(i + a, j + b)``. Zero padding of the
    upsampled image is zero padding of the input, so borders are exact too.
    """

    def __init__(
        self,
        conv: nn.Conv2d,
        *,
        negative_slope: float | None = None,
        dtype: torch.dtype = torch.float32,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        if conv.kernel_size != (3, 3) or conv.padding != (1, 1) or conv.stride != (1, 1):
            raise ValueError("FusedNearestUpConv needs a 3x3 convolution with padding 1 and stride 1")
        w = conv.weight.detach().double()

        def fold(k: Tensor, dim: int) -> list[Tensor]:  # phase 0: taps (0, 1+2); phase 1: (0+1, 2)
            t = [k.select(dim, i) for i in range(3)]
            return [torch.stack([t[0], t[1] + t[2]], dim), torch.stack([t[0] + t[1], t[2]], dim)]

        phases = [c for r in fold(w, 2) for c in fold(r, 3)]  # (a, b) = (0,0), (0,1), (1,0), (1,1)
        bias = conv.bias.detach().repeat(4) if conv.bias is not None else None
        self.conv = FusedConv2d(
            weight=torch.cat(phases).float(),
            bias=bias,
            padding=1,
            negative_slope=negative_slope,
            dtype=dtype,
            channels_last=channels_last,
        )
        self.out_channels = conv.out_channels
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def forward(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        y = self.conv(x)  # (n, 4 * c, h + 1, w + 1)
        c = self.out_channels
        out = torch.empty(
            (n, c, 2 * h, 2 * w), dtype=y.dtype, device=y.device, memory_format=self.memory_format
        )
        for k, (a, b) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            out[:, :, a::2, b::2] = y[:, k * c : (k + 1) * c, a : a + h, b : b + w]
        return out


def conv_after_pixel_shuffle(
    conv: nn.Conv2d, factor: int, *, weight: Tensor | None = None, bias: Tensor | None = None
) -> tuple[Tensor, Tensor, int]:
    """Rewrite ``conv(pixel_shuffle(x, factor))`` as ``pixel_shuffle(conv2(x), factor)``.

    Returns ``(weight, bias, padding)`` of ``conv2``: ``factor**2`` times the output channels,
    a kernel ``2 * padding + 1`` wide on the low-resolution grid. Every weight of ``conv`` lands in
    exactly one place (the rest are zeros), so the result is the same sum in another order, and
    zero padding on the small grid is exactly zero padding on the big one. This turns a thin
    output layer (e.g. 64 -> 3 channels, 9x9, at full resolution) into a 256 -> 12 one at a
    quarter of the pixels, which oneDNN runs several times faster.
    """
    w = (conv.weight if weight is None else weight).detach()
    b = conv.bias if bias is None else bias
    cout, cin, k, _ = w.shape
    p = conv.padding[0]
    f = factor
    lo, hi = -((p + f - 1) // f), (f - 1 + p) // f  # floor(-p / f), floor((f - 1 + p) / f)
    pad = max(-lo, hi)
    size = 2 * pad + 1
    out = torch.zeros(cout, f, f, cin, f, f, size, size, dtype=w.dtype, device=w.device)
    for a in range(f):  # output phase (row)
        for dy in range(-p, p + 1):
            u, s = divmod(a + dy, f)
            for b_ in range(f):  # output phase (column)
                for dx in range(-p, p + 1):
                    v, t = divmod(b_ + dx, f)
                    out[:, a, b_, :, s, t, u + pad, v + pad] = w[:, :, dy + p, dx + p]
    bias_out = (
        b.detach().repeat_interleave(f * f) if b is not None else torch.zeros(cout * f * f, dtype=w.dtype)
    )
    return out.reshape(cout * f * f, cin * f * f, size, size), bias_out, pad


def tail_halo(layers: list[tuple[int, int]], scale: int) -> int:
    """Context (in input pixels) that makes tiles of a local stage exact.

    ``layers`` lists ``(padding, resolution)`` of each convolution in the stage, where
    ``resolution`` is how many output pixels one input pixel has become at that layer. A tile edge
    that is not the image edge corrupts ``padding`` pixels per convolution, measured at that
    convolution's resolution, so ``sum(padding * scale / resolution)`` output pixels; the halo is
    that, in input pixels, rounded up.
    """
    corrupted = sum(p * scale // r for p, r in layers)
    return math.ceil(corrupted / scale)


def tail_tile_bytes(tile: int, halo: int, scale: int, channels: int, itemsize: int) -> int:
    """Peak memory of one :func:`gansr.engine.tiles.run_exact` tile of an upsampling tail: about three
    ``channels``-wide activations at the output resolution (a conv's input, its output and an
    upsampled or shuffled copy) of a ``tile + 2 * halo`` square."""
    side = (tile + 2 * halo) * scale
    return 3 * side * side * channels * itemsize
