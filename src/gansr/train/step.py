"""One training iteration, shared by :func:`gansr.train.train` and ``gansr speed --train``.

:class:`TrainStep` holds what a step needs besides the :class:`~gansr.train.state.TrainState`:
the models as called (DDP / ``torch.compile`` wrappers), the autocast scopes, gradient clipping
and the process group. An iteration is

1. **PSNR pre-training**: one G step on the pixel-loss mix;
2. **GAN**: ``n_critic`` D steps, each on its own batch (plus the gradient penalty of a WGAN-GP
   loss), the last batch's SR images kept with their graph, then one G step on that batch with the
   full mix (content + adversarial + ...) against the frozen D;

then the EMA update. A loss that is not finite (on any process) skips its optimizer step, and
:attr:`StepOutput.stepped` says so. Losses stay tensors until :meth:`StepOutput.values`, so a step
that is only timed does not wait for the device to report them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from gansr.train import distributed
from gansr.train.config import Config
from gansr.train.state import TrainState

Batch = tuple[torch.Tensor, torch.Tensor]  # (LR, HR) on the device
AutocastFactory = Callable[[], contextlib.AbstractContextManager]


def generate(
    g: nn.Module, raw_g: nn.Module, lr: torch.Tensor, hr: torch.Tensor, noise: torch.Generator
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """SR batch plus the extra tensors losses may need (``mu``/``logvar`` from a VAE generator)."""
    if getattr(raw_g, "arbitrary_scale", False):
        sr, mu, logvar = g(lr, size=tuple(hr.shape[-2:]), return_latent=True, generator=noise)
        return sr, {"mu": mu.float(), "logvar": logvar.float()}
    return g(lr), {}


def ema_output(ema_g: nn.Module, lr: torch.Tensor, autocast: AutocastFactory) -> torch.Tensor:
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
    autocast: AutocastFactory,
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


@dataclass
class StepOutput:
    """What one iteration measured (detached tensors; :meth:`values` turns them into numbers)."""

    stepped: bool  # False: a non-finite loss skipped an optimizer step
    g_total: torch.Tensor
    g_terms: dict[str, torch.Tensor]
    # One entry per critic step (GAN phase only): D's loss, its gradient penalty, mean logits.
    d_loss: list[torch.Tensor] = field(default_factory=list)
    d_gp: list[torch.Tensor] = field(default_factory=list)
    d_real: list[torch.Tensor] = field(default_factory=list)
    d_fake: list[torch.Tensor] = field(default_factory=list)

    def values(self) -> dict[str, float]:
        """``d_loss``, ``d_gp``, ``d_real``, ``d_fake`` (means over the critic steps), ``g_total``
        and ``g_<term>``, in this order (the order of the log's columns)."""
        out: dict[str, float] = {}
        for name in ("d_loss", "d_gp", "d_real", "d_fake"):
            steps = getattr(self, name)
            if steps:
                mean = 0.0
                for value in steps:  # summed in step order, as a running mean would be
                    mean += value.item() / len(steps)
                out[name] = mean
        out["g_total"] = self.g_total.item()
        out.update({f"g_{name}": v.item() for name, v in self.g_terms.items()})
        return out


class TrainStep:
    """One iteration of a run; call it with the state and a source of batches.

    Args:
        state: the run's state (its G/D are wrapped here for DDP and, with ``train.compile``,
            compiled; the state keeps the raw modules).
        cfg: the run's config (``train.amp``, ``train.amp_scope``, ``train.grad_clip``, ``train.compile``).
        ctx: the process group.
    """

    def __init__(self, state: TrainState, cfg: Config, ctx: distributed.DistContext) -> None:
        t = cfg.train
        self.ctx = ctx
        self.grad_clip = t.grad_clip
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(t.amp)
        self.amp_g = t.amp_scope == "all"  # False: only D's passes run under autocast
        self.g = distributed.wrap(state.g, ctx)
        self.d = distributed.wrap(state.d, ctx) if state.d is not None else None
        if t.compile:
            self.g = torch.compile(self.g)
            self.d = torch.compile(self.d) if self.d is not None else None
        gan_mix, d_loss = state.gan_mix, state.d_loss
        self.want_features = gan_mix is not None and "fake_features" in gan_mix.required_inputs
        self.n_critic = int(getattr(d_loss, "n_critic", 1)) if d_loss is not None else 1
        self.use_gp = d_loss is not None and hasattr(d_loss, "gradient_penalty")

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast of D's passes (``train.amp``)."""
        return torch.autocast(self.ctx.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def autocast_g(self) -> contextlib.AbstractContextManager:
        """The autocast of G's passes: D's, unless ``train.amp_scope`` is ``d``."""
        return self.autocast() if self.amp_g else contextlib.nullcontext()

    def __call__(self, state: TrainState, next_batch: Callable[[], Batch], *, pretrain: bool) -> StepOutput:
        """One pre-training or GAN iteration; ``next_batch`` is called once per G/D batch."""
        out = self.pretrain(state, next_batch) if pretrain else self.gan(state, next_batch)
        state.ema.update(state.g)
        return out

    def pretrain(self, state: TrainState, next_batch: Callable[[], Batch]) -> StepOutput:
        """One G step with the pixel-loss mix."""
        mix = state.pre_mix
        assert mix is not None, "the config has no pretrain phase"
        lr_img, hr = next_batch()
        with self.autocast_g():
            sr, extra = generate(self.g, state.g, lr_img, hr, state.noise)
        if "sr_ema" in mix.wanted_inputs:
            extra["sr_ema"] = ema_output(state.ema.module, lr_img, self.autocast_g)
        loss_g, terms = mix(sr.float(), hr, **extra)
        stepped = self._step(loss_g, state, "g_pretrain", state.g)
        return StepOutput(stepped, loss_g.detach(), _detached(terms))

    def gan(self, state: TrainState, next_batch: Callable[[], Batch]) -> StepOutput:
        """``n_critic`` D steps on detached SR images, then one G step with the full mix."""
        d, d_train, mix, d_loss = state.d, self.d, state.gan_mix, state.d_loss
        assert d is not None and d_train is not None and mix is not None and d_loss is not None
        stepped = True
        d_losses: list[torch.Tensor] = []
        gps: list[torch.Tensor] = []
        reals: list[torch.Tensor] = []
        fakes: list[torch.Tensor] = []
        d.requires_grad_(True)
        for k in range(self.n_critic):
            lr_img, hr = next_batch()
            keep_graph = k == self.n_critic - 1  # the last batch's SR also feeds the G step
            with self.autocast_g(), torch.set_grad_enabled(keep_graph):
                sr, extra = generate(self.g, state.g, lr_img, hr, state.noise)
            fake = sr.detach().float()
            with self.autocast():
                real_out, fake_out = d_train(hr), d_train(fake)
            loss_d = d_loss.discriminator_loss(real_out.float(), fake_out.float())
            d_losses.append(loss_d.detach())
            if self.use_gp:
                gp = d_loss.gradient_penalty(d_train, hr, fake, generator=state.noise)
                gps.append(gp.detach())
                loss_d = loss_d + gp
            reals.append(real_out.detach().float().mean())
            fakes.append(fake_out.detach().float().mean())
            stepped &= self._step(loss_d, state, "d", d)
        # G step on the last batch, D frozen
        d.requires_grad_(False)
        if "sr_ema" in mix.wanted_inputs:
            extra["sr_ema"] = ema_output(state.ema.module, lr_img, self.autocast_g)
        loss_g, terms = g_gan_loss(
            d, mix, sr, hr, extra, want_features=self.want_features, autocast=self.autocast
        )
        stepped &= self._step(loss_g, state, "g_gan", state.g)
        return StepOutput(stepped, loss_g.detach(), _detached(terms), d_losses, gps, reals, fakes)

    def _step(self, loss: torch.Tensor, state: TrainState, name: str, model: nn.Module) -> bool:
        return optimizer_step(
            loss, state.optimizers[name], model, state.scalers[name], self.grad_clip, self.ctx
        )


def _detached(terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: value.detach() for name, value in terms.items()}


__all__ = [
    "StepOutput",
    "TrainStep",
    "ema_output",
    "forward_with_features",
    "g_gan_loss",
    "generate",
    "optimizer_step",
]
