"""Degradation pipelines: named steps from YAML or dicts, applied in order to make LR images.

A pipeline is a list of steps such as::

    - {type: gaussian_blur, sigma: [0.2, 3.0]}     # a [lo, hi] range is sampled uniformly per call
    - {type: resize, scale: 0.25, kernel: bicubic}  # bicubic (MATLAB), area, nearest, bilinear
    - {type: noise, sigma: [0, 10]}
    - {type: jpeg, quality: [30, 95]}

Step types and their keys (``*`` required; "range" means a number or ``[lo, hi]``; "weights" a
mapping of choices to relative probabilities, e.g. ``{area: 1, bicubic: 2}``):

=================== ===========================================================================
``gaussian_blur``   ``sigma``\\* (range, HR pixels), ``kernel_size`` (odd int)
``resize``          ``scale``\\* (> 0; 0.25 shrinks 4x), ``kernel`` (bicubic | area | nearest |
                    bilinear, default bicubic), ``antialias`` (bool, default true)
``blur_downsample`` ``scale``\\* (int), ``sigma`` (range, default ``(scale - 1) / 2``), ``kernel_size``
``area_downsample`` ``scale``\\* (int)
``noise``           ``sigma``\\* (range, 0..255 units), ``clip`` (bool, default true), ``gray_prob``
                    (probability of one noise image for all channels)
``jpeg``            ``quality``\\* (int range, 1..100)
``quantize``        ``bits`` (int, default 8): round to the levels of a saved image
``mnist``           (no keys) the MNIST protocol, 4x box average + N(0, 10^2) noise
``blur``            a random kernel (:mod:`gansr.degrade.kernels`): ``kernel_size`` (odd int range,
                    default [7, 21]), ``kinds`` (weights over iso, aniso, generalized_iso,
                    generalized_aniso, plateau_iso, plateau_aniso; Real-ESRGAN's mix), ``sigma``
                    (range, default [0.2, 3]), ``beta_gaussian`` ([0.5, 4]), ``beta_plateau``
                    ([1, 2]), ``sinc_prob`` (0.1: a 2-D sinc kernel instead)
``sinc``            ringing low-pass: ``kernel_size`` (odd int range), ``cutoff`` (range, radians,
                    default [pi/3, pi])
``random_resize``   ``directions`` (weights over up, down, keep), ``up`` / ``down`` (factor
                    ranges), ``modes`` (weights over area, bilinear, bicubic; not antialiased)
``resize_to``       ``scale``\\*: to exactly ``scale`` times the pipeline's *input* size (undoes
                    random resizes), ``modes`` (weights)
``poisson_noise``   ``scale``\\* (range: 1 = shot noise of a 255-count sensor), ``gray_prob``
``random_order``    ``groups``\\*: lists of steps run in a random order (``resize_to`` may be in one)
=================== ===========================================================================

Every step except the size-changing ones also takes ``p``: the probability that it runs (default
1). ``realworld_x4`` chains these as Real-ESRGAN's second-order degradation.

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

from gansr.degrade import kernels, ops
from gansr.degrade.kernels import KERNEL_KINDS
from gansr.degrade.resize import imresize
from gansr.errors import ConfigError

__all__ = ["PRESETS", "Pipeline"]

RESIZE_KERNELS = ("bicubic", "area", "nearest", "bilinear")

# Real-ESRGAN's kernel mix (first and second degradation stage alike).
_REAL_ESRGAN_KINDS = MappingProxyType(
    {"iso": 0.45, "aniso": 0.25, "generalized_iso": 0.12, "generalized_aniso": 0.03,
     "plateau_iso": 0.12, "plateau_aniso": 0.03}
)  # fmt: skip


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
        if self.kind is dict:
            return f"a mapping of {', '.join(self.choices)} to weights >= 0 (not all 0)"
        if self.kind is list:
            return "a list"
        kind = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}[self.kind]
        if self.ranged:
            kind += f" or a [lo, hi] range of {'integers' if self.kind is int else 'numbers'}"
        return kind


_SIGMA = _Key(float, required=True, ranged=True, minimum=0.0)
_KERNEL_SIZE = _Key(int, minimum=1, odd=True)
_INT_SCALE = _Key(int, required=True, minimum=1)
_P = _Key(float, default=1.0, minimum=0.0, maximum=1.0)  # probability that the step runs
_GRAY = _Key(float, default=0.0, minimum=0.0, maximum=1.0)  # probability of luminance-only noise
_MODES = _Key(
    dict, default={"area": 1.0, "bilinear": 1.0, "bicubic": 1.0}, choices=("area", "bilinear", "bicubic")
)

_SCHEMAS: Mapping[str, Mapping[str, _Key]] = MappingProxyType(
    {
        "gaussian_blur": MappingProxyType({"sigma": _SIGMA, "kernel_size": _KERNEL_SIZE, "p": _P}),
        "blur": MappingProxyType(
            {
                "kernel_size": _Key(int, default=[7, 21], ranged=True, minimum=1, odd=True),
                "kinds": _Key(dict, default=dict(_REAL_ESRGAN_KINDS), choices=KERNEL_KINDS),
                "sigma": _Key(float, default=[0.2, 3.0], ranged=True, minimum=0.0, exclusive_min=True),
                "beta_gaussian": _Key(
                    float, default=[0.5, 4.0], ranged=True, minimum=0.0, exclusive_min=True
                ),
                "beta_plateau": _Key(float, default=[1.0, 2.0], ranged=True, minimum=0.0, exclusive_min=True),
                "sinc_prob": _Key(float, default=0.1, minimum=0.0, maximum=1.0),
                "p": _P,
            }
        ),
        "sinc": MappingProxyType(
            {
                "kernel_size": _Key(int, default=[7, 21], ranged=True, minimum=1, odd=True),
                "cutoff": _Key(
                    float,
                    default=[math.pi / 3, math.pi],
                    ranged=True,
                    minimum=0.0,
                    exclusive_min=True,
                    maximum=math.pi,
                ),
                "p": _P,
            }
        ),  # fmt: skip
        "random_resize": MappingProxyType(
            {
                "directions": _Key(
                    dict, default={"up": 0.2, "down": 0.7, "keep": 0.1}, choices=("up", "down", "keep")
                ),
                "up": _Key(float, default=[1.0, 1.5], ranged=True, minimum=1.0),
                "down": _Key(
                    float, default=[0.15, 1.0], ranged=True, minimum=0.0, exclusive_min=True, maximum=1.0
                ),
                "modes": _MODES,
            }
        ),
        "resize_to": MappingProxyType(
            {"scale": _Key(float, required=True, minimum=0.0, exclusive_min=True), "modes": _MODES}
        ),
        "poisson_noise": MappingProxyType(
            {"scale": _Key(float, required=True, ranged=True, minimum=0.0), "gray_prob": _GRAY, "p": _P}
        ),
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
        "noise": MappingProxyType(
            {"sigma": _SIGMA, "clip": _Key(bool, default=True), "gray_prob": _GRAY, "p": _P}
        ),
        "jpeg": MappingProxyType(
            {"quality": _Key(int, required=True, ranged=True, minimum=1, maximum=100), "p": _P}
        ),
        # Runs its groups (lists of steps) in a random order; `resize_to` may sit in one of them.
        "random_order": MappingProxyType({"groups": _Key(list, required=True)}),
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
        # Fixed test degradations for the real-photo benchmark (gansr eval --degradation): a web
        # JPEG (downscaled, then quality 60) and a phone photo (soft, noisy, JPEG 70).
        "jpeg60_x4": ({"type": "resize", "scale": 0.25}, {"type": "jpeg", "quality": 60}),
        "blurnoise_jpeg70_x4": (
            {"type": "gaussian_blur", "sigma": 1.2},
            {"type": "resize", "scale": 0.25},
            {"type": "noise", "sigma": 4.0},
            {"type": "jpeg", "quality": 70},
        ),
        # Photos as people have them (what gansr's real-photo models train on): the second-order
        # structure of realworld_x4 with the strength of a phone or web photo, not of a worst case
        # (milder blur, resizes within 0.5-1.3x, noise in fewer samples). It ends the way web
        # images are made: resized, then saved as JPEG (quality 30-95, 9 in 10 samples), so the
        # 8x8 blocks sit on the LR pixel grid as in a downscaled JPEG; an earlier JPEG (half the
        # samples) gives blocks that were resized afterwards. Trained on realworld_x4, a model in
        # a CPU budget learned to smooth everything (worse than bicubic on a JPEG-60 photo after
        # 1,200 steps); with the final JPEG in random order (half before the resize) it learned
        # to denoise but kept the block grid of a downscaled JPEG.
        "realphoto_x4": (
            {"type": "blur", "kernel_size": [7, 15], "sigma": [0.2, 1.5], "sinc_prob": 0.05, "p": 0.7},
            {
                "type": "random_resize",
                "directions": {"up": 0.2, "down": 0.5, "keep": 0.3},
                "up": [1.0, 1.3],
                "down": [0.5, 1.0],
            },
            {"type": "noise", "sigma": [1.0, 10.0], "gray_prob": 0.4, "p": 0.4},
            {"type": "poisson_noise", "scale": [0.05, 1.0], "gray_prob": 0.4, "p": 0.3},
            {"type": "jpeg", "quality": [50, 95], "p": 0.5},
            {"type": "resize_to", "scale": 0.25},
            {"type": "sinc", "kernel_size": [7, 15], "p": 0.2},
            {"type": "jpeg", "quality": [30, 95], "p": 0.9},
        ),  # fmt: skip
        # Real-world photos (Real-ESRGAN's second-order model, noise a little milder): two rounds of
        # blur, random resize, noise and JPEG, then the resize to exactly 1/4 with a sinc filter
        # and a last JPEG in random order.
        "realworld_x4": (
            {"type": "blur", "sigma": [0.2, 3.0], "sinc_prob": 0.1},
            {
                "type": "random_resize",
                "directions": {"up": 0.2, "down": 0.7, "keep": 0.1},
                "up": [1.0, 1.5],
                "down": [0.15, 1.0],
            },
            {"type": "noise", "sigma": [1.0, 20.0], "gray_prob": 0.4, "p": 0.5},
            {"type": "poisson_noise", "scale": [0.05, 2.0], "gray_prob": 0.4, "p": 0.5},
            {"type": "jpeg", "quality": [30, 95]},
            {"type": "blur", "sigma": [0.2, 1.5], "sinc_prob": 0.1, "p": 0.8},
            {
                "type": "random_resize",
                "directions": {"up": 0.3, "down": 0.4, "keep": 0.3},
                "up": [1.0, 1.2],
                "down": [0.3, 1.0],
            },
            {"type": "noise", "sigma": [1.0, 15.0], "gray_prob": 0.4, "p": 0.5},
            {"type": "poisson_noise", "scale": [0.05, 1.5], "gray_prob": 0.4, "p": 0.5},
            {
                "type": "random_order",
                "groups": [
                    [{"type": "resize_to", "scale": 0.25}, {"type": "sinc", "p": 0.8}],
                    [{"type": "jpeg", "quality": [30, 95]}],
                ],
            },
        ),  # fmt: skip
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
    if spec.kind is list:  # random_order groups: checked by _validate_groups
        return value
    if spec.kind is dict:
        if (
            not isinstance(value, Mapping)
            or not value
            or any(k not in spec.choices or not _is_number(v, float) or v < 0 for k, v in value.items())
            or sum(float(v) for v in value.values()) <= 0
        ):
            raise ConfigError(bad)
        return {k: float(v) for k, v in value.items()}
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
            normalised[key] = copy.deepcopy(spec.default)
    if kind == "random_order":
        normalised["groups"] = _validate_groups(where, normalised["groups"])
    if kind == "resize" and normalised["kernel"] == "area":
        factor = 1 / normalised["scale"]
        if normalised["scale"] > 1 or abs(factor - round(factor)) > 1e-6:
            raise ConfigError(
                f"{where}: key 'scale' must be 1/n for kernel area, got {normalised['scale']!r}"
            )
    return normalised


# Steps whose output size is not the input's.
_SIZE_CHANGING = ("resize", "blur_downsample", "area_downsample", "mnist", "random_resize", "resize_to")


def _validate_groups(where: str, groups: Any) -> list[list[dict[str, Any]]]:
    """``random_order`` groups: a list of non-empty step lists; only ``resize_to`` may change the size."""
    if not isinstance(groups, list) or not groups or not all(isinstance(g, list) and g for g in groups):
        raise ConfigError(f"{where}: key 'groups' must be a list of non-empty lists of steps")
    out = []
    for g, group in enumerate(groups):
        steps = []
        for i, step in enumerate(group):
            try:
                checked = _validate_step(i, step)
            except ConfigError as exc:
                raise ConfigError(f"{where}: group {g}: {exc}") from None
            if (
                checked["type"] in _SIZE_CHANGING
                and checked["type"] != "resize_to"
                or checked["type"] == "random_order"
            ):
                raise ConfigError(
                    f"{where}: group {g} step {i}: {checked['type']} cannot run in a random order"
                )
            steps.append(checked)
        out.append(steps)
    if sum(s["type"] == "resize_to" for group in out for s in group) > 1:
        raise ConfigError(f"{where}: at most one resize_to step in its groups")
    return out


def _downscale_factor(steps: Sequence[Mapping[str, Any]]) -> float | None:
    """HR size / LR size after ``steps``; None when a random resize is not undone by ``resize_to``."""
    factor: float | None = 1.0
    for step in steps:
        kind = step["type"]
        if kind == "resize_to":
            factor = 1 / step["scale"]
        elif kind == "random_order":
            inner = [s for group in step["groups"] for s in group if s["type"] == "resize_to"]
            if inner:
                factor = 1 / inner[0]["scale"]
        elif factor is None:
            continue
        elif kind == "random_resize":
            factor = None
        elif kind == "resize":
            factor /= step["scale"]
        elif kind in ("blur_downsample", "area_downsample"):
            factor *= float(step["scale"])
        elif kind == "mnist":
            factor *= float(ops.MNIST_SCALE)
    return factor


def _sample(value: Any, kind: type, generator: torch.Generator) -> Any:
    """A fixed value as is; a ``[lo, hi]`` range sampled uniformly (integers inclusive)."""
    if not isinstance(value, list):
        return value
    lo, hi = value
    if kind is int:
        return int(torch.randint(lo, hi + 1, (1,), generator=generator, device=generator.device).item())
    u = torch.rand((), generator=generator, device=generator.device, dtype=torch.float64).item()
    return lo + (hi - lo) * u


def _resize_size(x: torch.Tensor | tuple[int, int], scale: float) -> tuple[int, int]:
    """The size of ``x`` (a tensor or an ``(H, W)`` pair) times ``scale``, rounded up."""
    h, w = x if isinstance(x, tuple) else x.shape[-2:]
    return math.ceil(scale * h), math.ceil(scale * w)


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


def _odd(value: Any, generator: torch.Generator) -> int:
    """An odd kernel size: fixed, or uniform over the odd numbers of a ``[lo, hi]`` range."""
    if not isinstance(value, list):
        return value
    lo, hi = value
    return 2 * _sample([lo // 2, hi // 2], int, generator) + 1


def _choose(weights: Mapping[str, float], generator: torch.Generator) -> str:
    """One key of ``weights``, drawn with probability proportional to its weight."""
    names = list(weights)
    probs = torch.tensor([weights[n] for n in names], dtype=torch.float64, device=generator.device)
    return names[int(torch.multinomial(probs, 1, generator=generator).item())]


def _chance(p: float, generator: torch.Generator) -> bool:
    """True with probability ``p``: one uniform draw from ``generator``."""
    return torch.rand((), generator=generator, device=generator.device, dtype=torch.float64).item() < p


def _random_kernel(step: Mapping[str, Any], generator: torch.Generator) -> torch.Tensor:
    size = _odd(step["kernel_size"], generator)
    if _chance(step["sinc_prob"], generator):
        # Real-ESRGAN: small sinc kernels get cutoffs of pi/3 and up, large ones down to pi/5.
        low = math.pi / 3 if size < 13 else math.pi / 5
        return kernels.sinc_kernel(size, _sample([low, math.pi], float, generator))
    kind = _choose(step["kinds"], generator)
    sigma_x = _sample(step["sigma"], float, generator)
    sigma_y = sigma_x if kind.endswith("_iso") or kind == "iso" else _sample(step["sigma"], float, generator)
    theta = 0.0 if sigma_y == sigma_x else _sample([-math.pi, math.pi], float, generator)
    family = kind.split("_")[0] if "_" in kind else "gaussian"
    family = {"iso": "gaussian", "aniso": "gaussian"}.get(family, family)
    beta = 1.0
    if family == "generalized":
        beta = _sample(step["beta_gaussian"], float, generator)
    elif family == "plateau":
        beta = _sample(step["beta_plateau"], float, generator)
    return kernels.anisotropic_kernel(size, sigma_x, sigma_y, theta, family=family, beta=beta)


def _interpolate(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Resize to ``size`` with torch's area / bilinear / bicubic, not antialiased (as cheap resizers
    in cameras and web pipelines: aliasing is part of the degradation)."""
    flat = x.reshape(-1, x.shape[-3] if x.ndim >= 3 else 1, *x.shape[-2:])
    kw = {} if mode == "area" else {"align_corners": False}
    out = F.interpolate(flat, size=size, mode=mode, **kw)
    return out.reshape(*x.shape[:-2], *size)


