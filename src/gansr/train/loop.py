"""The training loop behind ``gansr train``.

:func:`train` reads top to bottom: setup, data, models, optimizers, resume, then one
``for it in range(start, total)`` loop whose body is

1. **PSNR pre-training** (``it < train.pretrain.iters``): one G step on the pixel-loss mix.
2. **GAN** phase: ``n_critic`` D steps, each on its own batch (the last batch's SR images are
   kept with their graph), then one G step on that batch with the full mix (content +
   adversarial + ...).
3. EMA update, logging, validation of the EMA generator, checkpointing.

A loss that is not finite skips its optimizer step; ``train.max_nonfinite`` such iterations in
a row stop the run with :class:`TrainingDiverged`. With ``deterministic: true`` on the CPU a run
resumed from any checkpoint reproduces the uninterrupted run's losses bit for bit.
"""

from __future__ import annotations

import contextlib
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gansr.allocator import reuse_large_blocks
from gansr.data.io import atomic_write
from gansr.errors import GansrError, Interrupted, ModelError
from gansr.train import distributed
from gansr.train.build import build_parts
from gansr.train.checkpointing import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CheckpointManager,
    capture_rng_states,
    load_newest_intact,
    restore_rng_states,
)
from gansr.train.config import Config, dump_yaml, to_dict
from gansr.train.data import NOISE_STREAM, BatchPlan, TrainSamples, item_seed, make_loader
from gansr.train.ema import EMA
from gansr.train.logging import RunLogger
from gansr.train.optim import build_optimizer, lr_factor, set_lr
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
        if self.enabled:
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}

    def restore(self) -> None:
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
# Small step helpers (kept here so the loop below is the whole story).
def generate(
    g: nn.Module, raw_g: nn.Module, lr: torch.Tensor, hr: torch.Tensor, noise: torch.Generator
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """SR batch plus the extra tensors losses may need (``mu``/``logvar`` from a VAE generator)."""
    if getattr(raw_g, "arbitrary_scale", False):
        sr, mu, logvar = g(lr, size=tuple(hr.shape[-2:]), return_latent=True, generator=noise)
        return sr, {"mu": mu.float(), "logvar": logvar.float()}
    return g(lr), {}


def ema_output(
    ema_g: nn.Module, lr: torch.Tensor, autocast: Callable[[], contextlib.AbstractContextManager]
) -> torch.Tensor:
    """The EMA generator's SR of ``lr`` (float32, no graph): the stable reference of the LDL loss."""
    with torch.no_grad(), autocast():
        return ema_g(lr).float()


_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SiLU, nn.GELU)


