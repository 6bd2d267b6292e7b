"""The compact generator (``compact``): Real-ESRGAN's SRVGGNetCompact.

A plain VGG-style stack at LR resolution: ``conv3x3 -> PReLU`` (per-channel slopes) repeated,
a last conv to ``out_channels * scale**2`` channels, one PixelShuffle, plus the input upsampled
(nearest in Real-ESRGAN; bilinear or bicubic as options) so the body learns only the residual.
No skip connections inside, no normalisation: every layer is one fused convolution, which makes
it the fastest photo model gansr runs.

Parameter names are Real-ESRGAN's (``body.0`` first conv, ``body.1`` its PReLU, then pairs
``body.{2k}`` conv / ``body.{2k+1}`` PReLU, and ``body.{2 * num_conv + 2}`` the last conv), so
``realesr-general-x4v3`` / ``realesr-animevideov3`` state dicts load with ``load_state_dict``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gansr.errors import ModelError
from gansr.models.blocks import Generator, _check_batch, check_choice, check_int, default_init_weights, layer
from gansr.models.fused import ActivationWidths, FusedConv2d, FusedGenerator

__all__ = ["SKIP_MODES", "Compact", "FusedCompact"]

SKIP_MODES = ("nearest", "bilinear", "bicubic")
# Input pixels each side that an upsampling mode reads around an output pixel (tile halo).
_SKIP_HALO = {"nearest": 0, "bilinear": 1, "bicubic": 2}


def upsample(x: Tensor, scale: int, mode: str) -> Tensor:
    """``x`` enlarged ``scale`` times by torch's ``mode`` interpolation (``align_corners=False``)."""
    if mode == "nearest":
        return F.interpolate(x, scale_factor=scale, mode="nearest")
    return F.interpolate(x, scale_factor=scale, mode=mode, align_corners=False)


