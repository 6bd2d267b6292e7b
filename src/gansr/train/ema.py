"""Exponential moving average (EMA) of the generator's weights.

The EMA copy is what validation measures and what a run exports: it is smoother than the raw
weights, which oscillate under the adversarial game (ESRGAN/Real-ESRGAN use decay 0.999).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class EMA:
    """A frozen copy of ``model`` whose parameters track ``decay * ema + (1 - decay) * model``.

    Buffers (BatchNorm running statistics, ...) are copied, not averaged, because they are
    already running averages. The effective decay warms up as ``min(decay, (1 + n) / (10 + n))``
    after ``n`` updates (TensorFlow's ``num_updates`` rule), so in a short run the average is not
    dominated by the random initialisation; ``warmup=False`` turns that off. ``decay=0`` makes the
    copy equal the model after every update.
    """

    def __init__(self, model: nn.Module, decay: float, *, warmup: bool = True) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.warmup = warmup
        self.num_updates = 0
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    def current_decay(self) -> float:
        """The decay the next :meth:`update` uses."""
        n = self.num_updates
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model`` (the raw module, not a DDP/compile wrapper)."""
        weight = 1.0 - self.current_decay()
        ema_params = dict(self.module.named_parameters())
        for name, param in model.named_parameters():
            ema_params[name].lerp_(param.detach().to(ema_params[name].dtype), weight)
        ema_buffers = dict(self.module.named_buffers())
        for name, buf in model.named_buffers():
            ema_buffers[name].copy_(buf)
        self.num_updates += 1

    def state_dict(self) -> dict[str, Any]:
        """Weights and update count (the decay comes from the config)."""
        return {"module": self.module.state_dict(), "num_updates": self.num_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.module.load_state_dict(state["module"])
        self.num_updates = int(state["num_updates"])
