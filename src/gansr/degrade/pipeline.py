"""Degradation pipelines: named steps from YAML or dicts, applied in order to make LR images.

A pipeline is a list of steps such as::

    - {type: gaussian_blur, sigma: [0.2, 3.0]}     # a [lo, hi] range is sampled uniformly per call
    - {type: resize, scale: 0.25, kernel: bicubic}  # bicubic (MATLAB), area, nearest, bilinear
    - {type: noise, sigma: [0, 10]}
    - {type: jpeg, quality: [30, 95]}

Step types and their keys (``*`` required; "range" means a number or ``[lo, hi]``):

=================== ===========================================================================
``gaussian_blur``   ``sigma``\\* (range, HR pixels), ``kernel_size`` (odd int)
``resize``          ``scale``\\* (> 0; 0.25 shrinks 4x), ``kernel`` (bicubic | area | nearest |
                    bilinear, default bicubic), ``antialias`` (bool, default true)
``blur_downsample`` ``scale``\\* (int), ``sigma`` (range, default ``(scale - 1) / 2``), ``kernel_size``
``area_downsample`` ``scale``\\* (int)
``noise``           ``sigma``\\* (range, 0..255 units), ``clip`` (bool, default true)
``jpeg``            ``quality``\\* (int range, 1..100)
``quantize``        ``bits`` (int, default 8): round to the levels of a saved image
``mnist``           (no keys) the MNIST protocol, 4x box average + N(0, 10^2) noise
=================== ===========================================================================

Every problem in a step raises :class:`gansr.errors.ConfigError` at construction, naming the (0-based) step
index and key. The output is clamped to ``[0, 1]``.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
import torch.nn.functional as F
import yaml

from gansr.degrade import ops
from gansr.degrade.resize import imresize
from gansr.errors import ConfigError

__all__ = ["PRESETS", "Pipeline"]

RESIZE_KERNELS = ("bicubic", "area", "nearest", "bilinear")


@dataclass(frozen=True)
class _Key:
    """Schema of one step key."""

    kind: type  # float, int, bool or str
    required: bool = False
    default: Any = None
    ranged: bool = False  # a [lo, hi] range is accepted and sampled per call
    minimum: float | None = None
    maximum: float | None = None
    exclusive_min: bool = False
    choices: tuple[str, ...] = ()
    odd: bool = False

    def describe(self) -> str:
        kind = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}[self.kind]
        if self.ranged:
            kind += f" or a [lo, hi] range of {'integers' if self.kind is int else 'numbers'}"
        return kind


_SIGMA = _Key(float, required=True, ranged=True, minimum=0.0)
_KERNEL_SIZE = _Key(int, minimum=1, odd=True)
_INT_SCALE = _Key(int, required=True, minimum=1)

_SCHEMAS: Mapping[str, Mapping[str, _Key]] = MappingProxyType(
    {
        "gaussian_blur": MappingProxyType({"sigma": _SIGMA, "kernel_size": _KERNEL_SIZE}),
        "resize": MappingProxyType(
            {
                "scale": _Key(float, required=True, minimum=0.0, exclusive_min=True),
                "kernel": _Key(str, default="bicubic", choices=RESIZE_KERNELS),
                "antialias": _Key(bool, default=True),
            }
        ),
        "blur_downsample": MappingProxyType(
            {
                "scale": _INT_SCALE,
                "sigma": _Key(float, ranged=True, minimum=0.0),
                "kernel_size": _KERNEL_SIZE,
            }
        ),
        "area_downsample": MappingProxyType({"scale": _INT_SCALE}),
        "noise": MappingProxyType({"sigma": _SIGMA, "clip": _Key(bool, default=True)}),
        "jpeg": MappingProxyType({"quality": _Key(int, required=True, ranged=True, minimum=1, maximum=100)}),
        "quantize": MappingProxyType({"bits": _Key(int, default=8, minimum=1, maximum=16)}),
        "mnist": MappingProxyType({}),
    }
)

#: Named pipelines for :meth:`Pipeline.preset`.
PRESETS: Mapping[str, tuple[Mapping[str, Any], ...]] = MappingProxyType(
    {
        # The literature's benchmark LR: MATLAB bicubic, saved as 8-bit PNG.
        "bicubic_x2": ({"type": "resize", "scale": 0.5}, {"type": "quantize"}),
        "bicubic_x3": ({"type": "resize", "scale": 1 / 3}, {"type": "quantize"}),
        "bicubic_x4": ({"type": "resize", "scale": 0.25}, {"type": "quantize"}),
        # SRGAN section 2.1: Gaussian filter then decimation by r (default sigma 1.5 for x4).
        "srgan_x4": ({"type": "blur_downsample", "scale": 4}, {"type": "quantize"}),
        # A randomised "blind" x4 degradation for real-world photos.
        "blind_x4": (
            {"type": "gaussian_blur", "sigma": [0.2, 3.0]},
            {"type": "resize", "scale": 0.25},
            {"type": "noise", "sigma": [0.0, 10.0]},
            {"type": "jpeg", "quality": [30, 95]},
        ),
        "mnist": ({"type": "mnist"},),
    }
)


def _is_number(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return False
    if kind is int:
        return isinstance(value, numbers.Integral)
    return isinstance(value, numbers.Real) and math.isfinite(float(value))


def _check_value(where: str, key: str, spec: _Key, value: Any) -> Any:
    """Validate one key's value and return it normalised (ranges as ``[lo, hi]`` lists)."""
    bad = f"{where}: key '{key}' must be {spec.describe()}, got {value!r}"
    if spec.kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(bad)
        return value
    if spec.kind is str:
        if not isinstance(value, str) or value not in spec.choices:
            raise ConfigError(f"{where}: key '{key}' must be one of {', '.join(spec.choices)}, got {value!r}")
        return value
    if spec.ranged and isinstance(value, list | tuple):
        if len(value) != 2 or not all(_is_number(v, spec.kind) for v in value):
            raise ConfigError(bad)
        lo, hi = (_check_bounds(where, key, spec, spec.kind(v)) for v in value)
        if lo > hi:
            raise ConfigError(f"{where}: key '{key}' range [{lo}, {hi}] has lo > hi")
        return [lo, hi]
    if not _is_number(value, spec.kind):
        raise ConfigError(bad)
    return _check_bounds(where, key, spec, spec.kind(value))


