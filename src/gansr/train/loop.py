"""The training loop behind ``gansr train``.

:func:`train` reads top to bottom: setup; the models, losses and data the config describes; the
run folder; the :class:`~gansr.train.state.TrainState` (resumed from the newest intact checkpoint
with ``--resume``); the batches; then one loop whose body is

1. this iteration's learning rates, a pure function of the iteration
   (:func:`~gansr.train.optim.apply_schedule`);
2. one :class:`~gansr.train.step.TrainStep`: **PSNR pre-training** (``it < train.pretrain.iters``,
   one G step on the pixel-loss mix) or **GAN** (``n_critic`` D steps, each on its own batch, then
   one G step with the full mix on the last one), then the EMA update;
3. the non-finite check, logging, validation of the EMA generator, checkpoints, Ctrl-C.

A loss that is not finite skips its optimizer step; ``train.max_nonfinite`` such iterations in
a row stop the run with :class:`TrainingDiverged`. With ``deterministic: true`` on the CPU a run
resumed from any checkpoint reproduces the uninterrupted run's losses bit for bit.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gansr.data.io import atomic_write
from gansr.data.loader import make_loader
from gansr.engine.allocator import reuse_large_blocks
from gansr.errors import GansrError, Interrupted
from gansr.train import distributed
from gansr.train.build import build_parts
from gansr.train.checkpointing import CheckpointManager, load_newest_intact
from gansr.train.config import Config, dump_yaml, parse_yaml, to_dict
from gansr.train.data import BatchPlan, ValItem
from gansr.train.logging import RunLogger
from gansr.train.optim import apply_schedule
from gansr.train.plots import plot_curves, save_sample_grid
from gansr.train.rundir import (
    CHECKPOINTS,
    CONFIG_NAME,
    MODEL_NAME,
    PLOTS,
    SAMPLES,
    find_resume_point,
    new_run_dir,
)
from gansr.train.state import TrainState, memory_format
from gansr.train.step import Batch, TrainStep
from gansr.train.validation import evaluate, sample_rows


class TrainingDiverged(GansrError):
    """Too many non-finite losses in a row."""


class StopRequest:
    """Turns the first Ctrl-C / SIGTERM into a request the loop honours between iterations (so the
    checkpoint it then writes is of a whole iteration); a second signal interrupts at once.

    Only for single-process runs in the main thread: with DDP every rank would have to agree on
    the iteration to stop at, so there the signals keep their default behaviour. :func:`train`
    restores the previous handlers however the run ends.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def install(self) -> None:
        """Catch the signals from now on (a no-op when not enabled)."""
        if self.enabled:
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}

    def restore(self) -> None:
        """Put back the handlers :meth:`install` replaced."""
        for sig, handler in self._previous.items():
            if handler is not None:  # None: installed outside Python; nothing we can restore
                signal.signal(sig, handler)
        self._previous = {}


@dataclass
class TrainResult:
    """What a finished run leaves behind (also handy in tests and notebooks)."""

    run_dir: Path
    iterations: int
    ema: nn.Module  # the EMA generator, eval mode: what was exported
    generator: nn.Module  # the raw generator
    discriminator: nn.Module | None
    last_val: dict[str, Any] | None
    best_psnr: float | None


# ---------------------------------------------------------------------------------------------
def train(
    cfg: Config, *, runs_dir: str | Path = "runs", resume: str | Path | None = None, quiet: bool = False
) -> TrainResult:
    """Train ``cfg`` and return the result; ``resume`` is a run folder or ``"latest"``.

    Raises:
        ConfigError: a config problem (raised before any folder is created or iteration runs).
        ModelError: the checkpoint to resume from does not match the config, or none is intact.
        TrainingDiverged: ``train.max_nonfinite`` non-finite losses in a row.
        Interrupted: Ctrl-C / SIGTERM, after a checkpoint of the last whole iteration.
    """
    ctx = distributed.setup(cfg.device)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    stop = StopRequest(enabled=not ctx.distributed)
    try:
        # On the CPU, freed activations stay in the heap for the next step (no page faults per step).
        with reuse_large_blocks(ctx.device):
            return _train(cfg, ctx, Path(runs_dir), resume, quiet, stop)
    finally:
        stop.restore()
        if torch.are_deterministic_algorithms_enabled() != was_deterministic:
            torch.use_deterministic_algorithms(was_deterministic)
        distributed.cleanup(ctx)