class Compact(Generator):
    """SRVGGNetCompact: ``num_conv`` 3x3 conv + PReLU layers of ``num_feat`` channels at LR size.

    Args:
        in_channels: image channels (1 or 3); the output has the same count.
        num_feat: feature width (64 in Real-ESRGAN's compact models).
        num_conv: hidden 3x3 convolutions after the first (16 in ``realesr-animevideov3``, 32 in
            ``realesr-general-x4v3``).
        scale: upscaling factor, 1 to 4 (one PixelShuffle of ``scale``).
        upsample_skip: how the input is upsampled for the global skip: ``"nearest"`` (Real-ESRGAN's
            checkpoints), ``"bilinear"`` or ``"bicubic"`` (torch's, ``align_corners=False``). A
            smooth skip spares the body from first learning to undo nearest-neighbour blocks, which
            matters for short trainings (gansr's own models use bicubic).

    ``body`` holds ``num_conv + 2`` convolutions (first, hidden, last) and ``num_conv + 1``
    PReLUs, interleaved as in Real-ESRGAN's checkpoints.
    """

    arch = "compact"

    def __init__(
        self,
        in_channels: int = 3,
        num_feat: int = 64,
        num_conv: int = 16,
        scale: int = 4,
        upsample_skip: str = "nearest",
    ) -> None:
        check_int(self.arch, "in_channels", in_channels)
        check_int(self.arch, "num_feat", num_feat)
        check_int(self.arch, "num_conv", num_conv, minimum=0)
        check_int(self.arch, "scale", scale, choices=(1, 2, 3, 4))
        check_choice(self.arch, "upsample_skip", upsample_skip, SKIP_MODES)
        super().__init__(
            {
                "in_channels": in_channels,
                "num_feat": num_feat,
                "num_conv": num_conv,
                "scale": scale,
                "upsample_skip": upsample_skip,
            },
            scale=scale,
            in_channels=in_channels,
            out_channels=in_channels,
        )
        self.upsample_skip = upsample_skip
        layers: list[nn.Module] = [nn.Conv2d(in_channels, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        layers.append(nn.Conv2d(num_feat, in_channels * scale * scale, 3, 1, 1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(scale)
        # Kaiming init keeps the activations' scale through the plain 3x3 + PReLU stack (torch's
        # default shrinks it ~10x in the first layers, and the residual starts ~1e-3 and stays there
        # for thousands of steps); a small last layer makes a fresh model start as its skip.
        default_init_weights(list(self.body)[:-1])
        default_init_weights(self.body[-1], 0.1)

    def convs(self) -> list[tuple[nn.Conv2d, nn.PReLU | None]]:
        """The layers as ``(conv, prelu)`` pairs in order, the last conv's PReLU None: the one
        structure both this module's forward and its fused form read. Raises ModelError when
        ``body`` no longer holds ``num_conv + 2`` convolutions interleaved with PReLUs."""
        count = 2 * self.config["num_conv"] + 3
        return [
            (layer(self, f"body.{i}", nn.Conv2d, of=count), layer(self, f"body.{i + 1}", nn.PReLU))
            for i in range(0, count - 1, 2)
        ] + [(layer(self, f"body.{count - 1}", nn.Conv2d, of=count), None)]

    def forward(self, x: Tensor) -> Tensor:
        """Upscale ``x`` ``(N, C, h, w)`` to ``(N, C, scale*h, scale*w)``."""
        self.check_input(x)
        out = x
        for conv, act in self.convs():
            out = conv(out)
            if act is not None:
                out = act(out)
        return self.upsampler(out) + upsample(x, self.scale, self.upsample_skip)

    def fuse_for_inference(
        self, dtype: torch.dtype = torch.float32, channels_last: bool = True
    ) -> FusedCompact:
        """An inference-only copy computing the same function faster (see :class:`FusedCompact`)."""
        return FusedCompact(self, dtype=dtype, channels_last=channels_last)


class FusedCompact(FusedGenerator):
    """Inference-only :class:`Compact`: each conv runs with its per-channel PReLU in the kernel's
    epilogue (Winograd on AVX-512 where the widths fit, else oneDNN), channels-last, and the
    PixelShuffle + nearest skip run per output tile, so the ``scale**2``-times larger output is
    the only full-resolution tensor."""

    default_tail_tile = 128

    def _build(self, model: Compact) -> ActivationWidths:
        self.convs = nn.ModuleList(
            FusedConv2d(conv, prelu=act, **self.conv_kw) for conv, act in model.convs()
        )
        factor = layer(model, "upsampler", nn.PixelShuffle).upscale_factor
        if factor != self.scale:
            raise ModelError(f"upsampler is PixelShuffle({factor}), expected PixelShuffle({self.scale})")
        self.upsample_skip = model.upsample_skip
        self.tail_halo = _SKIP_HALO[self.upsample_skip]
        # The body holds a conv's input and output. The tail keeps the last conv's output and the
        # input (``both``), but is counted at least as wide as the body: the estimate has always
        # charged the float32 result on top of the body's two maps.
        body = max(c.weight.shape[0] + c.weight.shape[1] for c in self.convs)
        kept = max(body, self.convs[-1].out_channels + self.in_channels)
        return ActivationWidths(body=body, kept=kept, tail=self.out_channels, tail_itemsize=4)

    def _tail(self, feat_and_image: Tensor) -> Tensor:
        feat, image = feat_and_image[:, : -self.in_channels], feat_and_image[:, -self.in_channels :]
        out = F.pixel_shuffle(feat.float(), self.scale)
        return out.add_(upsample(image.float(), self.scale, self.upsample_skip))

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, h, w)`` (any float dtype) -> float32 ``(N, C, scale*h, scale*w)``."""
        _check_batch(self.arch, self.in_channels, x)
        inp = x.to(self.dtype).contiguous(memory_format=self.memory_format)
        out = inp
        for conv in self.convs:
            out = conv(out)
        both = torch.cat((out, inp), 1)
        del out
        # Pixel-local but for the skip's interpolation window (its halo).
        return self._run_tail(both)
