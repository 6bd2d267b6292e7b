"""ONNX export with dynamic batch/height/width, verified against PyTorch with onnxruntime.

Exporter choice: torch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``).
torch >= 2.9 defaults to the ``torch.export``-based exporter, which needs the separate
``onnxscript`` package; tried here (onnxscript 0.7) it exported correctly but took ~17 s for a
one-conv model, printed version-converter failures at opset 17, and would add a dependency. The
TorchScript exporter is still shipped (with a deprecation warning, silenced here), needs nothing
beyond torch, and exports these convolutional networks exactly; switch when it is removed.

Tracing records one path through Python ``if``s. The generators pad inputs to ``size_multiple``
with a shape-dependent ``if``, so the trace is taken at an example size that is *not* a multiple
(``example_hw`` is nudged up by one where needed): the padding and the final crop are then in the
graph with shape-computed amounts (zero for inputs that need none).

Parametrized weights (spectral norm in the discriminators) are baked into plain weights on a copy
of the model first: in eval mode they are constants, and the exporter has no mapping for the
power-iteration ops. Models whose forward builds size-dependent constants (``bicubic`` and
``srcnn``, whose MATLAB ``imresize`` makes its weight matrices in Python) only work at the traced
size: export them with ``dynamic_hw=False``; :func:`verify_onnx` catches the mismatch.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gansr.data.io import atomic_write
from gansr.errors import ModelError

INPUT_NAME = "input"
OUTPUT_NAME = "output"


def _example_hw(model: nn.Module, example_hw: tuple[int, int], dynamic_hw: bool) -> tuple[int, int]:
    h, w = (int(v) for v in example_hw)
    if h < 1 or w < 1:
        raise ModelError(f"example size must be positive, got {h}x{w}")
    multiple = int(getattr(model, "size_multiple", 1) or 1)
    if dynamic_hw and multiple > 1:
        h += 1 if h % multiple == 0 else 0
        w += 1 if w % multiple == 0 else 0
    return h, w


def _in_channels(model: nn.Module) -> int:
    channels = getattr(model, "in_channels", None)
    if isinstance(channels, int):
        return channels
    return int(getattr(model, "config", {}).get("in_channels", 3))


def _plain_weights(model: nn.Module) -> nn.Module:
    """``model`` itself, or a copy whose parametrized weights (spectral norm) are plain parameters.

    ``torch.nn.utils.parametrize.remove_parametrizations`` is not used: a deep copy shares the
    dynamically created parametrized class with the original, and removing edits that class,
    which would break the caller's model. The copy's modules are switched back to their plain
    class instead.
    """
    import copy

    from torch.nn.utils import parametrize

    if not any(parametrize.is_parametrized(m) for m in model.modules()):
        return model
    model = copy.deepcopy(model)
    for module in list(model.modules()):  # a list: the loop edits the module tree
        if not parametrize.is_parametrized(module):
            continue
        with torch.no_grad():
            values = {name: getattr(module, name).detach().clone() for name in module.parametrizations}
        plain_class = type(module).__bases__[0]  # parametrize subclasses the module's own class
        del module.parametrizations
        module.__class__ = plain_class
        for name, value in values.items():
            module.register_parameter(name, nn.Parameter(value, requires_grad=False))
    return model


def _metadata(model: nn.Module, dynamic_hw: bool) -> dict[str, str]:
    import json

    from gansr.version import __version__

    props = {"producer": f"gansr {__version__}", "dynamic_hw": str(dynamic_hw).lower()}
    if isinstance(getattr(model, "arch", None), str):
        props["arch"] = model.arch
    if isinstance(getattr(model, "config", None), dict):
        props["config"] = json.dumps(model.config, sort_keys=True)
    for key in ("scale", "in_channels", "out_channels", "size_multiple"):
        if isinstance(getattr(model, key, None), int):
            props[key] = str(getattr(model, key))
    return props


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    opset: int = 17,
    dynamic_hw: bool = True,
    example_hw: tuple[int, int] = (64, 64),
) -> Path:
    """Export ``model`` to an ONNX file and return its path.

    The graph has one input ``input`` ``(N, C, H, W)`` float32 and one output ``output``; the batch
    axis is always dynamic, height and width too with ``dynamic_hw`` (otherwise fixed to
    ``example_hw``). The model's ``arch``, ``config``, ``scale`` etc. are stored as ONNX
    metadata properties. The file is written to a temporary name in the destination folder and
    renamed into place. The model is exported in eval mode on the CPU (it is not modified).

    Raises:
        ModelError: the model cannot be exported (an op without an ONNX mapping, a bad size).
        ConfigError: the ``onnx`` package is missing (``pip install gansr[onnx]``).
    """
    onnx = _require("onnx")
    dest = Path(path)
    h, w = _example_hw(model, example_hw, dynamic_hw)
    example = torch.rand(1, _in_channels(model), h, w, generator=torch.Generator().manual_seed(0))
    dynamic_axes: dict[str, dict[int, str]] = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
    if dynamic_hw:
        dynamic_axes[INPUT_NAME].update({2: "height", 3: "width"})
        dynamic_axes[OUTPUT_NAME].update({2: "out_height", 3: "out_width"})

    device = next(model.parameters(), torch.empty(0)).device
    was_training = model.training
    graph = io.BytesIO()  # in memory: the file itself is written once, by atomic_write
    try:
        model.eval()  # before baking: eval-mode spectral norm uses its stored vectors, no power iteration
        traced = _plain_weights(model).cpu()
        with warnings.catch_warnings(), _quiet_output():
            # The TorchScript exporter's deprecation notice and tracer warnings about the
            # shape-dependent padding branch (handled by the example size, see module docstring).
            warnings.simplefilter("ignore")
            torch.onnx.export(
                traced,
                (example,),
                graph,
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes=dynamic_axes,
                do_constant_folding=True,
            )
    except Exception as exc:
        if isinstance(exc, OSError | ModelError):
            raise
        arch = getattr(model, "arch", type(model).__name__)
        hint = "; a fixed height/width export may work" if dynamic_hw else ""
        raise ModelError(f"cannot export {arch!r} to ONNX (opset {opset}): {_summary(exc)}{hint}") from exc
    finally:
        model.to(device).train(was_training)
    proto = onnx.load_model_from_string(graph.getvalue())
    for key, value in _metadata(model, dynamic_hw).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    with atomic_write(dest) as fh:
        fh.write(proto.SerializeToString())
    return dest


def _summary(exc: BaseException) -> str:
    """The first line of an exporter / onnxruntime error, without its graph dump and boilerplate."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    for tail in (" Please feel free to request support", " [Caused by"):
        text = text.split(tail)[0]
    return text.strip().rstrip(".")


@contextlib.contextmanager
def _quiet_output() -> Iterator[None]:
    """Drop what native code writes to file descriptors 1 and 2 meanwhile.

    On failure the TorchScript exporter prints the whole IR graph (thousands of lines) from C++:
    its logging switch is always on in torch 2.13. The failure itself is re-raised as one line.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved: list[tuple[int, int]] = []
    try:
        with open(os.devnull, "wb") as null:
            for fd in (1, 2):
                try:
                    saved.append((fd, os.dup(fd)))
                except OSError:  # no such descriptor (embedded interpreters): nothing to silence
                    continue
                os.dup2(null.fileno(), fd)
        yield
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)


def _require(name: str) -> Any:
    import importlib

    from gansr.errors import ConfigError

    try:
        return importlib.import_module(name)
    except ImportError:
        raise ConfigError(f"ONNX support needs the '{name}' package: pip install 'gansr[onnx]'") from None


def verify_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    input_hw: tuple[int, int] = (37, 53),
    batch: int = 1,
    seed: int = 0,
) -> float:
    """Run ``path`` with onnxruntime and ``model`` with PyTorch on one random input; return max |diff|.

    Use an ``input_hw`` different from the export example (the default is odd on purpose) to
    check that the dynamic axes really work.
    """
    ort = _require("onnxruntime")
    x = torch.rand(batch, _in_channels(model), *input_hw, generator=torch.Generator().manual_seed(seed))
    options = ort.SessionOptions()
    options.log_severity_level = 4  # failures are reported below as one ModelError, not as log spam
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    try:
        (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
    except Exception as exc:
        first = _summary(exc)
        raise ModelError(
            f"{path}: onnxruntime failed at input {tuple(x.shape)} ({first}); the graph is probably only "
            "valid at its export size (export with fixed height/width instead)"
        ) from None
    device = next(model.parameters(), torch.empty(0)).device
    was_training = model.training
    try:
        with torch.no_grad():
            want = model.eval()(x.to(device)).cpu()
    finally:
        model.train(was_training)
    if tuple(got.shape) != tuple(want.shape):
        raise ModelError(f"{path}: ONNX output shape {tuple(got.shape)} != PyTorch {tuple(want.shape)}")
    return float((torch.from_numpy(got) - want).abs().max())
