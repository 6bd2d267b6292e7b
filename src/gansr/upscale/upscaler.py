"""The :class:`Upscaler`: one model, ready to super-resolve images of any kind and size.

Pipeline for one image (``pixels`` ``(C, H, W)`` plus optional ``alpha``):

1. Fully transparent pixels get the colour of their opaque surroundings (push-pull fill), so the
   model never sees the arbitrary (often black) colour they hide, which would bleed into the
   visible edge as a dark fringe.
2. Channels are matched to the model: gray through an RGB model is replicated to RGB and the
   result turned back into luma (ITU-R 601, as PIL's ``L``); RGB through a gray model runs the
   model on the Y of YCbCr (JPEG full range) and bicubic-upscales the chroma.
3. The model runs at its own scale through the fast inference engine (:mod:`gansr.engine.fast`:
   fused, channels-last, bf16 where asked), in tiles when the image does not fit the memory budget
   (see :func:`gansr.engine.tiles.plan` and :func:`gansr.engine.tiles.run_tiled`). ``arbitrary_scale`` models
   (``vae_cppn``) render the requested size directly and untiled, since they decode the whole
   image from one latent code.
4. Any other final size is reached with MATLAB-bicubic ``imresize`` (antialiased when shrinking;
   see :func:`resize`) from the SR result. The weightless ``bicubic`` model *is* that resize, so it
   goes straight to the final size (untiled, and no bicubic-on-bicubic).
5. Alpha is resized separately with the same bicubic resize and clamped to ``[0, 1]``.

Everything stays float32 in ``[0, 1]`` from decoding to encoding, so 16-bit sources keep their
precision.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from gansr.data.io import LoadedImage, read_image, to_pil
from gansr.engine import tiles
from gansr.engine.device import resolve_device
from gansr.engine.fast import PRECISIONS, Precision, prepare_model
from gansr.engine.tiles import DEFAULT_TILE_OVERLAP, TilePlan
from gansr.errors import ConfigError, DataError, ModelError
from gansr.upscale.defaults import DEFAULT_MODEL
from gansr.upscale.pixels import fill_transparent, icc_for, luma, resize, rgb_to_ycbcr, ycbcr_to_rgb

__all__ = [
    "Upscaler",
]


ProgressArg = bool | Callable[[float], None]
"""How to report progress within one image: ``True`` for a bar over its tiles, or a function
called with the fraction of the image done (after each batch of tiles; 1.0 at the end)."""


# --------------------------------------------------------------------------- the Upscaler


class Upscaler:
    """Super-resolve images with one model.

    Args:
        model: anything :func:`gansr.models.load` takes (a shipped model name, ``"bicubic"``:
            weightless MATLAB bicubic x4, a gansr checkpoint, a peer ``.pth`` such as ESRGAN /
            Real-ESRGAN / BasicSR, an ``.onnx`` file; an architecture name runs with seeded random
            weights and a warning, for speed and memory tests), or an ``nn.Module``
            generator (it needs ``scale``; ``in_channels`` and ``size_multiple`` are used when set;
            it is put in eval mode; where it has no fused form it is also moved to the device and
            made channels-last in place).
        device: ``"auto"`` (CUDA, MPS, CPU in that order), ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (bf16 weights and activations for fused
            models on the CPU, else autocast). bf16 on CPU needs native bf16 support
            (AVX512-BF16/AMX) and fp16 needs a GPU; otherwise fp32 is used with a warning.
        tile: core tile size in LR pixels; ``None`` chooses it from the memory budget (whole image
            when it fits, else the tiles that fit with the least overlap work), ``0`` never tiles.
        tile_overlap: context per tile side in LR pixels (default 32; see :mod:`gansr.engine.tiles`).
        compile: run the model through ``torch.compile`` instead of its fused form (first call is
            slow; each new tile shape compiles again).

    Raises:
        ConfigError: bad device, precision, tile or overlap.
        ModelError: the model cannot be loaded.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | nn.Module = DEFAULT_MODEL,
        device: str | torch.device = "auto",
        precision: Precision = "fp32",
        tile: int | None = None,
        tile_overlap: int | None = None,
        compile: bool = False,
    ) -> None:
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 0):
            raise ConfigError(f"tile must be a non-negative integer (0 = no tiling) or None, got {tile!r}")
        overlap = DEFAULT_TILE_OVERLAP if tile_overlap is None else tile_overlap
        if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
            raise ConfigError(f"tile_overlap must be a non-negative integer, got {tile_overlap!r}")
        self.device = resolve_device(device)
        self.tile = tile
        self.tile_overlap = overlap

        from gansr import models

        if isinstance(model, nn.Module):
            net = models.require_generator(model).eval()
        else:
            net = models.require_generator(models.load(model, random_weights=True))
            if net.metadata["format"] == "random":
                warnings.warn(
                    f"model {model!r} is an architecture name: it runs with random weights (for speed and "
                    "memory tests only; pass trained weights for real images)",
                    stacklevel=2,
                )
        if getattr(net, "arch", None) == "onnx":  # onnxruntime runs the graph as exported: fp32
            if compile:
                raise ConfigError("compile does not apply to ONNX models (onnxruntime optimizes the graph)")
            if precision != "fp32":
                warnings.warn(f"ONNX models run in fp32 (onnxruntime); {precision} ignored", stacklevel=2)
                precision = "fp32"
        # The shared engine: fused and channels-last on the CPU, bf16/fp16 as asked (falling back
        # to fp32 with a warning where the device has no native support).
        self._fast = prepare_model(net, device=self.device, precision=precision, compile=compile)
        self.precision: Precision = self._fast.precision
        self.model: nn.Module = net
        self.scale: int = self._fast.scale
        self.in_channels: int = self._fast.in_channels
        self.size_multiple: int = self._fast.size_multiple
        self.arbitrary_scale: bool = self._fast.arbitrary_scale
        self._is_bicubic = getattr(net, "arch", None) == "bicubic"
        self._compile = compile

    def __repr__(self) -> str:
        arch = getattr(self.model, "arch", type(self.model).__name__)
        return (
            f"Upscaler(model={arch!r}, scale={self.scale}, device={str(self.device)!r}, "
            f"precision={self.precision!r}, tile={self.tile}, tile_overlap={self.tile_overlap})"
        )

    # ---- precision and the raw forward

    def _run(self, batch: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        """Run the engine on a CPU batch (device transfer, channels-last and precision included);
        a failing ``torch.compile`` becomes a one-line :class:`ModelError`."""
        if size is not None:
            return self._fast(batch, size=size)
        if not self._compile:
            return self._fast(batch)
        try:
            return self._fast(batch)
        except Exception as exc:
            from torch._dynamo.exc import TorchDynamoException

            if isinstance(exc, TorchDynamoException):  # e.g. no C++ compiler for the CPU backend
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ModelError(f"torch.compile failed ({reason}); run without compile") from None
            raise

    def bytes_per_pixel(self) -> float:
        """The model's estimated peak memory per LR input pixel (probed or computed once)."""
        return self._fast.bytes_per_pixel()

    def plan(self, height: int, width: int, *, memory_budget: int | None = None) -> TilePlan:
        """The tile plan for an ``height x width`` LR image on this device (see
        :func:`gansr.engine.tiles.plan`: whole image when it fits, else the least overlap work).
        ``memory_budget``: bytes one forward pass (plus, on the CPU, the output canvas) may use;
        default :func:`gansr.engine.device.memory_budget`. An explicit ``tile`` wins over it."""
        return tiles.plan(
            self._fast, height, width, tile=self.tile, overlap=self.tile_overlap, budget_bytes=memory_budget
        )

    # ---- sizes

    def output_size(
        self, height: int, width: int, *, outscale: float | None = None, size: Sequence[int] | None = None
    ) -> tuple[int, int]:
        """Final ``(height, width)`` for an input of ``height x width``.

        ``outscale`` multiplies both sides (rounded, at least 1 pixel); ``size`` is ``(height,
        width)``, where one 0 keeps the aspect ratio; neither gives the model's own scale.
        """
        if outscale is not None and size is not None:
            raise ConfigError("give either outscale or size, not both")
        if size is not None:
            if (
                isinstance(size, str | bytes)
                or len(size) != 2
                or any(isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 0 for s in size)
                or not any(size)
            ):
                raise ConfigError(
                    f"size must be (height, width) in pixels (one may be 0 to keep the aspect), got {size!r}"
                )
            out_h, out_w = int(size[0]), int(size[1])
            if out_h == 0:
                out_h = max(1, round(height * out_w / width))
            if out_w == 0:
                out_w = max(1, round(width * out_h / height))
            return out_h, out_w
        if outscale is None:
            # A model with a non-integer factor (vae_cppn trained 26 -> 28) knows its own size;
            # ``self.scale`` is only the nearest integer.
            default_size = getattr(self.model, "default_size", None)
            if callable(default_size):
                return tuple(default_size(height, width))
            return height * self.scale, width * self.scale
        if isinstance(outscale, bool) or not isinstance(outscale, int | float) or not math.isfinite(outscale):
            raise ConfigError(f"outscale must be a positive number, got {outscale!r}")
        if outscale <= 0:
            raise ConfigError(f"outscale must be positive, got {outscale}")
        return max(1, round(height * outscale)), max(1, round(width * outscale))

    # ---- the core: planes in, planes out

    def upscale_planes(
        self,
        pixels: Tensor,
        alpha: Tensor | None = None,
        *,
        outscale: float | None = None,
        size: Sequence[int] | None = None,
        progress: ProgressArg = False,
        memory_budget: int | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Upscale ``pixels`` ``(C, H, W)`` (C 1 or 3, float in ``[0, 1]``) and optional ``alpha``
        ``(1, H, W)``; returns both at the final size, float32 on CPU, clamped to ``[0, 1]``.

        ``memory_budget`` (bytes) caps the tile plan's budget for this call (see :meth:`plan`),
        e.g. lower for video, whose encoder holds memory of its own; ``None``: the device's."""
        if pixels.dim() != 3 or pixels.shape[0] not in (1, 3):
            raise DataError(f"expected pixels of shape (C, H, W) with C 1 or 3, got {tuple(pixels.shape)}")
        pixels = pixels.detach().to("cpu", torch.float32)
        _, height, width = pixels.shape
        target = self.output_size(height, width, outscale=outscale, size=size)
        with torch.inference_mode():
            if alpha is not None:
                alpha = alpha.detach().to("cpu", torch.float32).reshape(1, height, width)
                pixels = fill_transparent(pixels, alpha)
            out = self._color(pixels, target, progress, memory_budget)
            if alpha is not None:
                alpha = resize(alpha, target).clamp_(0, 1)
        return out, alpha

    def _color(
        self, pixels: Tensor, target: tuple[int, int], progress: ProgressArg, budget: int | None = None
    ) -> Tensor:
        """Match the image's channels to the model's, then super-resolve."""
        channels = pixels.shape[0]
        if channels == self.in_channels or self._is_bicubic:
            return self._super_resolve(pixels, target, progress, budget)
        if channels == 1 and self.in_channels == 3:
            rgb = self._super_resolve(pixels.expand(3, -1, -1), target, progress, budget)
            return luma(rgb).clamp_(0, 1)
        if channels == 3 and self.in_channels == 1:
            ycc = rgb_to_ycbcr(pixels)
            y = self._super_resolve(ycc[:1], target, progress, budget)
            chroma = resize(ycc[1:], target)
            return ycbcr_to_rgb(torch.cat([y, chroma])).clamp_(0, 1)
        raise ModelError(
            f"the model takes {self.in_channels}-channel input; cannot use it on {channels}-channel images"
        )

    def _super_resolve(
        self, pixels: Tensor, target: tuple[int, int], progress: ProgressArg, budget: int | None = None
    ) -> Tensor:
        _, height, width = pixels.shape
        native = (height * self.scale, width * self.scale)
        done = progress if callable(progress) else (lambda fraction: None)
        if self.arbitrary_scale:
            out = self._run(pixels.unsqueeze(0), size=target)[0].to("cpu", torch.float32)
            done(1.0)
            return out.clamp_(0, 1)
        if self._is_bicubic:
            # The weightless model is this resize: straight to the final size (no bicubic-on-
            # bicubic), with no tiles (memory is just the input and the output).
            done(1.0)
            return resize(pixels, target).clamp_(0, 1)
        out = tiles.run_tiled(
            self._run,
            pixels,
            scale=self.scale,
            tile_plan=self.plan(height, width, memory_budget=budget),
            size_multiple=self.size_multiple,
            progress=progress if isinstance(progress, bool) else lambda done, total: progress(done / total),
        ).clamp_(0, 1)
        if target != native:
            out = resize(out, target).clamp_(0, 1)
        return out

    # ---- public entry points

    def upscale_loaded(
        self,
        image: LoadedImage,
        *,
        outscale: float | None = None,
        size: Sequence[int] | None = None,
        progress: ProgressArg = False,
    ) -> LoadedImage:
        """Upscale a :class:`LoadedImage`; the result keeps its bit depth, mode, format and ICC
        profile (dropped when it does not describe the result's colour space) and has no path."""
        pixels, alpha = self.upscale_planes(
            image.pixels, image.alpha, outscale=outscale, size=size, progress=progress
        )
        return LoadedImage(
            pixels=pixels,
            alpha=alpha,
            bit_depth=image.bit_depth,
            mode=image.mode,
            format=image.format,
            icc_profile=icc_for(image.icc_profile, pixels.shape[0]),
            path=None,
        )

    def upscale(
        self,
        image: str | os.PathLike[str] | Image.Image | np.ndarray | Tensor,
        *,
        outscale: float | None = None,
        size: Sequence[int] | None = None,
    ) -> Image.Image | np.ndarray | Tensor:
        """Upscale one image, returned in the kind it came in.

        * a path: read with :func:`gansr.data.read_image` (EXIF orientation applied) and returned
          as a PIL image: ``L``/``LA``/``RGB``/``RGBA``, ``I;16`` for 16-bit gray; PIL has no 16-bit
          colour mode, so 16-bit colour comes back 8-bit (the CLI writes 16-bit files).
        * a PIL image: a PIL image of the same mode family (``P`` becomes ``RGB``, or ``RGBA`` with
          transparency; ``1``, ``CMYK``, ``YCbCr``, ``I``, ``F`` come back in their mode).
        * a NumPy array ``(H, W)`` or ``(H, W, C)`` with C 1-4 (2 and 4 carry alpha last), uint8,
          uint16 or float in ``[0, 1]``: the same dtype and layout.
        * a torch tensor ``(C, H, W)`` or ``(N, C, H, W)``, float in ``[0, 1]`` (C 1-4 as above):
          the same shape layout, dtype and device.

        ``outscale`` or ``size`` (``(height, width)``) sets the final size (default: the model's
        scale). The ICC profile of a path or PIL input is kept in ``info["icc_profile"]``.
        """
        if isinstance(image, str | os.PathLike):
            loaded = read_image(Path(image))
            return _to_pil(self.upscale_loaded(loaded, outscale=outscale, size=size), loaded.mode)
        if isinstance(image, Image.Image):
            loaded = read_image(image)
            return _to_pil(self.upscale_loaded(loaded, outscale=outscale, size=size), image.mode)
        if isinstance(image, np.ndarray):
            return self._upscale_array(image, outscale, size)
        if isinstance(image, Tensor):
            return self._upscale_tensor(image, outscale, size)
        raise TypeError(
            f"cannot upscale a {type(image).__name__}: pass a path, PIL image, NumPy array or tensor"
        )

    def _upscale_array(
        self, arr: np.ndarray, outscale: float | None, size: Sequence[int] | None
    ) -> np.ndarray:
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4)):
            raise DataError(f"expected an array of shape (H, W) or (H, W, C) with C 1-4, got {arr.shape}")
        if arr.dtype == np.uint8:
            scale = 255.0
        elif arr.dtype == np.uint16:
            scale = 65535.0
        elif np.issubdtype(arr.dtype, np.floating):
            scale = 1.0
        else:
            raise DataError(f"unsupported array dtype {arr.dtype}; use uint8, uint16 or float in [0, 1]")
        planes = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32) / np.float32(scale))
        planes = planes[None] if arr.ndim == 2 else planes.permute(2, 0, 1)
        out = self._upscale_channels(planes.clamp(0, 1), outscale, size).permute(1, 2, 0).numpy()
        if arr.ndim == 2:
            out = out[..., 0]
        if scale == 1.0:
            return out.astype(arr.dtype, copy=False)
        return np.floor(out * np.float32(scale) + np.float32(0.5)).astype(arr.dtype)

    def _upscale_tensor(self, t: Tensor, outscale: float | None, size: Sequence[int] | None) -> Tensor:
        if t.dim() not in (3, 4) or t.shape[-3] not in (1, 2, 3, 4):
            raise DataError(f"expected a tensor (C, H, W) or (N, C, H, W) with C 1-4, got {tuple(t.shape)}")
        if not t.is_floating_point():
            raise DataError(f"expected a float tensor in [0, 1], got {t.dtype}")
        batch = t.unsqueeze(0) if t.dim() == 3 else t
        outs = [
            self._upscale_channels(img.detach().float().cpu().clamp(0, 1), outscale, size) for img in batch
        ]
        out = torch.stack(outs).to(device=t.device, dtype=t.dtype)
        return out[0] if t.dim() == 3 else out

    def _upscale_channels(self, planes: Tensor, outscale: float | None, size: Sequence[int] | None) -> Tensor:
        """``(C, H, W)`` with C 1-4, alpha last when C is 2 or 4."""
        has_alpha = planes.shape[0] in (2, 4)
        color, alpha = (planes[:-1], planes[-1:]) if has_alpha else (planes, None)
        out, out_alpha = self.upscale_planes(color, alpha, outscale=outscale, size=size)
        return torch.cat([out, out_alpha]) if out_alpha is not None else out


# --------------------------------------------------------------------------- helpers


def _to_pil(result: LoadedImage, source_mode: str) -> Image.Image:
    """A PIL image of the source mode's family from an upscaled :class:`LoadedImage`."""
    gray16 = result.bit_depth == 16 and result.pixels.shape[0] == 1 and result.alpha is None
    if source_mode == "F":
        img = Image.fromarray(result.pixels[0].numpy().astype(np.float32), "F")
    else:
        img = to_pil(result.pixels, result.alpha, bit_depth=16 if gray16 else 8)
        if source_mode == "1":
            img = img.convert("1", dither=Image.Dither.NONE)
        elif source_mode == "I" and gray16:
            img = img.convert("I")
        elif source_mode in ("CMYK", "YCbCr") and img.mode == "RGB":
            img = img.convert(source_mode)
    if result.icc_profile and img.mode in ("L", "LA", "RGB", "RGBA", "I;16"):
        img.info["icc_profile"] = result.icc_profile
    return img
