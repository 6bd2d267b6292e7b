"""Feature matching on discriminator features (Salimans et al. 2016).

The generator matches the discriminator's intermediate features of generated images to those
of real images; real features are targets and are detached.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

import torch.nn.functional as F
from torch import Tensor

from gansr.losses._options import check_choice
from gansr.losses.base import Loss, check_same_shape

__all__ = ["FeatureMatchingLoss"]

Features = Tensor | Sequence[Tensor]


class FeatureMatchingLoss(Loss):
    """Mean over layers of ``criterion(fake_l, real_l.detach())``.

    Takes one feature map (e.g. the ``(N, 64, H, W)`` output of the MNIST design's
    ``mnist_feature_d``) or a list of them, one per discriminator layer; each layer's distance is
    the mean over its elements, and the layers are averaged (equal weight per layer, whatever
    their sizes).

    Args:
        criterion: ``"l1"`` (default) or ``"mse"``.
    """

    inputs: ClassVar[tuple[str, ...]] = ("fake_features", "real_features")

    def __init__(self, *, criterion: Literal["l1", "mse"] = "l1") -> None:
        super().__init__()
        self.criterion = check_choice("feature_matching loss", "criterion", criterion, ("l1", "mse"))

    def forward(self, fake_features: Features, real_features: Features) -> Tensor:
        fakes = [fake_features] if isinstance(fake_features, Tensor) else list(fake_features)
        reals = [real_features] if isinstance(real_features, Tensor) else list(real_features)
        if len(fakes) != len(reals) or not fakes:
            raise ValueError(
                f"feature_matching loss: got {len(fakes)} fake and {len(reals)} real feature maps "
                "(need the same number, at least one)"
            )
        distance = F.l1_loss if self.criterion == "l1" else F.mse_loss
        total = fakes[0].new_zeros(())
        for fake, real in zip(fakes, reals, strict=True):
            check_same_shape("feature_matching loss", fake, real, ("fake", "real"))
            total = total + distance(fake, real.detach())
        return total / len(fakes)

    def extra_repr(self) -> str:
        return f"criterion={self.criterion!r}"
