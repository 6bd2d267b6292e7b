"""Everything a run needs, built from a :class:`~gansr.train.config.Config` — and so validated.

:func:`build_parts` constructs the models, loss mixes, the training samples (source images,
crops, augmentation and degradation) and the validation set. Every problem surfaces here, before
a run folder exists or an iteration runs, as a one-line :class:`~gansr.errors.ConfigError` naming
the dotted key (``model.g.arch: unknown model 'x'; ...``, ``data.scale: ...``, ``train.gan.losses: ...``).

Model options that follow from the data are filled in when the config leaves them out and the
architecture accepts them: ``scale`` from ``data.scale`` and ``in_channels``/``out_channels``
from the data's channel count.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from gansr.errors import ConfigError, DataError, GansrError, ModelError
from gansr.train.config import Config, GanConfig, ModelSpec, PretrainConfig
from gansr.train.data import (
    Source,
    TrainSamples,
    ValItem,
    build_pipeline,
    build_train_source,
    build_val_set,
    check_folders,
)


def data_channels(cfg: Config) -> int:
    """Channels of the training images: 1 for MNIST and ``data.channels: gray``, else 3."""
    return 1 if cfg.data.kind == "mnist" or cfg.data.channels == "gray" else 3


def _model_kwargs(spec: ModelSpec, defaults: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    from gansr.models.registry import REGISTRY

    kwargs = dict(spec.kwargs)
    injected = set()
    entry = REGISTRY.get(spec.arch)
    if entry is not None:
        accepted = inspect.signature(entry[0]).parameters
        for key, value in defaults.items():
            if key in accepted and key not in kwargs:
                kwargs[key] = value
                injected.add(key)
    return kwargs, injected


def _create(spec: ModelSpec, key: str, defaults: dict[str, Any]) -> nn.Module:
    from gansr import models

    kwargs, injected = _model_kwargs(spec, defaults)
    try:
        return models.create(spec.arch, **kwargs)
    except ModelError as exc:
        raise ConfigError(f"{key}.arch: {exc}") from None
    except (ConfigError, TypeError, ValueError) as exc:
        message = str(exc)
        if "scale" in injected and ": scale " in message:
            raise ConfigError(f"data.scale: {message}") from None
        bad = next((k for k in kwargs if f": {k} " in message or f"'{k}'" in message), None)
        where = f"{key}.kwargs.{bad}" if bad and bad not in injected else f"{key}.kwargs"
        raise ConfigError(f"{where}: {message}") from None


def build_generator(cfg: Config) -> nn.Module:
    """G from ``model.g``; checks its scale and channels against the data."""
    channels = data_channels(cfg)
    defaults = {"scale": cfg.data.scale, "in_channels": channels, "out_channels": channels}
    g = _create(cfg.model.g, "model.g", defaults)
    if not hasattr(g, "scale"):
        raise ConfigError(f"model.g.arch: {cfg.model.g.arch!r} is not a generator")
    if cfg.model.g.init is not None:
        _init_from(g, cfg.model.g.init, "model.g.init")
    if not getattr(g, "arbitrary_scale", False) and g.scale != cfg.data.scale:
        raise ConfigError(
            f"data.scale: model.g ({cfg.model.g.arch}) upscales x{g.scale}, "
            f"but data.scale is {cfg.data.scale}"
        )
    if getattr(g, "in_channels", channels) != channels:
        raise ConfigError(
            f"model.g.kwargs.in_channels: {cfg.model.g.arch} takes {g.in_channels} channel(s), "
            f"the data has {channels} (data.kind / data.channels)"
        )
    return g


def _init_from(model: nn.Module, source: str, key: str) -> None:
    """Copy the weights of ``source`` (shipped name or checkpoint) into ``model``, whose
    architecture and configuration must be the same."""
    from gansr.models import load

    try:
        trained = load(source)
    except ModelError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    arch, config = getattr(trained, "arch", None), getattr(trained, "config", None)
    if arch != getattr(model, "arch", None) or config != getattr(model, "config", None):
        raise ConfigError(
            f"{key}: {source} is {arch} {config}, but the model is "
            f"{getattr(model, 'arch', type(model).__name__)} {getattr(model, 'config', {})}"
        )
    model.load_state_dict({k: v.float() for k, v in trained.state_dict().items()})


def build_discriminator(cfg: Config) -> nn.Module:
    """D from ``model.d`` (the caller checks that there is one)."""
    assert cfg.model.d is not None
    channels = data_channels(cfg)
    d = _create(cfg.model.d, "model.d", {"in_channels": channels})
    if hasattr(d, "scale"):
        raise ConfigError(f"model.d.arch: {cfg.model.d.arch!r} is a generator, not a discriminator")
    if getattr(d, "in_channels", channels) != channels:
        raise ConfigError(
            f"model.d.kwargs.in_channels: {cfg.model.d.arch} takes {d.in_channels} channel(s), "
            f"the data has {channels}"
        )
    return d


# --------------------------------------------------------------------------------------------
# Losses.
def _terms(losses: list[dict[str, Any]] | dict[str, Any]) -> list[dict[str, Any]]:
    return losses["terms"] if isinstance(losses, dict) else losses


def _needs_vgg_file(term: dict[str, Any]) -> bool:
    return term.get("type") == "perceptual" and term.get("pretrained", True) and term.get("weights") is None


def resolve_vgg_fallback(
    phase: PretrainConfig | GanConfig, key: str
) -> tuple[list[dict[str, Any]] | dict[str, Any], str | None]:
    """Replace pretrained perceptual terms by ``vgg_fallback`` when no VGG19 weights are on disk.

    Returns the (possibly rewritten) losses config and a one-line note saying what was replaced,
    or None when nothing was. Without a configured fallback the perceptual loss itself tries to
    download the weights (and raises a ConfigError saying how to provide them when it cannot).
    """
    losses = copy.deepcopy(phase.losses)
    terms = _terms(losses)
    if phase.vgg_fallback is None or not any(_needs_vgg_file(t) for t in terms):
        return losses, None
    from gansr.losses import find_vgg19_weights

    if find_vgg19_weights() is not None:
        return losses, None
    kept = [t for t in terms if not _needs_vgg_file(t)]
    replaced = [t.get("name", "perceptual") for t in terms if _needs_vgg_file(t)]
    names = {t.get("name", t["type"]) for t in kept}
    added = [t for t in copy.deepcopy(phase.vgg_fallback) if t.get("name", t.get("type")) not in names]
    new_terms = kept + added
    if isinstance(losses, dict):
        losses["terms"] = new_terms
        if isinstance(losses.get("targets"), dict):  # shares of removed terms no longer apply
            losses.pop("targets")
    else:
        losses = new_terms
    from gansr.losses.perceptual import VGG19_URL, vgg19_cache_path

    listed = " + ".join(f"{t['type']}({t.get('weight', 1.0):g})" for t in added) or "nothing"
    note = (
        f"VGG19 weights not found: {key}.losses uses the fallback {listed} in place of "
        f"{', '.join(replaced)} (to use VGG, download {VGG19_URL} to {vgg19_cache_path()})"
    )
    return losses, note


def build_mix_for(phase: PretrainConfig | GanConfig, key: str) -> tuple[nn.Module, str | None]:
    """The phase's :class:`gansr.losses.MixLoss` (with the VGG fallback applied) and its note."""
    from gansr.losses import build_mix

    losses, note = resolve_vgg_fallback(phase, key)
    try:
        return build_mix(losses), note
    except GansrError as exc:
        raise ConfigError(f"{key}.losses: {exc}") from None