def _apply(
    x: torch.Tensor, step: Mapping[str, Any], generator: torch.Generator, hr_size: tuple[int, int]
) -> torch.Tensor:
    kind = step["type"]
    if "p" in step and step["p"] < 1.0 and not _chance(step["p"], generator):
        return x
    if kind == "blur":
        return kernels.filter2d(x, _random_kernel(step, generator))
    if kind == "sinc":
        size = _odd(step["kernel_size"], generator)
        return kernels.filter2d(x, kernels.sinc_kernel(size, _sample(step["cutoff"], float, generator)))
    if kind == "random_resize":
        direction = _choose(step["directions"], generator)
        factor = 1.0 if direction == "keep" else _sample(step[direction], float, generator)
        mode = _choose(step["modes"], generator)
        size = (max(1, round(x.shape[-2] * factor)), max(1, round(x.shape[-1] * factor)))
        return _interpolate(x, size, mode).clamp(0.0, 1.0)
    if kind == "resize_to":
        size = _resize_size(hr_size, step["scale"])  # rounded up, as the resize step
        return _interpolate(x, size, _choose(step["modes"], generator)).clamp(0.0, 1.0)
    if kind == "poisson_noise":
        gray = _chance(step["gray_prob"], generator)
        scale = _sample(step["scale"], float, generator)
        return kernels.add_poisson_noise(x, scale, gray=gray, generator=generator)
    if kind == "random_order":
        order = torch.randperm(len(step["groups"]), generator=generator, device=generator.device).tolist()
        for g in order:
            for inner in step["groups"][g]:
                x = _apply(x, inner, generator, hr_size)
        return x
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
        gray = _chance(step["gray_prob"], generator) if step["gray_prob"] > 0 else False
        sigma = _sample(step["sigma"], float, generator)
        return ops.add_gaussian_noise(x, sigma, generator=generator, clip=step["clip"], gray=gray)
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
        factor = _downscale_factor(self._steps)
        if factor is None:
            raise ConfigError(
                "degradation pipeline: random_resize changes the size by a random factor; "
                "end with a resize_to step (e.g. {type: resize_to, scale: 0.25})"
            )
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
        hr_size = (hr.shape[-2], hr.shape[-1])
        out = hr
        for step in self._steps:
            out = _apply(out, step, gen, hr_size)
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
