"""ESRGAN network interpolation: blend the weights of two models of the same architecture.

ESRGAN (Wang et al. 2018, ``net_interp.py``) balances a PSNR-oriented and a GAN-trained model as
``theta = (1 - alpha) * theta_PSNR + alpha * theta_GAN``: ``alpha`` weights the **GAN** model.
gansr keeps that meaning with ``A`` the GAN model and ``B`` the PSNR model::

    result = alpha * A + (1 - alpha) * B        # alpha=1 -> A (GAN), alpha=0 -> B (PSNR)

``gansr interp GAN_MODEL PSNR_MODEL --alpha 0.8 -o OUT`` is ESRGAN's recommended setting.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from gansr.errors import ConfigError, ModelError


def interpolate(a: nn.Module, b: nn.Module, alpha: float) -> nn.Module:
    """A new model with floating-point tensors ``alpha * a + (1 - alpha) * b``.

    Integer buffers (e.g. BatchNorm's ``num_batches_tracked``) are taken from ``a``. The result is a
    deep copy of ``a``'s structure in eval mode.

    Raises:
        ConfigError: ``alpha`` outside [0, 1].
        ModelError: the models differ in architecture, configuration or state-dict layout.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"--alpha must be in [0, 1] (weight of model A, the GAN model), got {alpha}")
    arch_a, arch_b = getattr(a, "arch", type(a).__name__), getattr(b, "arch", type(b).__name__)
    if arch_a != arch_b:
        raise ModelError(f"cannot interpolate different architectures: A is {arch_a!r}, B is {arch_b!r}")
    cfg_a, cfg_b = getattr(a, "config", None), getattr(b, "config", None)
    if cfg_a != cfg_b:
        diff = sorted(
            k for k in set(cfg_a or {}) | set(cfg_b or {}) if (cfg_a or {}).get(k) != (cfg_b or {}).get(k)
        )
        detail = ", ".join(f"{k}: {(cfg_a or {}).get(k)!r} vs {(cfg_b or {}).get(k)!r}" for k in diff[:3])
        raise ModelError(f"cannot interpolate {arch_a!r} models with different configs ({detail})")
    state_a, state_b = a.state_dict(), b.state_dict()
    if state_a.keys() != state_b.keys():
        only = sorted(set(state_a) ^ set(state_b))
        raise ModelError(f"cannot interpolate: the state dicts differ in {len(only)} key(s), e.g. {only[0]}")
    mixed = {}
    for key, ta in state_a.items():
        tb = state_b[key]
        if ta.shape != tb.shape:
            raise ModelError(
                f"cannot interpolate: {key} has shape {tuple(ta.shape)} in A, {tuple(tb.shape)} in B"
            )
        if ta.is_floating_point():
            # float64 accumulate: the blend of two float32 values is then correctly rounded.
            mixed[key] = (alpha * ta.double() + (1.0 - alpha) * tb.double().to(ta.device)).to(ta.dtype)
        else:
            mixed[key] = ta.clone()
    import copy

    out = copy.deepcopy(a)
    out.load_state_dict(mixed)
    return out.eval()


def interpolate_files(
    path_a: str | os.PathLike[str],
    path_b: str | os.PathLike[str],
    alpha: float,
    output: str | os.PathLike[str],
) -> Path:
    """Load A (GAN) and B (PSNR) with :func:`gansr.models.load`, blend, save with :func:`gansr.models.save`.

    The output is written atomically and records the inputs and ``alpha`` in its metadata.
    """
    from gansr import models

    with torch.no_grad():
        a = models.load(path_a)
        b = models.load(path_b)
        blended = interpolate(a, b, alpha)
    metadata = {
        "interpolation": {
            "alpha": alpha,
            "a_gan": str(path_a),
            "b_psnr": str(path_b),
            "rule": "alpha * A + (1 - alpha) * B (ESRGAN: alpha weights the GAN model)",
        }
    }
    return models.save(blended, output, metadata=metadata)
