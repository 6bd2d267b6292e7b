"""Optimizers and the learning-rate schedule (a pure function of the phase iteration).

The schedule is computed from the iteration on every step (as nanoGPT's ``get_lr``) instead of
being a stateful ``torch.optim.lr_scheduler`` object: it is then trivially restored on resume
(the iteration is in the checkpoint) and cannot drift out of sync with it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from gansr.train.config import Config, OptimizerConfig, ScheduleConfig


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


def apply_schedule(
    cfg: Config, optimizers: dict[str, torch.optim.Optimizer], iteration: int
) -> dict[str, float]:
    """Set the learning rates of run iteration ``iteration`` (0-based) and return them.

    In the PSNR phase that is ``g_pretrain``'s (``lr_g``); in the GAN phase ``g_gan``'s and
    ``d``'s (``lr_g``, ``lr_d``), each on its phase's schedule counted from the phase's start.
    """
    pretrain = iteration < cfg.pretrain_iters
    phase = cfg.train.pretrain if pretrain else cfg.train.gan
    assert phase is not None
    step = iteration if pretrain else iteration - cfg.pretrain_iters
    lr_g = phase.optimizer.lr * lr_factor(phase.schedule, step, phase.iters)
    set_lr(optimizers["g_pretrain" if pretrain else "g_gan"], lr_g)
    if pretrain:
        return {"lr_g": lr_g}
    gan = cfg.train.gan
    assert gan is not None
    lr_d = gan.d_optimizer.lr * lr_factor(gan.d_schedule, step, phase.iters)
    set_lr(optimizers["d"], lr_d)
    return {"lr_g": lr_g, "lr_d": lr_d}