def build_d_loss(phase: GanConfig, mix: nn.Module) -> nn.Module:
    """D's adversarial loss: ``train.gan.d_loss``, else the mix's adversarial term."""
    from gansr.losses import build_adversarial

    if phase.d_loss is not None:
        try:
            return build_adversarial(phase.d_loss)
        except GansrError as exc:
            raise ConfigError(f"train.gan.d_loss: {exc}") from None
    adversarial = getattr(mix, "adversarial", None)
    if adversarial is None:
        raise ConfigError("train.gan.d_loss: required when train.gan.losses has no adversarial term")
    return adversarial


# --------------------------------------------------------------------------------------------
@dataclass
class Parts:
    """What :func:`build_parts` made."""

    g: nn.Module
    d: nn.Module | None
    pre_mix: nn.Module | None
    gan_mix: nn.Module | None
    d_loss: nn.Module | None
    samples: TrainSamples  # the training pairs, keyed by (epoch, index)
    val_items: list[ValItem] | None
    notes: list[str] = field(default_factory=list)

    @property
    def source(self) -> Source:
        """The training images the samples are cut from."""
        return self.samples.source


def check_engine(cfg: Config, device: torch.device, world_size: int = 1) -> None:
    """Settings that depend on the device and the number of processes."""
    if cfg.model.sync_bn and world_size > 1 and device.type != "cuda":
        raise ConfigError("model.sync_bn: SyncBatchNorm needs CUDA devices; set it to false on CPU")
    if cfg.train.amp == "fp16" and device.type != "cuda":
        raise ConfigError("train.amp: fp16 needs a CUDA device; use bf16 on CPU")
    if cfg.train.compile and not hasattr(torch, "compile"):
        raise ConfigError("train.compile: this torch has no torch.compile")


