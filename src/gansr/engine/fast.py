"""The fast inference path: one engine shared by the Upscaler, ``gansr speed`` and evaluation.

:func:`prepare_model` turns a generator into a :class:`FastModel`:

* on the CPU, architectures with a fused form (a ``fuse_for_inference(dtype, channels_last)``
  method: ``rrdbnet``, ``srresnet``, ``msrresnet``, ``compact``) are replaced by it: channels-last,
  BatchNorm folded, activations and residual adds inside the convolution kernels, no dense-block
  concatenations, and the high-resolution tail run in exact tiles. 3x3 convolutions run gansr's
  Winograd kernel (:mod:`gansr.kernels.winograd`, 4x fewer multiplies; compiled on first use,
  oneDNN when it cannot be), the others oneDNN. Outputs equal the module's own ``forward`` up to
  float rounding;
* on the CPU each forward pass keeps freed activations in the heap for the next layer instead
  of page-faulting fresh memory, and returns it when the pass ends (:mod:`gansr.engine.allocator`);
* any other model (and every model on a GPU) runs channels-last, under autocast for bf16/fp16;
* bf16 on the CPU stores weights and activations in bf16 (AVX512-BF16/AMX), fp16 needs a GPU;
  where a precision is not supported natively the engine warns and uses fp32
  (:func:`resolve_precision`, the one precision table).

A :class:`FastModel` also knows its peak memory per LR pixel (:meth:`FastModel.memory_bytes`),
which :func:`gansr.engine.tiles.plan` fits into the device's budget. :func:`naive_forward` is
the baseline that BasicSR and Real-ESRGAN's scripts run (eager NCHW fp32 under
``torch.no_grad()``, whole image); ``gansr speed`` compares the two in one run.

The engine is model-agnostic: it reads a generator's ``scale``, ``in_channels``,
``size_multiple``, ``arbitrary_scale`` and ``fuse_for_inference`` attributes and never imports
:mod:`gansr.models`, which sits above it.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any, Literal

import torch
from torch import Tensor, nn

from gansr.engine import PRECISIONS
from gansr.engine.allocator import reuse_large_blocks
from gansr.errors import ConfigError, ModelError

__all__ = [
    "PRECISIONS",
    "FastModel",
    "Precision",
    "estimate_memory",
    "naive_forward",
    "precision_dtype",
    "prepare_model",
    "resolve_precision",
]

Precision = Literal["fp32", "bf16", "fp16"]
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

# The probe's largest layer output times this bounds the peak of one unfused forward pass: besides
# that output, its input, a residual/skip tensor and a dense block's concatenation can be alive.
PEAK_FACTOR = 4
PROBE_SIZE = 32  # LR pixels per side of the memory probe of unfused models


# --------------------------------------------------------------------------- precision


def precision_dtype(precision: str) -> torch.dtype:
    """``"fp32"`` / ``"bf16"`` / ``"fp16"`` -> the torch dtype.

    Raises:
        ConfigError: an unknown name.
    """
    try:
        return _DTYPES[precision]
    except KeyError:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}") from None


def _supported(precision: str, device: torch.device) -> tuple[bool, str]:
    if precision == "fp32":
        return True, ""
    kind = device.type
    if precision == "bf16":
        if kind == "cuda":
            return torch.cuda.is_bf16_supported(), "this GPU has no bf16 support"
        if kind == "cpu":
            ok = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
            return ok, "this CPU has no native bf16 (AVX512-BF16/AMX)"
        return kind == "mps", f"bf16 is not supported on {kind}"
    return kind in ("cuda", "mps"), "fp16 needs a GPU (CUDA or MPS); try bf16 on the CPU"


def resolve_precision(precision: str, device: torch.device | str, *, warn: bool = True) -> Precision:
    """The precision that will actually run on ``device``: ``precision`` when supported natively,
    else ``"fp32"`` (with a warning unless ``warn`` is False).

    Raises:
        ConfigError: an unknown precision name.
    """
    precision_dtype(precision)
    ok, why = _supported(precision, torch.device(device))
    if ok:
        return precision  # type: ignore[return-value]
    if warn:
        warnings.warn(f"{precision}: {why}; using fp32", stacklevel=2)
    return "fp32"


# --------------------------------------------------------------------------- memory


def estimate_memory(
    model: nn.Module, run: Callable[[Tensor], Tensor], in_channels: int, size_multiple: int = 1
) -> float:
    """Peak memory of one (unfused) forward pass per LR input pixel, from a small probe.

    Runs ``run`` on a :data:`PROBE_SIZE` square with forward hooks on every module and takes
    :data:`PEAK_FACTOR` times the largest tensor any module returned, plus the input and the
    output, per probe pixel. Activations of a fully convolutional network grow linearly with the
    pixel count, so this scales to any tile.
    """
    side = -(-PROBE_SIZE // size_multiple) * size_multiple
    largest = 0

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        nonlocal largest
        for t in output if isinstance(output, tuple | list) else (output,):
            if isinstance(t, Tensor):
                largest = max(largest, t.numel() * t.element_size())

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        probe = torch.rand(1, in_channels, side, side, generator=torch.Generator().manual_seed(0))
        out = run(probe)
    finally:
        for h in handles:
            h.remove()
    total = PEAK_FACTOR * largest + probe.numel() * 4 + out.numel() * 4
    return total / (side * side)


# --------------------------------------------------------------------------- the engine


class FastModel(nn.Module):
    """A generator prepared for fast inference on one device in one precision (see the module doc).

    Call it like the generator: ``(N, C, h, w)`` float (any device) -> float32 ``(N, C, sH, sW)`` on
    :attr:`device`, computed under ``torch.inference_mode()``. Build it with :func:`prepare_model`.

    Attributes:
        source: the original generator (not a submodule; unfused models are it, moved in place).
        net: what runs: the fused copy, or ``source`` itself.
        fused: whether ``net`` is a fused copy.
        device / precision / dtype / channels_last: how it runs (``precision`` after any fallback).
        arch, scale, in_channels, out_channels, size_multiple, arbitrary_scale: the generator's.
    """

    source: nn.Module

    def __init__(
        self,
        model: nn.Module,
        *,
        device: torch.device | str = "cpu",
        precision: str = "fp32",
        channels_last: bool | None = None,
        fuse: bool | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__()
        if not hasattr(model, "scale"):
            raise ModelError(f"{type(model).__name__} is not a generator (it has no scale)")
        self.device = torch.device(device)
        self.precision: Precision = resolve_precision(precision, self.device)
        self.dtype = _DTYPES[self.precision]
        model.eval()
        has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
        self.channels_last = has_conv if channels_last is None else bool(channels_last)
        if fuse is None:
            # cuDNN needs no help; oneDNN in eager mode does. torch.compile does its own fusion.
            fuse = self.device.type == "cpu" and not compile
        fused = None
        make_fused = getattr(model, "fuse_for_inference", None)
        if fuse and inspect.ismethod(make_fused):
            fused = make_fused(dtype=self.dtype, channels_last=self.channels_last)
        self.__dict__["source"] = model  # kept out of the module tree (no double .to())
        self.fused = fused is not None
        if fused is not None:
            self.net: nn.Module = fused.to(self.device)
        else:
            fmt = torch.channels_last if self.channels_last else torch.contiguous_format
            self.net = model.to(self.device, memory_format=fmt)
        self.arch: str = getattr(model, "arch", type(model).__name__)
        self.scale: int = int(model.scale)
        self.in_channels: int = int(getattr(model, "in_channels", 3))
        self.out_channels: int = int(getattr(model, "out_channels", self.in_channels))
        self.size_multiple: int = max(1, int(getattr(model, "size_multiple", 1) or 1))
        self.arbitrary_scale: bool = bool(getattr(model, "arbitrary_scale", False))
        self._bytes_per_pixel: float | None = None
        # The eager module stays reachable for memory probes, which must not trigger a compile.
        self.__dict__["_eager"] = self.net
        self.__dict__["_compiled"] = torch.compile(self.net) if compile else None

    def extra_repr(self) -> str:
        return (
            f"arch={self.arch!r}, device={str(self.device)!r}, precision={self.precision!r}, "
            f"fused={self.fused}, channels_last={self.channels_last}"
        )

    def _autocast(self) -> Any:
        if self.fused or self.precision == "fp32":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def forward(self, x: Tensor, **kwargs: Any) -> Tensor:
        """Run the generator on ``x`` (``kwargs`` such as ``size=`` go to unfused models)."""
        # reuse_large_blocks: activations' memory is recycled between layers, not page-faulted anew.
        with torch.inference_mode(), reuse_large_blocks(self.device):
            x = x.to(self.device, non_blocking=True)
            if not self.fused:
                x = x.float()
                if self.channels_last and x.dim() == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                if self._compiled is not None and not kwargs:
                    out = self._compiled(x)
                else:
                    out = self._eager(x, **kwargs)
            return out.float()

    def bytes_per_pixel(self) -> float:
        """Peak memory of one forward pass per LR input pixel (beyond :meth:`fixed_bytes`)."""
        if self._bytes_per_pixel is None:
            if self.fused:
                self._bytes_per_pixel = float(self.net.bytes_per_pixel())
            else:
                self._bytes_per_pixel = estimate_memory(
                    self._eager, self._probe, self.in_channels, self.size_multiple
                )
        return self._bytes_per_pixel

    def _probe(self, x: Tensor) -> Tensor:
        with torch.inference_mode(), self._autocast():
            prepared = x.to(self.device).contiguous(
                memory_format=torch.channels_last if self.channels_last else torch.contiguous_format
            )
            return self._eager(prepared)

    def fixed_bytes(self) -> int:
        """Memory of one forward pass that does not grow with the image (fused tail tiles)."""
        return int(self.net.fixed_bytes()) if self.fused else 0

    def memory_bytes(self, height: int, width: int) -> int:
        """Estimated peak memory of one forward pass on a ``height x width`` LR input."""
        return int(self.fixed_bytes() + self.bytes_per_pixel() * height * width)


def prepare_model(
    model: nn.Module,
    *,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    channels_last: bool | None = None,
    fuse: bool | None = None,
    compile: bool = False,
) -> FastModel:
    """Get ``model`` ready for fast inference (see :class:`FastModel` and the module doc).

    Args:
        model: a generator (``gansr.models.create`` / ``load``, or any module with ``scale``).
        device: where it runs.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"``; unsupported ones fall back to fp32 with a
            warning.
        channels_last: default: when the model has convolutions.
        fuse: use the architecture's fused form; default: on the CPU unless ``compile``.
        compile: run the (unfused) module through ``torch.compile``; each new input shape
            compiles on its first call.

    Raises:
        ConfigError: unknown precision. ModelError: not a generator.
    """
    return FastModel(
        model, device=device, precision=precision, channels_last=channels_last, fuse=fuse, compile=compile
    )


def naive_forward(model: nn.Module, x: Tensor) -> Tensor:
    """The baseline path of BasicSR and Real-ESRGAN's scripts: the module's own eager ``forward``
    in NCHW fp32 under ``torch.no_grad()``, on the whole image at once. ``model`` must be fp32 and
    NCHW (a fresh ``gansr.models.create``/``load``); it is put in eval mode."""
    model.eval()
    with torch.no_grad():
        return model(x.float().contiguous())
