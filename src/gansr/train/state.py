"""The state of a training run: what one iteration hands the next, and exactly what a checkpoint holds.

:meth:`TrainState.state_dict` is the training checkpoint (``checkpoints/iter_*.pt``) and
:meth:`TrainState.load_state_dict` is the whole of resuming: there is no other list of what is
saved. Besides the modules, optimizers and counters the checkpoint holds every RNG state (the
global generators of each process and the loop's own ``noise`` generator) and the data position
``batch_index``, so a resumed run continues bit for bit. ``format``, ``version``, ``config`` and
``world_size`` describe the file; everything else in it is restored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gansr.errors import ModelError
from gansr.train import distributed
from gansr.train.checkpointing import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    capture_rng_states,
    restore_rng_states,
)
from gansr.train.config import Config, to_dict
from gansr.train.data import NOISE_STREAM, item_seed
from gansr.train.ema import EMA
from gansr.train.optim import build_optimizer

if TYPE_CHECKING:
    from gansr.train.build import Parts

_LOSSES = ("pre_mix", "gan_mix", "d_loss")


def memory_format(cfg: Config) -> torch.memory_format:
    """The layout of models and batches: ``train.channels_last``."""
    return torch.channels_last if cfg.train.channels_last else torch.contiguous_format


@dataclass
class TrainState:
    """Everything that changes as a run trains (see the module doc).

    Optimizer names: ``g_pretrain`` (G in the PSNR phase), ``g_gan`` and ``d`` (the GAN phase);
    each has its GradScaler (active with ``train.amp: fp16``). The loss modules carry state too
    (an adaptive mix's running weights).
    """

    g: nn.Module
    d: nn.Module | None
    ema: EMA
    pre_mix: nn.Module | None
    gan_mix: nn.Module | None
    d_loss: nn.Module | None
    optimizers: dict[str, torch.optim.Optimizer]
    scalers: dict[str, torch.amp.GradScaler]
    noise: torch.Generator  # the loop's randomness: VAE sampling, WGAN-GP interpolation
    config: dict[str, Any]  # the run's config, stored for reference (a resume uses the one it is given)
    iteration: int = 0  # iterations done
    batch_index: int = 0  # batches drawn: the data position
    best_psnr: float | None = None
    nonfinite_streak: int = 0
    nonfinite_total: int = 0
    log_sums: dict[str, float] = field(default_factory=dict)  # the log window not yet written
    log_count: int = 0
    last_val: dict[str, Any] | None = None

    @classmethod
    def create(cls, cfg: Config, parts: Parts, ctx: distributed.DistContext) -> TrainState:
        """The state at iteration 0: ``parts``' models (moved, not copied, to ``ctx.device`` in
        ``train.channels_last`` layout) and losses, their EMA, optimizers and scalers."""
        device, fmt, t = ctx.device, memory_format(cfg), cfg.train
        g = parts.g.to(device, memory_format=fmt)
        d = parts.d.to(device, memory_format=fmt) if parts.d is not None else None
        if cfg.model.sync_bn and ctx.distributed:
            g = nn.SyncBatchNorm.convert_sync_batchnorm(g)
            d = nn.SyncBatchNorm.convert_sync_batchnorm(d) if d is not None else None
        pre_mix = parts.pre_mix.to(device) if parts.pre_mix is not None else None
        gan_mix = parts.gan_mix.to(device) if parts.gan_mix is not None else None
        d_loss = parts.d_loss.to(device) if parts.d_loss is not None else None
        optimizers: dict[str, torch.optim.Optimizer] = {}
        if pre_mix is not None:
            assert t.pretrain is not None
            optimizers["g_pretrain"] = build_optimizer(g.parameters(), t.pretrain.optimizer)
        if gan_mix is not None:
            assert t.gan is not None and d is not None
            optimizers["g_gan"] = build_optimizer(g.parameters(), t.gan.optimizer)
            optimizers["d"] = build_optimizer(d.parameters(), t.gan.d_optimizer)
        return cls(
            g=g,
            d=d,
            ema=EMA(g, t.ema_decay),
            pre_mix=pre_mix,
            gan_mix=gan_mix,
            d_loss=d_loss,
            optimizers=optimizers,
            scalers={name: torch.amp.GradScaler(device.type, enabled=t.amp == "fp16") for name in optimizers},
            noise=torch.Generator(device).manual_seed(item_seed(cfg.seed, NOISE_STREAM, ctx.rank, 0)),
            config=to_dict(cfg),
        )

    def losses(self) -> dict[str, nn.Module | None]:
        """The loss modules by checkpoint name."""
        return {name: getattr(self, name) for name in _LOSSES}

    def state_dict(self, ctx: distributed.DistContext) -> dict[str, Any]:
        """The checkpoint (every process must call it: the RNG states of all are gathered)."""
        rng = {"global": capture_rng_states(), "noise": self.noise.get_state()}
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "iteration": self.iteration,
            "batch_index": self.batch_index,
            "best_psnr": self.best_psnr,
            "g": self.g.state_dict(),
            "d": self.d.state_dict() if self.d is not None else None,
            "ema": self.ema.state_dict(),
            # What gansr.models.load needs to rebuild the EMA generator (never DDP- or compile-wrapped).
            "generator": {"arch": self.ema.module.arch, "config": dict(self.ema.module.config)},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "scalers": {name: scaler.state_dict() for name, scaler in self.scalers.items()},
            "losses": {name: m.state_dict() if m is not None else None for name, m in self.losses().items()},
            "nonfinite": {"streak": self.nonfinite_streak, "total": self.nonfinite_total},
            "log_window": {"sums": dict(self.log_sums), "count": self.log_count},
            "last_val": self.last_val,
            "rng": distributed.gather_object(ctx, rng),  # one entry per process, in rank order
            "config": self.config,
            "world_size": ctx.world_size,
        }

    def load_state_dict(
        self, checkpoint: dict[str, Any], ctx: distributed.DistContext, *, source: str | Path = "checkpoint"
    ) -> None:
        """Continue from ``checkpoint`` (a :meth:`state_dict`). A checkpoint of another phase
        layout keeps the optimizers it has no state for fresh (e.g. resuming a PSNR-only run with
        a GAN phase added); with a different process count every process takes rank 0's RNG states.

        Raises:
            ModelError: ``{source} does not match this config (<reason>)``: other models or losses.
        """
        try:
            self.g.load_state_dict(checkpoint["g"])
            if self.d is not None and checkpoint.get("d") is not None:
                self.d.load_state_dict(checkpoint["d"])
            self.ema.load_state_dict(checkpoint["ema"])
            for name, opt in self.optimizers.items():
                if name in checkpoint["optimizers"]:
                    opt.load_state_dict(checkpoint["optimizers"][name])
                    self.scalers[name].load_state_dict(checkpoint["scalers"][name])
            for name, module in self.losses().items():
                if module is not None and checkpoint["losses"].get(name) is not None:
                    module.load_state_dict(checkpoint["losses"][name])
        except (RuntimeError, KeyError, ValueError) as exc:
            reason = str(exc).strip().splitlines()[0]
            raise ModelError(f"{source} does not match this config ({reason})") from None
        self.iteration, self.batch_index = checkpoint["iteration"], checkpoint["batch_index"]
        self.best_psnr = checkpoint["best_psnr"]
        self.nonfinite_streak = checkpoint["nonfinite"]["streak"]
        self.nonfinite_total = checkpoint["nonfinite"]["total"]
        self.log_sums = dict(checkpoint["log_window"]["sums"])
        self.log_count = checkpoint["log_window"]["count"]
        self.last_val = checkpoint.get("last_val")
        per_rank = checkpoint["rng"]
        rng = per_rank[ctx.rank] if len(per_rank) == ctx.world_size else per_rank[0]
        restore_rng_states(rng["global"])
        self.noise.set_state(rng["noise"].to(self.noise.get_state().device))


__all__ = ["TrainState", "memory_format"]
