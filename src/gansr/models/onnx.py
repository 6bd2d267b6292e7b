"""ONNX super-resolution models (``gansr export`` output, or any NCHW image model) run by
onnxruntime, as ``nn.Module`` generators: :func:`gansr.models.load` returns one for an ``.onnx`` file.

The graph must take one float32 ``(N, C, H, W)`` input in ``[0, 1]`` with dynamic height and
width and return ``(N, C, sH, sW)``. ``scale``, ``in_channels`` and ``size_multiple`` come from
the metadata ``gansr export`` writes; for other files the channels come from the input's shape and
the scale from one small probe run.

Memory for tiling: onnxruntime's activations are not visible to PyTorch's memory probe, so the
estimate per LR pixel is made from the graph: its widest convolution (in or out channels) at the
output resolution, in float32, with the same peak factor as unfused PyTorch models
(:data:`gansr.engine.fast.PEAK_FACTOR`). That is an
upper bound for SR networks (most of their work is at the LR resolution), so tiles err small.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gansr.engine.fast import PEAK_FACTOR
from gansr.errors import ConfigError, ModelError, install_hint

__all__ = ["ONNX_SUFFIX", "OnnxGenerator", "load_onnx"]

ONNX_SUFFIX = ".onnx"
_PROBE = 16  # LR pixels per side of the probe run that finds the scale of a file without metadata


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(
            "running .onnx models needs onnxruntime; .onnx is otherwise an export format for other "
            f"runtimes (gansr runs .safetensors and .pth directly): {install_hint('onnx')}"
        ) from None
    return onnxruntime


class OnnxGenerator(nn.Module):
    """An ONNX model run by onnxruntime on the CPU, with the attributes of a gansr generator.

    Args:
        path: the ``.onnx`` file.
        threads: onnxruntime's intra-op threads (default: ``torch.get_num_threads()``, so that
            ``OMP_NUM_THREADS`` and the like are honoured as for PyTorch models).

    Raises:
        ModelError: not a loadable ONNX model, or not one image in, one image out.
        ConfigError: onnxruntime is not installed.
    """

    arch = "onnx"

    def __init__(self, path: str | os.PathLike[str], *, threads: int | None = None) -> None:
        super().__init__()
        ort = _onnxruntime()
        self.path = Path(path)
        options = ort.SessionOptions()
        options.log_severity_level = 4  # failures become one ModelError, not log spam
        options.intra_op_num_threads = max(1, threads or torch.get_num_threads())
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own unrelated types for bad files
            raise ModelError(f"{self.path}: not a loadable ONNX model ({_first_line(exc)})") from None
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1 or len(inputs[0].shape) != 4:
            raise ModelError(f"{self.path}: expected one (N, C, H, W) image input, got {len(inputs)} inputs")
        self._input, self._output = inputs[0].name, outputs[0].name
        meta = self._session.get_modelmeta().custom_metadata_map or {}
        self.metadata: dict[str, Any] = {"format": "onnx", "source": str(self.path), **meta}
        shape = inputs[0].shape
        if isinstance(shape[2], int) or isinstance(shape[3], int):
            raise ModelError(
                f"{self.path}: the graph has a fixed input size {shape[2]}x{shape[3]}; gansr needs "
                "dynamic height and width (export without --static)"
            )
        channels = shape[1] if isinstance(shape[1], int) else _int(meta, "in_channels", 3)
        self.in_channels: int = _int(meta, "in_channels", channels)
        self.size_multiple: int = max(1, _int(meta, "size_multiple", 1))
        self.scale: int = _int(meta, "scale", 0) or self._probe_scale()
        self.out_channels: int = _int(meta, "out_channels", self.in_channels)
        self._bytes_per_pixel = float(
            PEAK_FACTOR * 4 * self.scale**2 * max(_widest_conv(self.path), self.out_channels)
        )

    def _probe_scale(self) -> int:
        side = -(-_PROBE // self.size_multiple) * self.size_multiple
        out = self._run(np.zeros((1, self.in_channels, side, side), np.float32))
        scale, rest = divmod(out.shape[-1], side)
        if rest or scale < 1 or out.shape[-2] != side * scale:
            raise ModelError(
                f"{self.path}: a {side}x{side} input gave {out.shape[-2]}x{out.shape[-1]}: not an "
                "integer-scale super-resolution model"
            )
        return scale

    def _run(self, x: np.ndarray) -> np.ndarray:
        try:
            (out,) = self._session.run([self._output], {self._input: x})
        except Exception as exc:
            raise ModelError(f"{self.path}: onnxruntime failed ({_first_line(exc)})") from None
        return out

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, h, w)`` float on any device -> float32 ``(N, C, sh, sw)`` on the CPU."""
        data = x.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(np.ascontiguousarray(self._run(data), dtype=np.float32))

    # gansr.engine.fast treats a model with fuse_for_inference as ready-made: it calls it directly
    # (no autocast, no channels-last copy) and asks it for its own memory estimate.
    def fuse_for_inference(
        self, dtype: torch.dtype = torch.float32, channels_last: bool = False
    ) -> nn.Module:
        """This model itself: onnxruntime does its own graph optimizations, always in float32."""
        return self

    def bytes_per_pixel(self) -> float:
        """Estimated peak memory per LR input pixel (see the module doc)."""
        return self._bytes_per_pixel

    def fixed_bytes(self) -> int:
        """Memory that does not grow with the input: none is counted (weights are tiny)."""
        return 0


def _int(meta: dict[str, str], key: str, default: int) -> int:
    try:
        return int(meta[key])
    except (KeyError, ValueError):
        return default


def _widest_conv(path: Path) -> int:
    """The most channels any Conv weight of the graph has (in or out); 64 when unreadable."""
    try:
        import onnx
    except ImportError:  # onnxruntime alone: guess BasicSR's usual width
        return 64
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return 64
    weights = {init.name: tuple(init.dims) for init in model.graph.initializer}
    widest = 0
    for node in model.graph.node:
        if node.op_type == "Conv" and len(node.input) > 1 and len(weights.get(node.input[1], ())) == 4:
            out_ch, in_ch = weights[node.input[1]][:2]
            widest = max(widest, out_ch, in_ch)
    return widest or 64


def _first_line(exc: BaseException) -> str:
    text = " ".join((str(exc).strip().splitlines() or [type(exc).__name__])[0].split())
    return text or type(exc).__name__


def load_onnx(path: str | os.PathLike[str]) -> OnnxGenerator:
    """Load ``path`` as an :class:`OnnxGenerator` (in eval mode).

    Raises:
        ModelError: missing or unusable file. ConfigError: onnxruntime is not installed.
    """
    file = Path(path)
    if not file.is_file():
        raise ModelError(f"{file}: no such model file")
    return OnnxGenerator(file).eval()