def _check_bounds(where: str, key: str, spec: _Key, value: float) -> Any:
    if spec.minimum is not None and (value <= spec.minimum if spec.exclusive_min else value < spec.minimum):
        relation = ">" if spec.exclusive_min else ">="
        raise ConfigError(f"{where}: key '{key}' must be {relation} {spec.minimum:g}, got {value!r}")
    if spec.maximum is not None and value > spec.maximum:
        raise ConfigError(f"{where}: key '{key}' must be <= {spec.maximum:g}, got {value!r}")
    if spec.odd and value % 2 == 0:
        raise ConfigError(f"{where}: key '{key}' must be odd, got {value!r}")
    return value


def _validate_step(index: int, step: Any) -> dict[str, Any]:
    """Check one step dict against its schema; return it with defaults filled in."""
    if not isinstance(step, Mapping):
        raise ConfigError(f"degradation step {index}: expected a mapping with a 'type' key, got {step!r}")
    if "type" not in step:
        raise ConfigError(f"degradation step {index}: missing key 'type'")
    kind = step["type"]
    if not isinstance(kind, str) or kind not in _SCHEMAS:
        raise ConfigError(f"degradation step {index}: unknown type {kind!r} (known: {', '.join(_SCHEMAS)})")
    where = f"degradation step {index} ({kind})"
    schema = _SCHEMAS[kind]
    for key in step:
        if key != "type" and key not in schema:
            allowed = ", ".join(schema) or "none"
            raise ConfigError(f"{where}: unknown key {key!r} (allowed: {allowed})")
    normalised: dict[str, Any] = {"type": kind}
    for key, spec in schema.items():
        if key in step and (step[key] is not None or spec.required):
            normalised[key] = _check_value(where, key, spec, step[key])
        elif spec.required:
            raise ConfigError(f"{where}: missing key '{key}'")
        else:
            normalised[key] = spec.default
    if kind == "resize" and normalised["kernel"] == "area":
        factor = 1 / normalised["scale"]
        if normalised["scale"] > 1 or abs(factor - round(factor)) > 1e-6:
            raise ConfigError(
                f"{where}: key 'scale' must be 1/n for kernel area, got {normalised['scale']!r}"
            )
    return normalised