def forward_with_features(
    d: nn.Module, x: torch.Tensor, want: bool
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``d(x)`` and, when ``want``, the outputs of its activation layers (for feature matching)."""
    feats: list[torch.Tensor] = []
    if not want:
        return d(x), feats
    handles = [
        m.register_forward_hook(lambda _m, _i, out: feats.append(out.float()))
        for m in distributed.unwrap(d).modules()
        if isinstance(m, _ACTIVATIONS)
    ]
    try:
        out = d(x)
    finally:
        for h in handles:
            h.remove()
    return out, feats or [out.float()]


def g_gan_loss(
    d: nn.Module,
    mix: Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]],
    sr: torch.Tensor,
    hr: torch.Tensor,
    extra: dict[str, torch.Tensor],
    *,
    want_features: bool,
    autocast: Callable[[], contextlib.AbstractContextManager],
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """G's loss in a GAN step: D (frozen by the caller) scores SR and, without a graph, HR under
    ``autocast``; the mix gets both logits and features in float32."""
    with autocast():
        fake_out, fake_feats = forward_with_features(d, sr, want_features)
        with torch.no_grad():
            real_out, real_feats = forward_with_features(d, hr, want_features)
    return mix(
        sr.float(),
        hr,
        fake_logits=fake_out.float(),
        real_logits=real_out.float(),
        fake_features=fake_feats,
        real_features=real_feats,
        **extra,
    )


def optimizer_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    model: nn.Module,
    scaler: torch.amp.GradScaler,
    clip: float | None,
    ctx: distributed.DistContext,
) -> bool:
    """Backward + step unless ``loss`` is not finite (on any process); returns whether it stepped."""
    optimizer.zero_grad(set_to_none=True)
    if not distributed.all_true(ctx, bool(torch.isfinite(loss)), loss.device):
        return False
    scaler.scale(loss).backward()
    if clip is not None:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    scaler.step(optimizer)
    scaler.update()
    return True


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


# ---------------------------------------------------------------------------------------------
def train(
    cfg: Config, *, runs_dir: str | Path = "runs", resume: str | Path | None = None, quiet: bool = False
) -> TrainResult:
    """Train ``cfg`` and return the result; ``resume`` is a run folder or ``"latest"``.

    Raises:
        ConfigError: a config problem (raised before any folder is created or iteration runs).
        TrainingDiverged: ``train.max_nonfinite`` non-finite losses in a row.
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
    device = ctx.device
    t = cfg.train
    if torch.are_deterministic_algorithms_enabled() != cfg.deterministic:  # the call imports torch._dynamo
        torch.use_deterministic_algorithms(cfg.deterministic)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not cfg.deterministic
    # gansr passes explicit generators; these seeds are for third-party code using global RNGs.
    random.seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(t.amp)
    fmt = torch.channels_last if t.channels_last else torch.contiguous_format

    def autocast() -> contextlib.AbstractContextManager:  # D's passes
        return torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)

    def autocast_g() -> contextlib.AbstractContextManager:  # G's passes
        return autocast() if t.amp_scope == "all" else contextlib.nullcontext()

    # ---------------------------------------------------------------------------- data, models, losses
    # Building everything validates the whole config before a folder is made or a step is run.
    parts = build_parts(cfg, device, ctx.world_size)
    pre_iters, total = cfg.pretrain_iters, cfg.total_iters
    samples = TrainSamples.from_config(cfg, parts.source, parts.pipeline)
    crop_border = cfg.data.scale if cfg.data.val_folder is not None else 0

    # ---------------------------------------------------------------------------- run folder
    if resume is not None:
        run_dir, ckpt_path = find_resume_point(runs_dir, cfg.name, resume)
    else:
        run_dir, ckpt_path = (new_run_dir(runs_dir, cfg.name) if ctx.is_main else None), None
        run_dir = distributed.broadcast_object(ctx, run_dir)
    log = RunLogger(run_dir, enabled=ctx.is_main, quiet=quiet, tensorboard=t.tensorboard)
    ckpts = CheckpointManager(run_dir / CHECKPOINTS, t.keep_last)
    state = None
    if ckpt_path is not None:
        # A damaged newest checkpoint (disk full, a copy cut short) falls back to an older one.
        ckpt_path, state = load_newest_intact(
            ckpt_path.parent, on_damaged=lambda line: log.write(f"gansr: warning: {line}")
        )
    if state is not None and ctx.is_main:
        log.resume(state["iteration"])  # drop what a killed run logged after its last checkpoint
        ckpts.remove_temporaries()
    if ctx.is_main:
        config_file = run_dir / CONFIG_NAME
        if resume is not None and config_file.is_file():
            from gansr.train.config import parse_yaml

            old, new = _flat(parse_yaml(config_file.read_text(encoding="utf-8")) or {}), _flat(to_dict(cfg))
            changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            if changed:
                log.note(f"resuming with changed settings: {', '.join(changed[:8])}")
        with atomic_write(config_file) as fh:
            fh.write(dump_yaml(cfg).encode("utf-8"))
    for note in parts.notes:
        log.note(note)

    # ---------------------------------------------------------------------------- models
    g = parts.g.to(device, memory_format=fmt)
    d = parts.d.to(device, memory_format=fmt) if parts.d is not None else None
    if cfg.model.sync_bn and ctx.distributed:
        g = nn.SyncBatchNorm.convert_sync_batchnorm(g)
        d = nn.SyncBatchNorm.convert_sync_batchnorm(d) if d is not None else None
    ema = EMA(g, t.ema_decay)
    g_train, d_train = distributed.wrap(g, ctx), (distributed.wrap(d, ctx) if d is not None else None)
    if t.compile:
        g_train = torch.compile(g_train)
        d_train = torch.compile(d_train) if d_train is not None else None
    pre_mix = parts.pre_mix.to(device) if parts.pre_mix is not None else None
    gan_mix = parts.gan_mix.to(device) if parts.gan_mix is not None else None
    d_loss = parts.d_loss.to(device) if parts.d_loss is not None else None
    want_features = gan_mix is not None and "fake_features" in gan_mix.required_inputs
    n_critic = int(getattr(d_loss, "n_critic", 1)) if d_loss is not None else 1
    use_gp = d_loss is not None and hasattr(d_loss, "gradient_penalty")
    # The loop's own randomness (VAE sampling, WGAN-GP interpolation), checkpointed with the rest.
    noise = torch.Generator(device).manual_seed(item_seed(cfg.seed, NOISE_STREAM, ctx.rank, 0))

    # ---------------------------------------------------------------------------- optimizers
    optimizers: dict[str, torch.optim.Optimizer] = {}
    if pre_mix is not None:
        optimizers["g_pretrain"] = build_optimizer(g.parameters(), cfg.train.pretrain.optimizer)
    if gan_mix is not None:
        optimizers["g_gan"] = build_optimizer(g.parameters(), cfg.train.gan.optimizer)
        optimizers["d"] = build_optimizer(d.parameters(), cfg.train.gan.d_optimizer)
    scalers = {name: torch.amp.GradScaler(device.type, enabled=t.amp == "fp16") for name in optimizers}

    # ---------------------------------------------------------------------------- resume
    start, batch_index, best_psnr = 0, 0, None
    bad_streak, bad_total = 0, 0
    window: dict[str, float] = {}
    window_n = 0
    last_val: dict[str, Any] | None = None
    rng_states = None
    if state is not None:
        try:
            g.load_state_dict(state["g"])
            if d is not None and state.get("d") is not None:
                d.load_state_dict(state["d"])
            ema.load_state_dict(state["ema"])
            for name, opt in optimizers.items():
                if name in state["optimizers"]:
                    opt.load_state_dict(state["optimizers"][name])
                    scalers[name].load_state_dict(state["scalers"][name])
            for name, mix in (("pre_mix", pre_mix), ("gan_mix", gan_mix), ("d_loss", d_loss)):
                if mix is not None and state["losses"].get(name) is not None:
                    mix.load_state_dict(state["losses"][name])
        except (RuntimeError, KeyError, ValueError) as exc:  # the config's models/losses changed
            reason = str(exc).strip().splitlines()[0]
            raise ModelError(f"--resume: {ckpt_path} does not match this config ({reason})") from None
        start, batch_index, best_psnr = state["iteration"], state["batch_index"], state["best_psnr"]
        bad_streak, bad_total = state["nonfinite"]["streak"], state["nonfinite"]["total"]
        window, window_n = dict(state["log_window"]["sums"]), state["log_window"]["count"]
        last_val = state.get("last_val")
        per_rank = state["rng"]
        rng_states = per_rank[ctx.rank] if len(per_rank) == ctx.world_size else per_rank[0]
        del state
        log.note(f"resumed from {ckpt_path.name} at iteration {start}", it=start)

    # ---------------------------------------------------------------------------- data loader
    plan = BatchPlan(
        len(samples),
        cfg.data.batch_size,
        seed=cfg.seed,
        rank=ctx.rank,
        world_size=ctx.world_size,
        start=batch_index,
    )
    batches: Iterator = iter(
        make_loader(samples, plan, workers=cfg.data.workers, seed=cfg.seed, pin_memory=device.type == "cuda")
    )
    if rng_states is not None:  # last: nothing above may draw from the restored generators
        restore_rng_states(rng_states["global"])
        noise.set_state(rng_states["noise"].to(noise.get_state().device))

    def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal batch_index
        lr_img, hr_img = next(batches)
        batch_index += 1
        return (
            lr_img.to(device, non_blocking=True).contiguous(memory_format=fmt),
            hr_img.to(device, non_blocking=True).contiguous(memory_format=fmt),
        )

    def checkpoint_state(iteration: int) -> dict[str, Any]:
        rng = {"global": capture_rng_states(), "noise": noise.get_state()}
        all_rng = distributed.gather_object(ctx, rng)
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "iteration": iteration,
            "batch_index": batch_index,
            "best_psnr": best_psnr,
            "g": g.state_dict(),
            "d": d.state_dict() if d is not None else None,
            "ema": ema.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
            "scalers": {k: s.state_dict() for k, s in scalers.items()},
            "losses": {
                k: m.state_dict() if m is not None else None
                for k, m in (("pre_mix", pre_mix), ("gan_mix", gan_mix), ("d_loss", d_loss))
            },
            "nonfinite": {"streak": bad_streak, "total": bad_total},
            "log_window": {"sums": dict(window), "count": window_n},
            "last_val": last_val,
            "rng": all_rng,
            "config": to_dict(cfg),
            "world_size": ctx.world_size,
        }

    def validate(iteration: int) -> dict[str, Any]:
        metrics = evaluate(ema.module, parts.val_items, ctx=ctx, crop_border=crop_border, memory_format=fmt)
        log.log({"event": "val", "it": iteration, **metrics})
        if ctx.is_main:
            if t.sample_images:
                rows = sample_rows(ema.module, parts.val_items, t.sample_images, device)
                save_sample_grid(rows, run_dir / SAMPLES / f"iter_{iteration:08d}.png")
            if t.plot_every is None or iteration % t.plot_every == 0:
                plot_curves(log.records, run_dir / PLOTS)
        return metrics

    # ---------------------------------------------------------------------------- the loop
    if start == 0 and parts.val_items is not None:
        last_val = validate(0)  # the untrained baseline, so curves start at the beginning
    log.start_progress(start, total)
    t_window = time.perf_counter()
    g.train()
    if d is not None:
        d.train()
    stop.install()  # from here on, Ctrl-C ends the run cleanly after the current iteration
    for it in range(start, total):
        pretrain = it < pre_iters
        phase = cfg.train.pretrain if pretrain else cfg.train.gan
        step = it if pretrain else it - pre_iters
        opt_g = optimizers["g_pretrain" if pretrain else "g_gan"]
        scaler_g = scalers["g_pretrain" if pretrain else "g_gan"]
        lr_g = phase.optimizer.lr * lr_factor(phase.schedule, step, phase.iters)
        set_lr(opt_g, lr_g)
        values: dict[str, float] = {"lr_g": lr_g}
        stepped = True

        if pretrain:
            # ---- PSNR pre-training: one G step with the pixel-loss mix
            lr_img, hr = next_batch()
            with autocast_g():
                sr, extra = generate(g_train, g, lr_img, hr, noise)
            if "sr_ema" in pre_mix.wanted_inputs:
                extra["sr_ema"] = ema_output(ema.module, lr_img, autocast_g)
            loss_g, terms = pre_mix(sr.float(), hr, **extra)
        else:
            # ---- GAN: D step(s) on detached SR images
            lr_d = cfg.train.gan.d_optimizer.lr * lr_factor(cfg.train.gan.d_schedule, step, phase.iters)
            set_lr(optimizers["d"], lr_d)
            values["lr_d"] = lr_d
            d.requires_grad_(True)
            for k in range(n_critic):
                lr_img, hr = next_batch()
                keep_graph = k == n_critic - 1  # the last batch's SR also feeds the G step
                with autocast_g(), torch.set_grad_enabled(keep_graph):
                    sr, extra = generate(g_train, g, lr_img, hr, noise)
                fake = sr.detach().float()
                with autocast():
                    real_out, fake_out = d_train(hr), d_train(fake)
                loss_d = d_loss.discriminator_loss(real_out.float(), fake_out.float())
                values["d_loss"] = values.get("d_loss", 0.0) + loss_d.item() / n_critic
                if use_gp:
                    gp = d_loss.gradient_penalty(d_train, hr, fake, generator=noise)
                    values["d_gp"] = values.get("d_gp", 0.0) + gp.item() / n_critic
                    loss_d = loss_d + gp
                values["d_real"] = values.get("d_real", 0.0) + real_out.float().mean().item() / n_critic
                values["d_fake"] = values.get("d_fake", 0.0) + fake_out.float().mean().item() / n_critic
                stepped &= optimizer_step(loss_d, optimizers["d"], d, scalers["d"], t.grad_clip, ctx)
            # ---- GAN: G step with the full mix on the last batch (D frozen)
            d.requires_grad_(False)
            if "sr_ema" in gan_mix.wanted_inputs:
                extra["sr_ema"] = ema_output(ema.module, lr_img, autocast_g)
            loss_g, terms = g_gan_loss(
                d, gan_mix, sr, hr, extra, want_features=want_features, autocast=autocast
            )
        stepped &= optimizer_step(loss_g, opt_g, g, scaler_g, t.grad_clip, ctx)
        ema.update(g)
        values["g_total"] = loss_g.item()
        values.update({f"g_{name}": v.item() for name, v in terms.items()})
        if hasattr(phase_mix := (pre_mix if pretrain else gan_mix), "ema_shares"):
            values.update({f"w_{name}": w for name, w in phase_mix.current_weights().items()})

        # ---- non-finite losses: the step was skipped; too many in a row end the run
        if stepped:
            bad_streak = 0
        else:
            bad_streak += 1
            bad_total += 1
            log.log(
                {
                    "event": "nonfinite",
                    "it": it + 1,
                    "streak": bad_streak,
                    "total": bad_total,
                    **{k: v for k, v in values.items() if not k.startswith("lr")},
                }
            )
            if bad_streak >= t.max_nonfinite:
                log.close()
                raise TrainingDiverged(
                    f"training stopped at iteration {it + 1}: {bad_streak} non-finite losses in a row "
                    f"(g_total={values['g_total']}); lower the learning rate, set train.grad_clip, or use "
                    "train.amp: none"
                )

        # ---- logging
        for key, value in values.items():
            if not key.startswith("lr_"):  # learning rates are logged as they are now
                window[key] = window.get(key, 0.0) + value
        window_n += 1
        log.advance({k: values[k] for k in ("g_total", "d_loss") if k in values})
        if (it + 1) % t.log_every == 0 or it + 1 == total:
            now = time.perf_counter()
            log.log(
                {
                    "event": "train",
                    "it": it + 1,
                    "phase": "pretrain" if pretrain else "gan",
                    "epoch": batch_index / plan.batches_per_epoch,
                    **{k: v for k, v in values.items() if k.startswith("lr_")},
                    **{k: v / window_n for k, v in window.items()},
                    "it_per_s": window_n / max(now - t_window, 1e-9),
                    "nonfinite_total": bad_total,
                }
            )
            window, window_n, t_window = {}, 0, now

        # ---- validation of the EMA generator
        is_best = False
        if parts.val_items is not None and ((it + 1) % t.val_every == 0 or it + 1 == total):
            last_val = validate(it + 1)
            if best_psnr is None or last_val["val_psnr"] > best_psnr:
                best_psnr, is_best = last_val["val_psnr"], True

        # ---- checkpoints: the last K plus the best
        periodic = (it + 1) % t.ckpt_every == 0 or it + 1 == total
        if periodic or is_best:
            state = checkpoint_state(it + 1)
            if ctx.is_main:
                if periodic:
                    ckpts.save(state, it + 1)
                if is_best:
                    ckpts.save_best(state, it + 1)
            del state

        # ---- Ctrl-C / SIGTERM: stop after this whole iteration, with a checkpoint to resume
        if stop.requested and it + 1 < total:
            if not periodic:  # (a periodic one was just written; single process, so main)
                ckpts.save(checkpoint_state(it + 1), it + 1)
            log.close()
            raise Interrupted(
                f"stopped at iteration {it + 1} of {total}; checkpoint written: run the same command "
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
            "val": last_val,
            "ema_decay": t.ema_decay,
        }
        models.save(ema.module.float().cpu(), run_dir / MODEL_NAME, metadata=metadata)
        ema.module.to(device)
        plot_curves(log.records, run_dir / PLOTS)
    distributed.barrier(ctx)
    return TrainResult(run_dir, total, ema.module, g, d, last_val, best_psnr)


__all__ = [
    "TrainResult",
    "TrainingDiverged",
    "forward_with_features",
    "g_gan_loss",
    "generate",
    "optimizer_step",
    "train",
]
