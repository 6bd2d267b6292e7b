"""Adversarial losses: vanilla (SRGAN), least squares (MNIST design), WGAN-GP and RaGAN (ESRGAN).

Each loss works on raw discriminator outputs ("logits": no sigmoid applied), any shape, and has
``generator_loss(fake_logits, real_logits=None)`` (also its ``forward``, so it can be a term of a
:class:`~gansr.losses.MixLoss`) and ``discriminator_loss(real_logits, fake_logits)``. The trainer
passes discriminator outputs on *detached* fakes to ``discriminator_loss``. ``n_critic`` is the
number of discriminator (critic) updates per generator update the trainer should run; the loss
only carries the configured value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from gansr.errors import ConfigError
from gansr.losses._options import check_range
from gansr.losses.base import Loss

__all__ = [
    "ADVERSARIAL_TYPES",
    "AdversarialLoss",
    "LSGANLoss",
    "RaGANLoss",
    "VanillaGANLoss",
    "WGANGPLoss",
    "gradient_penalty",
]


def _check_n_critic(owner: str, n_critic: int) -> int:
    if isinstance(n_critic, bool) or not isinstance(n_critic, int) or n_critic < 1:
        raise ConfigError(f"{owner}: option 'n_critic' must be an integer >= 1, got {n_critic!r}")
    return n_critic


class AdversarialLoss(Loss):
    """Base class: ``forward`` is :meth:`generator_loss`.

    Args:
        n_critic: discriminator updates per generator update (read by the trainer).
    """

    inputs: ClassVar[tuple[str, ...]] = ("fake_logits",)
    optional_inputs: ClassVar[tuple[str, ...]] = ("real_logits",)
    name: ClassVar[str] = "adversarial"

    def __init__(self, *, n_critic: int = 1) -> None:
        super().__init__()
        self.n_critic = _check_n_critic(f"{self.name} loss", n_critic)

    def generator_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        """Loss the generator minimizes, from D's outputs on generated images."""
        raise NotImplementedError

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """Loss the discriminator minimizes, from its outputs on real and (detached) fake images."""
        raise NotImplementedError

    def forward(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        return self.generator_loss(fake_logits, real_logits)


class VanillaGANLoss(AdversarialLoss):
    """The original non-saturating GAN loss with binary cross-entropy on logits (SRGAN).

    ``D: BCE(real, 1 - s) + BCE(fake, 0)`` (sum of the two means, as SRGAN/BasicSR back-propagate
    both); ``G: BCE(fake, 1)`` (non-saturating, ``-log D(G(z))``). SRGAN's ``1e-3`` factor is the
    term's weight in the mix config, not part of the loss.

    Args:
        label_smoothing: one-sided label smoothing ``s`` in ``[0, 1)`` (Salimans et al. 2016): D's
            target for real images is ``1 - s``; fake targets and G's target stay 0 and 1.
        n_critic: D updates per G update.
    """

    name: ClassVar[str] = "vanilla"

    def __init__(self, *, label_smoothing: float = 0.0, n_critic: int = 1) -> None:
        super().__init__(n_critic=n_critic)
        self.label_smoothing = check_range(
            "vanilla loss", "label_smoothing", label_smoothing, low=0.0, high=1.0, high_open=True
        )

    def generator_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        real_target = torch.full_like(real_logits, 1.0 - self.label_smoothing)
        return F.binary_cross_entropy_with_logits(
            real_logits, real_target
        ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


class LSGANLoss(AdversarialLoss):
    """Least-squares GAN (Mao et al. 2017): mean squared error to target labels.

    ``D: MSE(real, real_target) + MSE(fake, fake_target)``; ``G: MSE(fake, generator_target)``.
    The MNIST design's "MSE losses for G and D" with the default 1/0 targets.

    Args:
        real_target, fake_target: D's targets (``b`` and ``a`` in the paper).
        generator_target: G's target (``c``); defaults to ``real_target``.
        n_critic: D updates per G update.
    """

    name: ClassVar[str] = "lsgan"

    def __init__(
        self,
        *,
        real_target: float = 1.0,
        fake_target: float = 0.0,
        generator_target: float | None = None,
        n_critic: int = 1,
    ) -> None:
        super().__init__(n_critic=n_critic)
        self.real_target = float(real_target)
        self.fake_target = float(fake_target)
        self.generator_target = self.real_target if generator_target is None else float(generator_target)
        if self.real_target == self.fake_target:
            raise ConfigError("lsgan loss: options 'real_target' and 'fake_target' must differ")

    def generator_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        return F.mse_loss(fake_logits, torch.full_like(fake_logits, self.generator_target))

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return F.mse_loss(real_logits, torch.full_like(real_logits, self.real_target)) + F.mse_loss(
            fake_logits, torch.full_like(fake_logits, self.fake_target)
        )


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    *,
    lambda_gp: float = 10.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP gradient penalty (Gulrajani et al. 2017).

    ``lambda_gp * mean_i (||grad_x critic(x_i)||_2 - 1)^2`` at ``x_i = a_i real_i + (1 - a_i) fake_i``
    with ``a_i ~ U(0, 1)`` per sample; the gradient norm is taken over all of a sample's elements.
    The graph is kept (``create_graph=True``) so the penalty's own gradient reaches the critic's
    parameters (double backward). ``real`` and ``fake`` are detached.

    Args:
        critic: the critic (discriminator); its output is summed per sample.
        real, fake: ``(N, ...)`` batches of the same shape.
        lambda_gp: penalty weight (10 in the paper).
        generator: random source for the interpolation weights (on ``real``'s device).
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"gradient_penalty: real and fake must have the same shape, got {tuple(real.shape)} "
            f"and {tuple(fake.shape)}"
        )
    alpha_shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    alpha = torch.rand(alpha_shape, generator=generator, device=real.device, dtype=real.dtype)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = critic(mixed)
    (grads,) = torch.autograd.grad(out.sum(), mixed, create_graph=True)
    norms = grads.flatten(1).norm(2, dim=1)
    return lambda_gp * ((norms - 1) ** 2).mean()


class WGANGPLoss(AdversarialLoss):
    """Wasserstein GAN with gradient penalty (Gulrajani et al. 2017).

    Critic: ``mean(fake) - mean(real) + drift * mean(real^2)``; generator: ``-mean(fake)``. The
    gradient penalty needs the critic itself, so the trainer adds :meth:`gradient_penalty` to the
    critic loss. The drift term (Karras et al. 2018, ``epsilon_drift = 1e-3`` there) keeps the
    critic's outputs from drifting far from 0.

    Args:
        lambda_gp: gradient penalty weight (default 10).
        drift: weight ``epsilon`` of the drift term (default 0: off).
        n_critic: critic updates per generator update (default 5, as in the paper).
    """

    name: ClassVar[str] = "wgan_gp"

    def __init__(self, *, lambda_gp: float = 10.0, drift: float = 0.0, n_critic: int = 5) -> None:
        super().__init__(n_critic=n_critic)
        self.lambda_gp = check_range("wgan_gp loss", "lambda_gp", lambda_gp, low=0.0)
        self.drift = check_range("wgan_gp loss", "drift", drift, low=0.0)

    def generator_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        return -fake_logits.mean()

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        loss = fake_logits.mean() - real_logits.mean()
        if self.drift:
            loss = loss + self.drift * (real_logits**2).mean()
        return loss

    def gradient_penalty(
        self,
        critic: Callable[[Tensor], Tensor],
        real: Tensor,
        fake: Tensor,
        *,
        lambda_gp: float | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """:func:`gradient_penalty` with this loss's ``lambda_gp`` unless one is given."""
        weight = self.lambda_gp if lambda_gp is None else lambda_gp
        return gradient_penalty(critic, real, fake, lambda_gp=weight, generator=generator)


class RaGANLoss(AdversarialLoss):
    """Relativistic average GAN (Jolicoeur-Martineau 2018), as ESRGAN uses it.

    With ``D_ra(a, b) = a - mean(b)`` on logits and BCE-with-logits::

        D: (BCE(D_ra(real, fake), 1) + BCE(D_ra(fake, real), 0)) / 2
        G: (BCE(D_ra(real, fake), 0) + BCE(D_ra(fake, real), 1)) / 2

    The halves follow ESRGAN's code, so its weight (``5e-3``) carries over. G benefits from the
    gradients of both generated and real data; ``real_logits`` is therefore required for G too
    and is detached there (D is not updated in the generator step). ``G(fake, real)`` equals
    ``D(real=fake, fake=real)``: the two losses are mirror images.
    """

    inputs: ClassVar[tuple[str, ...]] = ("fake_logits", "real_logits")
    optional_inputs: ClassVar[tuple[str, ...]] = ()
    name: ClassVar[str] = "ragan"

    @staticmethod
    def _bce(logits: Tensor, target: float) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))

    def generator_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        if real_logits is None:
            raise ValueError("ragan generator_loss needs real_logits (D's outputs on real images)")
        real_logits = real_logits.detach()
        return 0.5 * (
            self._bce(real_logits - fake_logits.mean(), 0.0)
            + self._bce(fake_logits - real_logits.mean(), 1.0)
        )

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return 0.5 * (
            self._bce(real_logits - fake_logits.mean(), 1.0)
            + self._bce(fake_logits - real_logits.mean(), 0.0)
        )


ADVERSARIAL_TYPES: dict[str, type[AdversarialLoss]] = {
    "vanilla": VanillaGANLoss,
    "lsgan": LSGANLoss,
    "wgan_gp": WGANGPLoss,
    "ragan": RaGANLoss,
}