def _downscale_factor(step: Mapping[str, Any]) -> float:
    kind = step["type"]
    if kind == "resize":
        return 1 / step["scale"]
    if kind in ("blur_downsample", "area_downsample"):
        return float(step["scale"])
    if kind == "mnist":
        return float(ops.MNIST_SCALE)
    return 1.0


def _sample(value: Any, kind: type, generator: torch.Generator) -> Any:
    """A fixed value as is; a ``[lo, hi]`` range sampled uniformly (integers inclusive)."""
    if not isinstance(value, list):
        return value
    lo, hi = value
    if kind is int:
        return int(torch.randint(lo, hi + 1, (1,), generator=generator, device=generator.device).item())
    u = torch.rand((), generator=generator, device=generator.device, dtype=torch.float64).item()
    return lo + (hi - lo) * u


def _resize_size(x: torch.Tensor, scale: float) -> tuple[int, int]:
    return math.ceil(scale * x.shape[-2]), math.ceil(scale * x.shape[-1])


def _apply_resize(x: torch.Tensor, step: Mapping[str, Any]) -> torch.Tensor:
    scale, kernel = step["scale"], step["kernel"]
    if kernel == "bicubic":
        return imresize(x, scale, antialias=step["antialias"])
    if kernel == "area":
        return ops.area_downsample(x, round(1 / scale))
    flat = x.reshape(-1, 1, *x.shape[-2:])
    if kernel == "nearest":
        # nearest-exact samples pixel centres (as PIL/scikit-image); plain "nearest" is shifted.
        out = F.interpolate(flat, size=_resize_size(x, scale), mode="nearest-exact")
    else:
        antialias = step["antialias"] and scale < 1
        out = F.interpolate(
            flat, size=_resize_size(x, scale), mode="bilinear", align_corners=False, antialias=antialias
        )
    return out.reshape(*x.shape[:-2], *out.shape[-2:])


def _apply(x: torch.Tensor, step: Mapping[str, Any], generator: torch.Generator) -> torch.Tensor:
    kind = step["type"]
    if kind == "gaussian_blur":
        sigma = _sample(step["sigma"], float, generator)
        return ops.gaussian_blur(x, sigma, kernel_size=step["kernel_size"])
    if kind == "resize":
        return _apply_resize(x, step)
    if kind == "blur_downsample":
        sigma = _sample(step["sigma"], float, generator)
        return ops.blur_downsample(x, step["scale"], sigma=sigma, kernel_size=step["kernel_size"])
    if kind == "area_downsample":
        return ops.area_downsample(x, step["scale"])
    if kind == "noise":
        sigma = _sample(step["sigma"], float, generator)
        return ops.add_gaussian_noise(x, sigma, generator=generator, clip=step["clip"])
    if kind == "jpeg":
        return ops.jpeg_compress(x, _sample(step["quality"], int, generator))
    if kind == "quantize":
        return ops.quantize(x, step["bits"])
    if kind == "mnist":
        return ops.mnist_degrade(x, generator=generator)
    raise AssertionError(f"unhandled step type {kind}")  # _validate_step rejects unknown types


