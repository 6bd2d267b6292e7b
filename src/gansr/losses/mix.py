"""Weighted sums of loss terms, with fixed or adaptive weights.

A mix is built from config entries such as::

    - {type: perceptual, weight: 1.0}
    - {type: l1, weight: 0.01}
    - {type: ragan, weight: 0.005}

Each term declares the tensors it consumes (:attr:`gansr.losses.base.Loss.inputs`): image losses
take ``sr`` and ``hr``, adversarial terms ``fake_logits`` (and ``real_logits``), feature matching
``fake_features`` and ``real_features``, KL ``mu`` and ``logvar``. ``MixLoss.forward`` takes all of
them as keyword tensors and hands each term what it asks for, so the trainer passes whatever its
model produces and a config asking for something that is not there fails with a clear message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from gansr.errors import ConfigError
from gansr.losses._options import check_options, check_range, option_types
from gansr.losses.adversarial import AdversarialLoss
from gansr.losses.registry import parse_entry

__all__ = ["AdaptiveMixLoss", "MixLoss", "MixTerm", "build_mix"]


@dataclass(frozen=True)
class MixTerm:
    """One term of a mix built in Python rather than from a config entry.

    ``loss`` may be any module returning a scalar; its ``inputs`` / ``optional_inputs`` class
    attributes (see :class:`~gansr.losses.base.Loss`) say what it consumes, ``("sr", "hr")`` if it
    has none.
    """

    name: str
    loss: nn.Module
    weight: float = 1.0


class MixLoss(nn.Module):
    """``total = sum_i w_i * L_i`` over named loss terms with fixed weights.

    Args:
        terms: config entries (``{"type": ..., "weight": ..., "name": ..., <options>}``, see
            :func:`gansr.losses.build_loss`) and/or :class:`MixTerm` objects. Names default to the
            type and must be unique (give two terms of one type distinct ``name`` keys).

    Raises:
        ConfigError: an empty list, a bad entry, or a duplicate name.
    """

    def __init__(self, terms: Sequence[Mapping[str, Any] | MixTerm]) -> None:
        super().__init__()
        if isinstance(terms, Mapping | str) or not isinstance(terms, Sequence) or not terms:
            raise ConfigError(
                "loss mix: expected a non-empty list of loss terms like [{type: l1, weight: 1.0}]"
            )
        self.losses = nn.ModuleDict()
        self._weights: dict[str, float] = {}
        for index, term in enumerate(terms):
            if isinstance(term, MixTerm):
                name, loss = term.name, term.loss
                weight = check_range(f"loss term {name!r}", "weight", term.weight, low=0.0)
                if not name or "." in name:
                    raise ConfigError(f"loss term {name!r}: the name must be non-empty and without '.'")
            else:
                _, name, weight, loss = parse_entry(term, where=f"losses[{index}]")
            if name in self._weights:
                raise ConfigError(
                    f"losses[{index}]: duplicate loss term name {name!r} (give each term a distinct 'name')"
                )
            try:
                self.losses[name] = loss
            except KeyError as exc:  # nn.ModuleDict refuses names of its own attributes ("keys", ...)
                raise ConfigError(f"losses[{index}]: {name!r} cannot be a loss term name") from exc
            self._weights[name] = weight

    @property
    def names(self) -> tuple[str, ...]:
        """Term names, in config order."""
        return tuple(self._weights)

    @property
    def required_inputs(self) -> frozenset[str]:
        """Every tensor some term needs (e.g. ``{"sr", "hr", "fake_logits"}``)."""
        return frozenset(name for loss in self.losses.values() for name in _inputs(loss)[0])

    @property
    def wanted_inputs(self) -> frozenset[str]:
        """Every tensor some term needs or can use (``required_inputs`` plus e.g. ``sr_ema``)."""
        return frozenset(name for loss in self.losses.values() for names in _inputs(loss) for name in names)

    @property
    def adversarial(self) -> AdversarialLoss | None:
        """The first adversarial term (the trainer takes its ``discriminator_loss``), or None."""
        return next((loss for loss in self.losses.values() if isinstance(loss, AdversarialLoss)), None)

    def current_weights(self) -> dict[str, float]:
        """``{term name: weight}`` as used by the last (or next) ``forward``."""
        return dict(self._weights)

    def term_values(
        self, sr: Tensor | None = None, hr: Tensor | None = None, **inputs: Any
    ) -> dict[str, Tensor]:
        """Each term's unweighted value (with gradient), routed from the keyword tensors."""
        available = {key: value for key, value in {"sr": sr, "hr": hr, **inputs}.items() if value is not None}
        values: dict[str, Tensor] = {}
        for name, loss in self.losses.items():
            required, optional = _inputs(loss)
            missing = [key for key in required if key not in available]
            if missing:
                given = ", ".join(sorted(available)) or "nothing"
                raise ConfigError(
                    f"loss term {name!r} needs {', '.join(missing)}, which this training setup does not "
                    f"provide (given: {given})"
                )
            args = [available[key] for key in required]
            kwargs = {key: available[key] for key in optional if key in available}
            value = loss(*args, **kwargs)
            if not isinstance(value, Tensor) or value.ndim != 0:
                shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(f"loss term {name!r} must return a scalar tensor, got {shape}")
            values[name] = value
        return values

    def combine(self, values: Mapping[str, Tensor]) -> Tensor:
        """The weighted sum of term values."""
        terms = [self._weights[name] * value for name, value in values.items()]
        return sum(terms[1:], start=terms[0])

    def forward(
        self, sr: Tensor | None = None, hr: Tensor | None = None, **inputs: Any
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Return ``(total, {term name: unweighted value})``.

        Keyword tensors not consumed by any term are ignored. The per-term values are detached
        scalar tensors (call ``.item()`` when logging; that synchronizes a GPU, so not every step).

        Raises:
            ConfigError: a term needs a tensor that was not given.
        """
        values = self.term_values(sr, hr, **inputs)
        total = self.combine(values)
        return total, {name: value.detach() for name, value in values.items()}

    def extra_repr(self) -> str:
        return "weights=" + ", ".join(
            f"{name}: {weight:g}" for name, weight in self.current_weights().items()
        )


def _inputs(loss: nn.Module) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(getattr(loss, "inputs", ("sr", "hr"))), tuple(getattr(loss, "optional_inputs", ()))


class AdaptiveMixLoss(MixLoss):
    """A mix whose weights adapt so that each term keeps a target share of the weighted total.

    The rule, applied once per ``forward`` in training mode (``mix.train()``), without gradient,
    before the total is formed. With ``L_i`` the unweighted term values, ``m_i = |L_i|``, ``w_i``
    the current weights, momentum ``b``, target shares ``s_i`` (``sum_i s_i = 1``)::

        first step:  a_i = m_i                       T = sum_j w_j m_j
        later:       a_i = b a_i + (1 - b) m_i       T = b T + (1 - b) sum_j w_j m_j
        then:        w_i = clamp(s_i * T / max(a_i, 1e-12), w_min, w_max)
        total = sum_i w_i L_i                        (with the new weights)

    ``a_i`` is the EMA of a term's magnitude and ``T`` that of the weighted total, so at the fixed
    point ``w_i a_i = s_i T``: each term contributes its target share. The weights only rebalance:
    a common rescaling of all terms leaves them alone, and ``T`` moves by ``T' / T = b + (1 - b)
    sum_i s_i m_i / a_i`` per step, i.e. it follows the share-weighted (about geometric) mean of the
    terms' relative changes, so the total still falls as the terms fall.
    Without explicit ``targets`` the shares are those of the first training step,
    ``s_i = w_i m_i / sum_j w_j m_j`` (a term that is exactly 0 then gets share 0; if all are 0,
    terms with a positive weight share equally), so the initial balance is kept as the terms
    drift apart during training. Steps whose term values are not finite leave the state alone.
    In eval mode the weights are used as they are. The EMAs, targets and weights are buffers, so
    ``state_dict()`` carries them and a resumed run continues exactly.

    Args:
        terms: as for :class:`MixLoss`; their weights are the starting weights.
        targets: ``{term name: share}`` for every term, >= 0, renormalized to sum to 1.
        momentum: EMA momentum ``b`` in ``[0, 1)``.
        w_min, w_max: clamp bounds of the weights.
    """

    def __init__(
        self,
        terms: Sequence[Mapping[str, Any] | MixTerm],
        *,
        targets: Mapping[str, float] | None = None,
        momentum: float = 0.99,
        w_min: float = 0.0,
        w_max: float = 1e4,
    ) -> None:
        super().__init__(terms)
        owner = "adaptive loss mix"
        self.momentum = check_range(owner, "momentum", momentum, low=0.0, high=1.0, high_open=True)
        self.w_min = check_range(owner, "w_min", w_min, low=0.0)
        self.w_max = check_range(owner, "w_max", w_max, low=self.w_min, low_open=True)
        count = len(self.names)
        initial = torch.tensor([self._weights[name] for name in self.names], dtype=torch.float64)
        self.register_buffer("weights", initial.clamp(self.w_min, self.w_max))
        self.register_buffer("ema_terms", torch.zeros(count, dtype=torch.float64))
        self.register_buffer("ema_total", torch.zeros((), dtype=torch.float64))
        self.register_buffer("target_shares", torch.zeros(count, dtype=torch.float64))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))
        self._explicit_targets = targets is not None
        if targets is not None:
            self.target_shares.copy_(self._check_targets(targets, owner))

    def _check_targets(self, targets: Mapping[str, float], owner: str) -> Tensor:
        if not isinstance(targets, Mapping):
            raise ConfigError(f"{owner}: option 'targets' must map term names to shares")
        unknown = [name for name in targets if name not in self._weights]
        if unknown:
            raise ConfigError(
                f"{owner}: option 'targets' names unknown term {unknown[0]!r} "
                f"(terms: {', '.join(self.names)})"
            )
        missing = [name for name in self.names if name not in targets]
        if missing:
            raise ConfigError(f"{owner}: option 'targets' lacks a share for term {missing[0]!r}")
        shares = [check_range(owner, f"targets.{name}", targets[name], low=0.0) for name in self.names]
        if sum(shares) <= 0:
            raise ConfigError(f"{owner}: option 'targets' needs at least one positive share")
        return torch.tensor(shares, dtype=torch.float64) / sum(shares)

    def current_weights(self) -> dict[str, float]:
        return dict(zip(self.names, self.weights.tolist(), strict=True))

    def ema_shares(self) -> dict[str, float]:
        """Each term's share ``w_i a_i / sum_j w_j a_j`` of the EMA weighted total (for logging)."""
        weighted = self.weights * self.ema_terms
        total = float(weighted.sum())
        return {
            name: float(value) / total if total > 0 else 0.0
            for name, value in zip(self.names, weighted, strict=True)
        }

    @torch.no_grad()
    def _update(self, values: Mapping[str, Tensor]) -> None:
        # Written with torch.where instead of Python branches on tensor values: no GPU sync per step.
        magnitudes = torch.stack([values[name].detach().abs().to(self.weights) for name in self.names])
        finite = torch.isfinite(magnitudes).all()
        first = ~self.initialized
        weighted_total = (self.weights * magnitudes).sum()
        b = self.momentum
        ema_terms = torch.where(first, magnitudes, b * self.ema_terms + (1 - b) * magnitudes)
        ema_total = torch.where(first, weighted_total, b * self.ema_total + (1 - b) * weighted_total)
        targets = self.target_shares
        if not self._explicit_targets:
            positive = (self.weights > 0).to(self.weights)
            uniform = positive / positive.sum().clamp(min=1)
            measured = self.weights * magnitudes / weighted_total.clamp(min=1e-300)
            targets = torch.where(first, torch.where(weighted_total > 0, measured, uniform), targets)
        weights = (targets * ema_total / ema_terms.clamp(min=1e-12)).clamp(self.w_min, self.w_max)
        for buffer, new in (
            (self.ema_terms, ema_terms),
            (self.ema_total, ema_total),
            (self.target_shares, targets),
            (self.weights, weights),
        ):
            buffer.copy_(torch.where(finite, new, buffer))
        self.initialized.logical_or_(finite)
        self.steps.add_(finite.long())

    def combine(self, values: Mapping[str, Tensor]) -> Tensor:
        if self.training:
            self._update(values)
        terms = [self.weights[i].to(values[name]) * values[name] for i, name in enumerate(self.names)]
        return sum(terms[1:], start=terms[0])

    def extra_repr(self) -> str:
        return (
            super().extra_repr() + f", momentum={self.momentum:g}, w_min={self.w_min:g}, w_max={self.w_max:g}"
        )


_MIX_OPTIONS = ("terms", "adaptive")


def build_mix(cfg: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> MixLoss:
    """Build a mix from a list of entries, or ``{"terms": [...], "adaptive": true, <adaptive options>}``.

    The adaptive options are :class:`AdaptiveMixLoss`'s ``targets``, ``momentum``, ``w_min`` and
    ``w_max``; they require ``adaptive: true``.

    Raises:
        ConfigError: a bad entry or option, named in the one-line message.
    """
    if not isinstance(cfg, Mapping):
        return MixLoss(cfg)
    if "terms" not in cfg:
        raise ConfigError("loss mix: missing key 'terms' (a list like [{type: l1, weight: 1.0}])")
    adaptive = cfg.get("adaptive", False)
    if not isinstance(adaptive, bool):
        raise ConfigError(f"loss mix: option 'adaptive' must be true/false, got {adaptive!r}")
    options = {key: value for key, value in cfg.items() if key not in _MIX_OPTIONS}
    schema = {key: kind for key, kind in option_types(AdaptiveMixLoss).items() if key != "terms"}
    if not adaptive:
        schema = {}
    options = check_options("loss mix" if adaptive else "loss mix (adaptive: false)", options, schema)
    if adaptive:
        return AdaptiveMixLoss(cfg["terms"], **options)
    return MixLoss(cfg["terms"])
