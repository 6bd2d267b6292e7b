"""KL divergence of a diagonal Gaussian posterior from the standard normal prior (VAE)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from gansr.losses.base import Loss, check_same_shape

__all__ = ["KLLoss", "kl_divergence"]


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, I))``, summed over latent dimensions, averaged over the batch.

    ``-0.5 * mean_n sum_d (1 + logvar - mu^2 - exp(logvar))`` (Kingma and Welling 2014, appendix B):
    the per-sample KL is summed over all non-batch dimensions, so the value does not shrink as
    the latent grows, then averaged over the batch (dimension 0), so it does not grow with the
    batch size.

    Args:
        mu, logvar: ``(N, ...)`` posterior means and log-variances of the same shape.
    """
    check_same_shape("kl loss", mu, logvar, ("mu", "logvar"))
    if mu.ndim == 0:
        raise ValueError("kl loss: mu and logvar need a batch dimension")
    per_sample = (1 + logvar - mu**2 - torch.exp(logvar)).reshape(mu.shape[0], -1).sum(dim=1)
    return -0.5 * per_sample.mean()


class KLLoss(Loss):
    """:func:`kl_divergence` as a module, taking ``(mu, logvar)``."""

    inputs: ClassVar[tuple[str, ...]] = ("mu", "logvar")

    def forward(self, mu: Tensor, logvar: Tensor) -> Tensor:
        return kl_divergence(mu, logvar)