def _train(
    cfg: Config,
    ctx: distributed.DistContext,
    runs_dir: Path,
    resume: str | Path | None,
    quiet: bool,
    stop: StopRequest,
) -> TrainResult:
    # ---------------------------------------------------------------------------- setup
    t = cfg.train
    total = cfg.total_iters
    if torch.are_deterministic_algorithms_enabled() != cfg.deterministic:  # the call imports torch._dynamo
        torch.use_deterministic_algorithms(cfg.deterministic)
    if ctx.device.type == "cuda":
        torch.backends.cudnn.benchmark = not cfg.deterministic
    # gansr passes explicit generators; these seeds are for third-party code using global RNGs.
    random.seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)

    # ---------------------------------------------------------------------------- models, losses, data
    # Building everything validates the whole config before a folder is made or a step is run.
    parts = build_parts(cfg, ctx.device, ctx.world_size)

    # ---------------------------------------------------------------------------- run folder
    if resume is not None:
        run_dir, checkpoint_path = find_resume_point(runs_dir, cfg.name, resume)
    else:
        run_dir, checkpoint_path = (new_run_dir(runs_dir, cfg.name) if ctx.is_main else None), None
        run_dir = distributed.broadcast_object(ctx, run_dir)
    log = RunLogger(run_dir, enabled=ctx.is_main, quiet=quiet, tensorboard=t.tensorboard)
    ckpts = CheckpointManager(run_dir / CHECKPOINTS, t.keep_last)
    checkpoint = None
    if checkpoint_path is not None:
        # A damaged newest checkpoint (disk full, a copy cut short) falls back to an older one.
        checkpoint_path, checkpoint = load_newest_intact(
            checkpoint_path.parent, on_damaged=lambda line: log.write(f"gansr: warning: {line}")
        )
        if ctx.is_main:
            log.resume(checkpoint["iteration"])  # drop what a killed run logged after its last checkpoint
            ckpts.remove_temporaries()
    if ctx.is_main:
        _write_config(run_dir / CONFIG_NAME, cfg, log, resumed=resume is not None)
    for note in parts.notes:
        log.note(note)

    # ---------------------------------------------------------------------------- state and step
    state = TrainState.create(cfg, parts, ctx)
    step = TrainStep(state, cfg, ctx)
    if checkpoint is not None:
        state.load_state_dict(checkpoint, ctx, source=f"--resume: {checkpoint_path}")
        del checkpoint
        log.note(f"resumed from {checkpoint_path.name} at iteration {state.iteration}", it=state.iteration)

    # ---------------------------------------------------------------------------- batches
    # Batch b is a pure function of b: the plan restarts at the checkpoint's data position.
    plan = BatchPlan(
        len(parts.samples),
        cfg.data.batch_size,
        seed=cfg.seed,
        rank=ctx.rank,
        world_size=ctx.world_size,
        start=state.batch_index,
    )
    loader = make_loader(
        parts.samples,
        batches=plan,
        num_workers=cfg.data.workers,
        seed=cfg.seed,
        pin_memory=ctx.device.type == "cuda",
    )
    next_batch = DeviceBatches(loader, state, ctx.device, memory_format(cfg))

    # ---------------------------------------------------------------------------- the loop
    if state.iteration == 0 and parts.val_items is not None:  # the untrained baseline: curves start at 0
        state.last_val = validate(state.ema.module, parts.val_items, cfg, ctx, log, run_dir, 0)
    log.start_progress(state.iteration, total)
    t_window = time.perf_counter()
    state.g.train()
    if state.d is not None:
        state.d.train()
    stop.install()  # from here on, Ctrl-C ends the run cleanly after the current iteration
    while state.iteration < total:
        pretrain = state.iteration < cfg.pretrain_iters
        values: dict[str, float] = apply_schedule(cfg, state.optimizers, state.iteration)
        out = step(state, next_batch, pretrain=pretrain)
        state.iteration += 1
        it = state.iteration  # iterations done: the 1-based number the logs use
        values.update(out.values())
        if hasattr(mix := state.pre_mix if pretrain else state.gan_mix, "ema_shares"):
            values.update({f"w_{name}": w for name, w in mix.current_weights().items()})

        # ---- non-finite losses: the step was skipped; too many in a row end the run
        if out.stepped:
            state.nonfinite_streak = 0
        else:
            state.nonfinite_streak += 1
            state.nonfinite_total += 1
            log.log(
                {
                    "event": "nonfinite",
                    "it": it,
                    "streak": state.nonfinite_streak,
                    "total": state.nonfinite_total,
                    **{k: v for k, v in values.items() if not k.startswith("lr")},
                }
            )
            if state.nonfinite_streak >= t.max_nonfinite:
                log.close()
                raise TrainingDiverged(
                    f"training stopped at iteration {it}: {state.nonfinite_streak} non-finite losses in "
                    f"a row (g_total={values['g_total']}); lower the learning rate, set train.grad_clip, "
                    "or use train.amp: none"
                )

        # ---- logging: means over the iterations since the last record
        for key, value in values.items():
            if not key.startswith("lr_"):  # learning rates are logged as they are now
                state.log_sums[key] = state.log_sums.get(key, 0.0) + value
        state.log_count += 1
        log.advance({k: values[k] for k in ("g_total", "d_loss") if k in values})
        if it % t.log_every == 0 or it == total:
            now = time.perf_counter()
            log.log(
                {
                    "event": "train",
                    "it": it,
                    "phase": "pretrain" if pretrain else "gan",
                    "epoch": state.batch_index / plan.batches_per_epoch,
                    **{k: v for k, v in values.items() if k.startswith("lr_")},
                    **{k: v / state.log_count for k, v in state.log_sums.items()},
                    "it_per_s": state.log_count / max(now - t_window, 1e-9),
                    "nonfinite_total": state.nonfinite_total,
                }
            )
            state.log_sums, state.log_count, t_window = {}, 0, now

        # ---- validation of the EMA generator
        is_best = False
        if parts.val_items is not None and (it % t.val_every == 0 or it == total):
            state.last_val = validate(state.ema.module, parts.val_items, cfg, ctx, log, run_dir, it)
            if state.best_psnr is None or state.last_val["val_psnr"] > state.best_psnr:
                state.best_psnr, is_best = state.last_val["val_psnr"], True

        # ---- checkpoints: the last K plus the best
        periodic = it % t.ckpt_every == 0 or it == total
        if periodic or is_best:
            checkpoint = state.state_dict(ctx)  # on every process: it gathers their RNG states
            if ctx.is_main:
                if periodic:
                    ckpts.save(checkpoint, it)
                if is_best:
                    ckpts.save_best(checkpoint, it)
            del checkpoint

        # ---- Ctrl-C / SIGTERM: stop after this whole iteration, with a checkpoint to resume
        if stop.requested and it < total:
            if not periodic:  # (a periodic one was just written; single process, so main)
                ckpts.save(state.state_dict(ctx), it)
            log.close()
            raise Interrupted(
                f"stopped at iteration {it} of {total}; checkpoint written: run the same command "
                f"with --resume {run_dir} to continue"
            )

    # ---------------------------------------------------------------------------- export
    log.close()
    if ctx.is_main:
        from gansr import models

        metadata = {
            "trained_with": "gansr train",
            "config_name": cfg.name,
            "iterations": total,
            "dataset": cfg.data.kind,
            "val": state.last_val,
            "ema_decay": t.ema_decay,
        }
        models.save(state.ema.module.float().cpu(), run_dir / MODEL_NAME, metadata=metadata)
        state.ema.module.to(ctx.device)
        plot_curves(log.records, run_dir / PLOTS)
    distributed.barrier(ctx)
    return TrainResult(run_dir, total, state.ema.module, state.g, state.d, state.last_val, state.best_psnr)