def build_parts(cfg: Config, device: torch.device | None = None, world_size: int = 1) -> Parts:
    """Build (and so validate) every piece of a run from ``cfg``; models are on the CPU.

    Raises:
        ConfigError: one line naming the offending key.
    """
    # Cheap checks first, reading the datasets last, so a mistake is reported quickly.
    check_engine(cfg, device or torch.device("cpu"), world_size)
    notes: list[str] = []
    d = cfg.data
    if d.kind in ("hr_folder", "paired", "celeba") and d.patch_size is None:
        raise ConfigError(f"data.patch_size: required for data.kind {d.kind!r} (images differ in size)")
    check_folders(cfg)
    pipeline = build_pipeline(cfg)

    torch.manual_seed(cfg.seed)  # model initialisation is part of the run's reproducibility
    g = build_generator(cfg)
    gan = cfg.train.gan if cfg.train.gan is not None and cfg.train.gan.iters > 0 else None
    disc = build_discriminator(cfg) if gan is not None else None

    pre_mix = gan_mix = d_loss = None
    if cfg.train.pretrain is not None and cfg.train.pretrain.iters > 0:
        pre_mix, note = build_mix_for(cfg.train.pretrain, "train.pretrain")
        notes += [note] if note else []
        wants = set(getattr(pre_mix, "required_inputs", ())) - {"sr", "hr", "mu", "logvar"}
        if wants:
            raise ConfigError(
                "train.pretrain.losses: the pretrain phase has no discriminator, but a term needs "
                + ", ".join(sorted(wants))
            )
    if gan is not None:
        gan_mix, note = build_mix_for(gan, "train.gan")
        notes += [note] if note else []
        d_loss = build_d_loss(gan, gan_mix)
    for mix, key in ((pre_mix, "train.pretrain"), (gan_mix, "train.gan")):
        wants = set(getattr(mix, "required_inputs", ()))
        if {"mu", "logvar"} & wants and "return_latent" not in inspect.signature(g.forward).parameters:
            raise ConfigError(
                f"{key}.losses: a KL term needs a VAE generator (mu, logvar), not {cfg.model.g.arch}"
            )

    source = build_train_source(cfg)
    if getattr(source, "skipped", None):
        notes.append(
            f"data.root: skipped {len(source.skipped)} image(s) smaller than data.patch_size "
            f"{d.patch_size}, e.g. {source.skipped[0]}"
        )
    try:
        val_items = build_val_set(cfg, pipeline)
    except DataError as exc:
        raise ConfigError(f"data.val_folder: {exc}") from None
    if val_items is None:
        notes.append("no validation set (set data.val_folder): no metrics, best checkpoint or sample grids")
    samples = TrainSamples.from_config(cfg, source, pipeline)
    return Parts(g, disc, pre_mix, gan_mix, d_loss, samples, val_items, notes)