class Pipeline:
    """A validated sequence of degradation steps that turns HR images into LR images.

    Build one with ``Pipeline(steps)`` / :meth:`from_config` (a list of dicts),
    :meth:`from_yaml` or :meth:`preset`; call it on a ``(C, H, W)`` or ``(N, C, H, W)`` float
    tensor in ``[0, 1]``. Random parameters (``[lo, hi]`` ranges, noise) are drawn from the
    ``generator`` passed to the call, once per call (shared by a batch), so a seeded generator
    reproduces the output exactly.

    Attributes:
        scale: Total downscale factor (HR size / LR size), e.g. ``4.0`` for ``bicubic_x4``.
    """

    def __init__(self, steps: Sequence[Mapping[str, Any]]) -> None:
        if isinstance(steps, str | bytes | Mapping) or not isinstance(steps, Sequence):
            raise ConfigError(f"a degradation pipeline must be a list of steps, got {type(steps).__name__}")
        if not steps:
            raise ConfigError("a degradation pipeline needs at least one step")
        self._steps = tuple(MappingProxyType(_validate_step(i, step)) for i, step in enumerate(steps))
        factor = math.prod(_downscale_factor(step) for step in self._steps)
        # 1 / (1/3) and similar products land a rounding error away from the intended integer.
        self.scale: float = float(round(factor)) if abs(factor - round(factor)) < 1e-6 else factor

    @classmethod
    def from_config(cls, steps: Sequence[Mapping[str, Any]]) -> Pipeline:
        """Build from a list of step dicts (as parsed from YAML/JSON)."""
        return cls(steps)

    @classmethod
    def from_yaml(cls, path_or_text: str | Path) -> Pipeline:
        """Build from a YAML file or YAML text: a list of steps, or a mapping with a ``steps`` list.

        A ``Path``, or a one-line string naming an existing file or ending in ``.yaml``/``.yml``,
        is read as a file; any other string is parsed as YAML text.
        """
        text, source = _read_yaml_source(path_or_text)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"{source}: invalid YAML ({first})") from None
        if isinstance(data, Mapping):
            if set(data) != {"steps"}:
                raise ConfigError(f"{source}: expected a list of steps or a mapping with only 'steps'")
            data = data["steps"]
        if not isinstance(data, list):
            raise ConfigError(f"{source}: expected a list of degradation steps, got {type(data).__name__}")
        return cls(data)

    @classmethod
    def preset(cls, name: str) -> Pipeline:
        """A named pipeline: one of :meth:`presets` (``bicubic_x4``, ``srgan_x4``, ``mnist``, ...)."""
        if name not in PRESETS:
            raise ConfigError(f"unknown degradation preset {name!r} (known: {', '.join(PRESETS)})")
        return cls([dict(step) for step in PRESETS[name]])

    @staticmethod
    def presets() -> list[str]:
        """Names accepted by :meth:`preset`."""
        return list(PRESETS)

    @property
    def config(self) -> list[dict[str, Any]]:
        """The steps with defaults filled in, JSON/YAML-able; ``Pipeline(p.config)`` rebuilds ``p``."""
        return [copy.deepcopy(dict(step)) for step in self._steps]

    def __call__(self, hr: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Degrade ``hr``: ``(C, H, W)`` or ``(N, C, H, W)`` float in ``[0, 1]``; the result is clamped."""
        if not isinstance(hr, torch.Tensor) or not hr.is_floating_point() or hr.ndim not in (3, 4):
            shape = tuple(hr.shape) if isinstance(hr, torch.Tensor) else type(hr).__name__
            raise TypeError(f"Pipeline needs a float tensor (C, H, W) or (N, C, H, W), got {shape}")
        gen = ops.resolve_generator(generator)
        out = hr
        for step in self._steps:
            out = _apply(out, step, gen)
        return out.clamp(0.0, 1.0)

    def __len__(self) -> int:
        return len(self._steps)

    def __repr__(self) -> str:
        return f"Pipeline({self.config!r})"


def _read_yaml_source(path_or_text: str | Path) -> tuple[str, str]:
    """Return ``(yaml_text, name_for_messages)``."""
    if isinstance(path_or_text, str) and "\n" not in path_or_text:
        candidate = Path(path_or_text)
        if candidate.suffix.lower() in (".yaml", ".yml") or candidate.is_file():
            path_or_text = candidate
    if isinstance(path_or_text, Path):
        try:
            return path_or_text.read_text(encoding="utf-8"), str(path_or_text)
        except FileNotFoundError:
            raise ConfigError(f"{path_or_text}: degradation pipeline file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path_or_text}: cannot read degradation pipeline ({exc})") from None
    if not isinstance(path_or_text, str):
        raise ConfigError(f"expected a YAML path or text, got {type(path_or_text).__name__}")
    return path_or_text, "degradation pipeline"
