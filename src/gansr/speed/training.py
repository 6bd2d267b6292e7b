"""``gansr speed --train``: the step rate of a training preset, naive vs the trainer's fast engine.

Everything is what ``gansr train`` runs: the parts come from
:func:`gansr.train.build.build_parts` on the preset, each variant's
:class:`~gansr.train.state.TrainState` from :meth:`~gansr.train.state.TrainState.create`, and one
timed step is the trainer's :class:`~gansr.train.step.TrainStep` GAN iteration: ``n_critic`` D
steps on real and detached SR images (with the gradient penalty of a WGAN-GP loss), then G with
the full loss mix against the frozen D, then the EMA update. Variants differ only in the
trainer's engine settings:

* ``naive``: NCHW fp32 with the default allocator behaviour, what a plain PyTorch loop does;
* ``channels_last``: ``train.channels_last: true``, and from here on the trainer's heap reuse
  (:mod:`gansr.engine.allocator`, which ``gansr train`` always uses on the CPU);
* ``channels_last+bf16``: plus ``train.amp: bf16`` (where the CPU/GPU has native bf16);
* ``channels_last+bf16_d``: plus ``train.amp: bf16`` with ``train.amp_scope: d``: only D's passes
  in bf16 (two thirds of an SRGAN step), G's arithmetic stays fp32.

Rounds are interleaved (A, B, C, A, B, C, ...) and each reports the median step rate. With
``check_steps`` each variant also trains from the same initialisation on the same batches for
a short fixed schedule (the optimizers' base learning rates) and reports the validation PSNR of
its EMA generator, so that a faster engine can be seen not to cost quality.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from gansr.errors import ConfigError

if TYPE_CHECKING:
    from gansr.train.state import TrainState
    from gansr.train.step import TrainStep

__all__ = ["TrainBenchOptions", "VARIANTS", "run_train_bench"]

VARIANTS: dict[str, tuple[bool, str, str]] = {  # name -> (channels_last, amp, amp_scope)
    "naive": (False, "none", "all"),
    "channels_last": (True, "none", "all"),
    "channels_last+bf16": (True, "bf16", "all"),
    "channels_last+bf16_d": (True, "bf16", "d"),
}


@dataclass
class TrainBenchOptions:
    """What ``gansr speed --train`` measures (validated on construction).

    Attributes:
        preset: a training preset name or config file with a GAN phase (``srgan_x4``).
        data: folder of training images (default: the bundled Set5 samples; speed does not depend
            on the pictures, but ``check_steps`` should train on real training data).
        batch_size / patch_size: override the preset's.
        steps: steps per timed round; ``repeat`` rounds per variant, after ``warmup`` steps.
        variants: names from :data:`VARIANTS`.
        check_steps / check_pretrain_steps: the fixed schedule of the quality check (0: no check).
        val_folder: HR images to validate on (default: the bundled Set5).
        overrides: extra ``key=value`` config overrides, as ``gansr train --set``.
    """

    preset: str = "srgan_x4"
    data: str | None = None
    batch_size: int | None = None
    patch_size: int | None = None
    steps: int = 3
    repeat: int = 3
    warmup: int = 1
    variants: tuple[str, ...] = ("naive", "channels_last", "channels_last+bf16")
    device: str = "auto"
    threads: int | None = None
    check_steps: int = 0
    check_pretrain_steps: int = 0
    val_folder: str | None = None
    overrides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name, value, low in (
            ("steps", self.steps, 1),
            ("repeat", self.repeat, 1),
            ("warmup", self.warmup, 0),
            ("check_steps", self.check_steps, 0),
            ("check_pretrain_steps", self.check_pretrain_steps, 0),
        ):
            if value < low:
                raise ConfigError(f"bench --train: {name} must be >= {low}, got {value}")
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise ConfigError(f"bench --train: variants must be among {', '.join(VARIANTS)}, got {unknown}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"bench --train: threads must be >= 1, got {self.threads}")


def _samples_dir() -> str:
    return str(files("gansr") / "samples" / "Set5")


@dataclass
class _Variant:
    name: str
    state: TrainState
    step: TrainStep
    fmt: torch.memory_format
    rates: list[float]


class _Trainer:
    """The parts of one preset, and the trainer's state and step for any variant."""

    def __init__(self, opts: TrainBenchOptions, device: torch.device, with_val: bool) -> None:
        from gansr.train.build import build_parts
        from gansr.train.config import load_config
        from gansr.train.distributed import DistContext

        overrides = [f"data.root={opts.data or _samples_dir()}", "data.workers=0", "train.compile=false"]
        if opts.batch_size is not None:
            overrides.append(f"data.batch_size={opts.batch_size}")
        if opts.patch_size is not None:
            overrides.append(f"data.patch_size={opts.patch_size}")
        if with_val:
            overrides.append(f"data.val_folder={opts.val_folder or _samples_dir()}")
        overrides += list(opts.overrides)
        cfg = load_config(opts.preset, overrides)
        if cfg.train.gan is None or cfg.train.gan.iters <= 0:
            raise ConfigError(f"bench --train: preset {opts.preset!r} has no GAN phase to time")
        self.cfg = cfg
        self.device = device
        self.ctx = DistContext(rank=0, world_size=1, local_rank=0, device=device)
        self.parts = build_parts(cfg, device)
        if self.parts.d is None or self.parts.gan_mix is None or self.parts.d_loss is None:
            raise ConfigError(f"bench --train: preset {opts.preset!r} builds no discriminator")
        if opts.check_pretrain_steps > 0 and self.parts.pre_mix is None:
            raise ConfigError(
                f"bench --train: check_pretrain_steps: preset {opts.preset!r} has no pretrain phase"
            )
        self._batches: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``index``: the trainer's samples (random crop, augmentation, degradation seeded by
        ``(epoch, image)``), taken in order, so a few images still give distinct crops; cached,
        so that every variant trains on the same batches."""
        if index not in self._batches:
            samples = self.parts.samples
            size, n = self.cfg.data.batch_size, len(samples)
            keys = [divmod(index * size + k, n) for k in range(size)]
            pairs = [samples[key] for key in keys]
            self._batches[index] = (torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs]))
        return self._batches[index]

    def variant(self, name: str) -> _Variant:
        """A fresh state (copies of the preset's initial models and losses) and step for ``name``."""
        from gansr.train.state import TrainState, memory_format
        from gansr.train.step import TrainStep

        channels_last, amp, scope = VARIANTS[name]
        train = dataclasses.replace(self.cfg.train, channels_last=channels_last, amp=amp, amp_scope=scope)
        cfg = dataclasses.replace(self.cfg, train=train)
        fresh = {k: copy.deepcopy(getattr(self.parts, k)) for k in ("g", "d", "pre_mix", "gan_mix", "d_loss")}
        state = TrainState.create(cfg, dataclasses.replace(self.parts, **fresh), self.ctx)
        state.g.train()
        if state.d is not None:
            state.d.train()
        return _Variant(name, state, TrainStep(state, cfg, self.ctx), memory_format(cfg), rates=[])

    def step(self, v: _Variant, indices: Iterator[int], *, pretrain: bool = False) -> None:
        """One trainer iteration of ``v`` (GAN, or PSNR pre-training) on the next batches of ``indices``."""

        def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
            lr, hr = self.batch(next(indices))
            return (
                lr.to(self.device).contiguous(memory_format=v.fmt),
                hr.to(self.device).contiguous(memory_format=v.fmt),
            )

        v.step(v.state, next_batch, pretrain=pretrain)

    def validate(self, v: _Variant) -> dict[str, float]:
        """The trainer's validation of the EMA generator (fp32, NCHW)."""
        from gansr.train.validation import evaluate

        assert self.parts.val_items is not None
        crop = self.cfg.data.scale
        module = copy.deepcopy(v.state.ema.module).float().to(memory_format=torch.contiguous_format).eval()
        return evaluate(module, self.parts.val_items, ctx=self.ctx, crop_border=crop)


def _heap(v: _Variant, device: torch.device) -> contextlib.AbstractContextManager:
    """The trainer's heap scope for its variants; the naive loop runs with the default allocator."""
    from gansr.engine.allocator import reuse_large_blocks

    return contextlib.nullcontext() if v.name == "naive" else reuse_large_blocks(device)


def _timed(step: Callable[[], None], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        step()
    return count / (time.perf_counter() - start)


def run_train_bench(opts: TrainBenchOptions, *, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the training bench (see the module doc); returns the JSON-able report."""
    from gansr.engine.device import resolve_device
    from gansr.engine.fast import resolve_precision
    from gansr.speed.runner import cpu_name

    device = resolve_device(opts.device)
    if opts.threads is not None:
        torch.set_num_threads(opts.threads)
    notes: list[str] = []
    names = list(dict.fromkeys(opts.variants))
    if resolve_precision("bf16", device, warn=False) != "bf16":
        for name in [n for n in names if "bf16" in n]:
            names.remove(name)
            notes.append(f"{name} skipped: no native bf16 on this device")
    trainer = _Trainer(opts, device, with_val=opts.check_steps > 0)
    variants = [trainer.variant(name) for name in names]
    indices = itertools.count()  # the variants take turns on fresh batches
    for v in variants:
        with _heap(v, device):
            _timed(lambda v=v: trainer.step(v, indices), opts.warmup)
    for _ in range(opts.repeat):
        for v in variants:
            with _heap(v, device):
                rate = _timed(lambda v=v: trainer.step(v, indices), opts.steps)
            v.rates.append(rate)
            if log is not None:
                log(f"{v.name}: {rate:.3f} steps/s")
    base = next((v for v in variants if v.name == "naive"), None)
    results = []
    for v in variants:
        median = statistics.median(v.rates)
        entry: dict[str, Any] = {"name": v.name, "steps_per_s": v.rates, "median_steps_per_s": median}
        if base is not None:
            entry["speedup_vs_naive"] = median / statistics.median(base.rates)
        results.append(entry)

    check: dict[str, Any] | None = None
    if opts.check_steps > 0:
        check = {"pretrain_steps": opts.check_pretrain_steps, "gan_steps": opts.check_steps, "variants": {}}
        for name in names:
            v = trainer.variant(name)  # fresh: same initialisation for every variant
            batches = itertools.count()  # and the same batches
            for _ in range(opts.check_pretrain_steps):
                trainer.step(v, batches, pretrain=True)
            for _ in range(opts.check_steps):
                trainer.step(v, batches)
            metrics = trainer.validate(v)
            check["variants"][name] = {"val_psnr": metrics["val_psnr"], "val_ssim": metrics["val_ssim"]}
            if log is not None:
                log(f"check {name}: val PSNR {metrics['val_psnr']:.3f} dB")
        if "naive" in check["variants"]:
            ref = check["variants"]["naive"]["val_psnr"]
            for entry in check["variants"].values():
                entry["psnr_change_db"] = entry["val_psnr"] - ref

    cfg = trainer.cfg
    return {
        "preset": opts.preset,
        "device": {"type": device.type, "name": cpu_name(), "threads": torch.get_num_threads()},
        "g": cfg.model.g.arch,
        "d": cfg.model.d.arch if cfg.model.d is not None else None,
        "batch_size": cfg.data.batch_size,
        "patch_size": cfg.data.patch_size,
        "data": str(Path(opts.data)) if opts.data else "bundled Set5 samples",
        "steps_per_round": opts.steps,
        "repeat": opts.repeat,
        "variants": results,
        "check": check,
        "notes": notes + trainer.parts.notes,
    }
