"""Pixel losses: L1, MSE and Charbonnier, each the mean over all elements."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gansr.losses._options import check_range
from gansr.losses.base import Loss, check_same_shape

__all__ = ["CharbonnierLoss", "L1Loss", "MSELoss"]


class L1Loss(Loss):
    """Mean absolute error ``mean(|sr - hr|)``."""

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        check_same_shape("l1 loss", sr, hr)
        return F.l1_loss(sr, hr)


class MSELoss(Loss):
    """Mean squared error ``mean((sr - hr)^2)``."""

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        check_same_shape("mse loss", sr, hr)
        return F.mse_loss(sr, hr)


class CharbonnierLoss(Loss):
    """Charbonnier (smooth L1) loss ``mean(sqrt((sr - hr)^2 + eps^2))``.

    The robust penalty of LapSRN (Lai et al. 2017) and EDVR (Wang et al. 2019) with their
    ``eps = 1e-3``: L1-like for large errors, but differentiable at zero. Note that ``eps`` enters
    squared (some code bases, e.g. BasicSR, add ``eps`` unsquared with ``eps = 1e-12``).

    Args:
        eps: the smoothing constant, > 0 (the loss of a perfect prediction is ``eps``).
    """

    def __init__(self, *, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = check_range("charbonnier loss", "eps", eps, low=0.0, low_open=True)

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        check_same_shape("charbonnier loss", sr, hr)
        return torch.sqrt((sr - hr) ** 2 + self.eps**2).mean()

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}"