# ---------------------------------------------------------------------------------------------
# The loop's helpers, in the order it uses them.
def _write_config(path: Path, cfg: Config, log: RunLogger, *, resumed: bool) -> None:
    """Write the run's ``config.yaml``; on resume first note the settings that changed."""
    if resumed and path.is_file():
        old, new = _flat(parse_yaml(path.read_text(encoding="utf-8")) or {}), _flat(to_dict(cfg))
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if changed:
            log.note(f"resuming with changed settings: {', '.join(changed[:8])}")
    with atomic_write(path) as fh:
        fh.write(dump_yaml(cfg).encode("utf-8"))


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


class DeviceBatches:
    """``next_batch()`` for :class:`~gansr.train.step.TrainStep`: the loader's next (LR, HR) batch
    on ``device`` in layout ``fmt``; each batch drawn advances ``state.batch_index``."""

    def __init__(
        self, loader: Iterable[Batch], state: TrainState, device: torch.device, fmt: torch.memory_format
    ) -> None:
        self._batches = iter(loader)
        self.state, self.device, self.fmt = state, device, fmt

    def __call__(self) -> Batch:
        lr_img, hr_img = next(self._batches)
        self.state.batch_index += 1
        return (
            lr_img.to(self.device, non_blocking=True).contiguous(memory_format=self.fmt),
            hr_img.to(self.device, non_blocking=True).contiguous(memory_format=self.fmt),
        )


def validate(
    model: nn.Module,
    items: list[ValItem],
    cfg: Config,
    ctx: distributed.DistContext,
    log: RunLogger,
    run_dir: Path,
    iteration: int,
) -> dict[str, Any]:
    """Measure ``model`` (the EMA generator) on ``items`` and log it; on the main process also
    save the sample grid and, every ``train.plot_every`` iterations, the curves."""
    crop_border = cfg.data.scale if cfg.data.val_folder is not None else 0
    metrics = evaluate(model, items, ctx=ctx, crop_border=crop_border, memory_format=memory_format(cfg))
    log.log({"event": "val", "it": iteration, **metrics})
    if ctx.is_main:
        if cfg.train.sample_images:
            rows = sample_rows(model, items, cfg.train.sample_images, ctx.device)
            save_sample_grid(rows, run_dir / SAMPLES / f"iter_{iteration:08d}.png")
        if cfg.train.plot_every is None or iteration % cfg.train.plot_every == 0:
            plot_curves(log.records, run_dir / PLOTS)
    return metrics


__all__ = ["DeviceBatches", "StopRequest", "TrainResult", "TrainingDiverged", "train", "validate"]
