"""Pixel losses: L1, MSE and Charbonnier, each the mean over all elements."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gansr.degrade import gaussian_blur
from gansr.losses._options import check_range
from gansr.losses.base import Loss, check_same_shape

__all__ = ["CharbonnierLoss", "L1Loss", "MSELoss"]


class L1Loss(Loss):
    """Mean absolute error ``mean(|sr - hr|)``, optionally of the images' low frequencies only.

    With ``lowpass > 0`` both images are first blurred by a Gaussian of that sigma (HR pixels):
    the frequency separation of Fritsche et al. (FSSR, 2019). In a GAN stage it pins the low
    frequencies (colours, shading, edge positions) to the target and leaves the high ones to the
    adversarial term. On gansr's real-photo GAN stage it did not buy PSNR at equal NIQE: there
    the invented texture's own high-frequency error dominates (model card, run C).

    Args:
        lowpass: Gaussian sigma in pixels of the compared images (:func:`gansr.degrade.gaussian_blur`,
            reflect padding); 0 (default) compares them as they are.
    """

    def __init__(self, *, lowpass: float = 0.0) -> None:
        super().__init__()
        self.lowpass = check_range("l1 loss", "lowpass", lowpass, low=0.0)

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        check_same_shape("l1 loss", sr, hr)
        if self.lowpass > 0:
            sr, hr = gaussian_blur(sr, self.lowpass), gaussian_blur(hr, self.lowpass)
        return F.l1_loss(sr, hr)

    def extra_repr(self) -> str:
        return f"lowpass={self.lowpass:g}" if self.lowpass > 0 else ""


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
