"""Optimizers and the learning-rate schedule (a pure function of the phase iteration).

The schedule is computed from the iteration on every step (as nanoGPT's ``get_lr``) instead of
being a stateful ``torch.optim.lr_scheduler`` object: it is then trivially restored on resume
(the iteration is in the checkpoint) and cannot drift out of sync with it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from gansr.train.config import OptimizerConfig, ScheduleConfig


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """Adam or AdamW over ``params`` with the configured base learning rate."""
    params = [p for p in params if p.requires_grad]
    cls = torch.optim.AdamW if cfg.type == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)


def lr_factor(schedule: ScheduleConfig, step: int, iters: int) -> float:
    """Multiplier of the base learning rate at phase iteration ``step`` (0-based) of ``iters``."""
    if schedule.type == "multistep":
        factor = schedule.gamma ** sum(1 for m in schedule.milestones if step >= m)
    elif schedule.type == "cosine":
        span = max(1, iters - schedule.warmup_iters)
        progress = min(1.0, max(0, step - schedule.warmup_iters) / span)
        floor = schedule.min_lr_ratio
        factor = floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    else:
        factor = 1.0
    if schedule.warmup_iters > 0 and step < schedule.warmup_iters:
        factor *= (step + 1) / schedule.warmup_iters
    return factor


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate."""
    for group in optimizer.param_groups:
        group["lr"] = lr
