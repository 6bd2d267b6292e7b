"""Public ESRGAN / Real-ESRGAN / BasicSR weights in gansr terms: layout, architecture, config.

Given what a peer checkpoint holds (a state dict, possibly wrapped), :func:`extract_state_dict`
finds the tensors and :func:`convert` recognises the layout from the keys, infers the
hyper-parameters from tensor shapes and renames the weights to gansr's (= BasicSR's) parameter
names. Nothing here reads files or builds models: :func:`gansr.models.load` reads the file (pickles
only with ``torch.load(weights_only=True)``) and builds the model from the :class:`Converted` result.

Supported layouts (``model.metadata["format"]``):

* ``basicsr-rrdbnet``: BasicSR / Real-ESRGAN RRDBNet (``conv_first``, ``body.N.rdbK.convJ``,
  ``conv_body``, ``conv_up1``/``conv_up2``, ``conv_hr``, ``conv_last``); x2/x1 models (pixel-unshuffle
  in front) are recognised from ``conv_first``'s input channels.
* ``esrgan-rrdbnet``: the ESRGAN repository's current RRDBNet (``RRDB_trunk.N.RDBK.convJ``,
  ``trunk_conv``, ``upconv1``/``upconv2``, ``HRconv``).
* ``esrgan-oldarch``: the original ESRGAN ``RRDB_Net`` (``model.0``, ``model.1.sub.N.RDBK.convJ.0``,
  ``model.1.sub.<nb>``, then ``model.3``/``model.6`` up-convs, ``model.8``, ``model.10``), e.g. the
  first release of ``RRDB_ESRGAN_x4.pth``.
* ``basicsr-msrresnet``: BasicSR MSRResNet (``conv_first``, ``body.N.conv1``/``conv2``,
  ``upconv1``[/``upconv2``], ``conv_hr``, ``conv_last``).
* ``realesrgan-compact``: Real-ESRGAN SRVGGNetCompact (``realesr-general-x4v3``,
  ``realesr-animevideov3``, ``realesr-general-wdn-x4v3``): nothing but ``body.N`` layers, conv at
  even ``N`` (weight + bias), PReLU at odd ``N`` (weight only), the last one a conv. gansr's
  ``compact`` uses the same names, so the weights load as they are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gansr.errors import ModelError

# Checked in this order; BasicSR saves EMA weights next to the raw ones and EMA is what is released.
WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model")

SUPPORTED = (
    "BasicSR/Real-ESRGAN RRDBNet (conv_first, body.N.rdbK.convJ, conv_up1...)",
    "ESRGAN RRDBNet (RRDB_trunk.N.RDBK.convJ, trunk_conv, upconv1, HRconv)",
    "ESRGAN old-arch RRDB_Net (model.0, model.1.sub.N.RDBK.convJ.0, model.10)",
    "BasicSR MSRResNet (conv_first, body.N.conv1, upconv1, conv_hr)",
    "Real-ESRGAN SRVGGNetCompact (only body.N: conv, PReLU, ..., conv)",
)

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Converted:
    """A foreign state dict turned into gansr terms."""

    format: str
    arch: str
    config: dict[str, Any]
    state: State


def extract_state_dict(obj: Any, *, source: Path | str = "<state dict>") -> tuple[State, str | None]:
    """Find the weights inside a loaded peer checkpoint and return ``(state_dict, wrapper_key)``.

    The wrapper key is the ``params_ema``/``params``/``state_dict``/``model`` entry the weights were
    found under (None for a bare state dict); ``module.`` prefixes (DataParallel) are stripped.

    Raises:
        ModelError: ``obj`` holds no state dict, or one without tensors.
    """
    wrapper = None
    for _ in range(3):  # e.g. {"state_dict": {"params_ema": ...}} is possible, deeper is not seen
        if not isinstance(obj, Mapping):
            break
        inner = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        wrapper = inner if wrapper is None else f"{wrapper}.{inner}"
        obj = obj[inner]
    if not isinstance(obj, Mapping):
        raise ModelError(f"{source}: holds a {type(obj).__name__}, not a state dict")
    state = {
        (k[len("module.") :] if k.startswith("module.") else k): v
        for k, v in obj.items()
        if isinstance(k, str) and isinstance(v, torch.Tensor)
    }
    if not state:
        raise ModelError(
            f"{source}: no tensors found (looked at the top level and {', '.join(WRAPPER_KEYS)})"
        )
    return state, wrapper


def _block_count(state: State, pattern: str, source: Path | str) -> int:
    """Number of numbered blocks matched by ``pattern`` (one group: the index); they must be 0..n-1."""
    found = {int(m.group(1)) for k in state if (m := re.match(pattern, k))}
    if not found or found != set(range(max(found) + 1)):
        raise ModelError(f"{source}: residual blocks are missing or not numbered 0..n-1")
    return max(found) + 1


def _shape(state: State, key: str, source: Path | str) -> tuple[int, ...]:
    if key not in state:
        raise ModelError(f"{source}: incomplete checkpoint, {key} is missing")
    return tuple(state[key].shape)


def _rrdb_config(state: State, n_up: int, source: Path | str) -> dict[str, Any]:
    """RRDBNet kwargs from a state dict already in BasicSR names."""
    num_feat, first_in = _shape(state, "conv_first.weight", source)[:2]
    out_channels = _shape(state, "conv_last.weight", source)[0]
    num_grow_ch = _shape(state, "body.0.rdb1.conv1.weight", source)[0]
    num_block = _block_count(state, r"body\.(\d+)\.rdb1\.conv1\.weight$", source)
    # gansr's rrdbnet (like every released model) has as many output as input channels; x2 / x1
    # models pixel-unshuffle the input first, so conv_first sees 4x / 16x the channels.
    unshuffle = {out_channels: 1, 4 * out_channels: 2, 16 * out_channels: 4}.get(first_in)
    if unshuffle is None:
        raise ModelError(
            f"{source}: RRDBNet with {first_in} input and {out_channels} output channels is not supported "
            "(gansr's rrdbnet has equal input and output channels)"
        )
    if n_up == 3 and unshuffle == 1:
        scale = 8
    elif n_up == 2:
        scale = {1: 4, 2: 2, 4: 1}[unshuffle]
    else:
        raise ModelError(
            f"{source}: RRDBNet with {n_up} up-sampling conv(s) and pixel-unshuffle x{unshuffle} "
            "is not supported (x1/x2/x4 have 2 up-convs, x8 has 3)"
        )
    return {
        "in_channels": out_channels,
        "num_feat": num_feat,
        "num_block": num_block,
        "num_grow_ch": num_grow_ch,
        "scale": scale,
    }


def _count_ups(state: State, prefix: str) -> int:
    n = 0
    while f"{prefix}{n + 1}.weight" in state:
        n += 1
    return n


def _from_basicsr_rrdbnet(state: State, source: Path | str) -> Converted:
    config = _rrdb_config(state, _count_ups(state, "conv_up"), source)
    return Converted("basicsr-rrdbnet", "rrdbnet", config, dict(state))


def _from_esrgan_rrdbnet(state: State, source: Path | str) -> Converted:
    renames = (
        (r"^RRDB_trunk\.(\d+)\.RDB(\d)\.", r"body.\1.rdb\2."),
        (r"^trunk_conv\.", "conv_body."),
        (r"^upconv(\d)\.", r"conv_up\1."),
        (r"^HRconv\.", "conv_hr."),
    )
    out = {}
    for key, value in state.items():
        for pattern, repl in renames:
            key = re.sub(pattern, repl, key)
        out[key] = value
    config = _rrdb_config(out, _count_ups(out, "conv_up"), source)
    return Converted("esrgan-rrdbnet", "rrdbnet", config, out)


def _from_esrgan_oldarch(state: State, source: Path | str) -> Converted:
    # model.0 = conv_first; model.1.sub = trunk (blocks, then conv_body at index num_block); after it
    # come (upsample, conv, act) triples and finally HR conv (+act) and the last conv: the last two
    # convs are conv_hr and conv_last, those before them the up-convs.
    top = sorted({int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.weight$", k))})
    tail = [i for i in top if i >= 2]
    if len(tail) < 2:
        raise ModelError(f"{source}: old-arch ESRGAN checkpoint without HR/last convs")
    ups, (hr, last) = tail[:-2], tail[-2:]
    num_block = _block_count(state, r"model\.1\.sub\.(\d+)\.RDB1\.conv1\.0\.weight$", source)
    names = {"model.0.": "conv_first.", f"model.1.sub.{num_block}.": "conv_body.", f"model.{hr}.": "conv_hr."}
    names[f"model.{last}."] = "conv_last."
    names.update({f"model.{idx}.": f"conv_up{n}." for n, idx in enumerate(ups, start=1)})
    out = {}
    for key, value in state.items():
        m = re.match(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$", key)
        if m:
            out[f"body.{m.group(1)}.rdb{m.group(2)}.conv{m.group(3)}.{m.group(4)}"] = value
            continue
        prefix = next((p for p in names if key.startswith(p)), None)
        out[names[prefix] + key[len(prefix) :] if prefix else key] = value
    if len(ups) not in (2, 3):
        raise ModelError(
            f"{source}: old-arch ESRGAN x{2 ** len(ups)} (with {len(ups)} up-convs) is not supported; "
            "gansr's rrdbnet is x4/x8 with up-convs (x2/x1 use pixel-unshuffle instead)"
        )
    config = _rrdb_config(out, len(ups), source)
    return Converted("esrgan-oldarch", "rrdbnet", config, out)


def _from_basicsr_msrresnet(state: State, source: Path | str) -> Converted:
    num_feat, in_channels = _shape(state, "conv_first.weight", source)[:2]
    out_channels = _shape(state, "conv_last.weight", source)[0]
    num_block = _block_count(state, r"body\.(\d+)\.conv1\.weight$", source)
    if "upconv2.weight" in state:
        scale = 4
    else:
        ratio = _shape(state, "upconv1.weight", source)[0] // num_feat  # pixel-shuffle r^2 channels
        scale = {4: 2, 9: 3}.get(ratio)
        if scale is None:
            raise ModelError(f"{source}: MSRResNet up-conv has {ratio}x channels; expected 4 (x2) or 9 (x3)")
    if in_channels != out_channels:
        raise ModelError(
            f"{source}: MSRResNet with {in_channels} input and {out_channels} output channels is not "
            "supported (its global skip needs them equal)"
        )
    config = {
        "in_channels": in_channels,
        "num_feat": num_feat,
        "num_block": num_block,
        "scale": scale,
    }
    return Converted("basicsr-msrresnet", "msrresnet", config, dict(state))


_COMPACT_KEY = re.compile(r"body\.(\d+)\.(weight|bias)$")


def _is_compact(keys: Collection[str]) -> bool:
    """SRVGGNetCompact's keys: only ``body.N.weight/bias``, a conv at 0 and a PReLU (weight, no bias)
    at 1. The PReLU test keeps other plain ``body`` stacks out (wgan_critic has no ``body.1``,
    MSRResNet / RRDBNet blocks have deeper names), so a broken compact dict still gets a precise error."""
    return (
        bool(keys)
        and all(_COMPACT_KEY.match(k) for k in keys)
        and "body.0.weight" in keys
        and "body.1.weight" in keys
        and "body.1.bias" not in keys
    )


def _from_realesrgan_compact(state: State, source: Path | str) -> Converted:
    """SRVGGNetCompact: hyper-parameters from the layer count and the first and last conv shapes."""
    what = f"{source}: Real-ESRGAN compact (SRVGGNetCompact) checkpoint"
    layers = sorted({int(m.group(1)) for k in state if (m := _COMPACT_KEY.match(k))})
    gaps = sorted(set(range(layers[-1] + 1)) - set(layers))
    if gaps:
        raise ModelError(f"{what}: layer body.{gaps[0]} is missing (layers must be numbered 0..{layers[-1]})")
    last = layers[-1]
    if last % 2:  # odd indices are PReLUs: the stack must end with the output conv
        raise ModelError(f"{what}: ends with a PReLU (body.{last}) instead of the output conv")
    for i in range(0, last + 1, 2):
        if len(_shape(state, f"body.{i}.weight", source)) != 4:
            raise ModelError(f"{what}: body.{i}.weight is not a convolution weight")
    for i in range(1, last, 2):
        if len(_shape(state, f"body.{i}.weight", source)) != 1:
            raise ModelError(f"{what}: body.{i}.weight is not a PReLU weight (only act_type='prelu' loads)")
    num_feat, in_channels = state["body.0.weight"].shape[:2]
    out = state[f"body.{last}.weight"].shape[0]
    # PixelShuffle(scale) turns out_channels * scale**2 channels into out_channels, and gansr's
    # compact has as many output as input channels.
    scale = next((s for s in range(1, 5) if in_channels * s * s == out), None)
    if scale is None:
        raise ModelError(
            f"{what}: the last conv (body.{last}) has {out} output channels, which is not "
            f"{in_channels} input channels x scale**2 for an integer scale 1..4"
        )
    config = {"in_channels": in_channels, "num_feat": num_feat, "num_conv": last // 2 - 1, "scale": scale}
    return Converted("realesrgan-compact", "compact", config, dict(state))


def _has(*required: str) -> Callable[[Collection[str]], bool]:
    return lambda keys: all(k in keys for k in required)


# (matches the keys, converter): the first match wins.
_LAYOUTS: tuple[tuple[Callable[[Collection[str]], bool], Callable[[State, Path | str], Converted]], ...] = (
    (_has("conv_first.weight", "body.0.rdb1.conv1.weight"), _from_basicsr_rrdbnet),
    (_has("conv_first.weight", "RRDB_trunk.0.RDB1.conv1.weight"), _from_esrgan_rrdbnet),
    (_has("model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight"), _from_esrgan_oldarch),
    (_has("conv_first.weight", "body.0.conv1.weight", "upconv1.weight"), _from_basicsr_msrresnet),
    (_is_compact, _from_realesrgan_compact),
)


def recognises(state: Collection[str]) -> bool:
    """Whether ``state``'s keys (a state dict or just its keys) match one of the supported layouts."""
    keys = set(state)
    return any(matches(keys) for matches, _ in _LAYOUTS)


def convert(state: State, *, source: Path | str = "<state dict>") -> Converted:
    """Recognise a foreign state dict's layout and rename it to gansr's; ModelError when unknown."""
    keys = set(state)
    for matches, converter in _LAYOUTS:
        if matches(keys):
            return converter(state, source)
    sample = ", ".join(sorted(state)[:3])
    raise ModelError(
        f"{source}: unrecognised checkpoint layout (keys like {sample}); supported: " + "; ".join(SUPPORTED)
    )
