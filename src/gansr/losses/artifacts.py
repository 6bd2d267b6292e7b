"""The locally discriminative learning (LDL) loss: penalise GAN artifacts, not GAN texture.

Liang et al., "Details or Artifacts: A Locally Discriminative Learning Approach to Realistic Image
Super-Resolution" (CVPR 2022). Artifacts (the "crazy paving" a GAN makes of noise and JPEG blocks)
sit where the residual ``|hr - sr|`` is large *and* irregular, while faithful texture leaves a
small or smooth residual. The paper's artifact map per pixel is

    M = patch_weight * local_var(residual, k x k)        with patch_weight = var(residual) ** (1/5)

and it is zeroed wherever the generator does better than its own exponential moving average
(the EMA model is the stable reference: pixels the current G improves on are not artifacts).
The loss is ``mean(|M * sr - M * hr|)``; ``M`` is a constant for the gradient.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from gansr.errors import ConfigError
from gansr.losses.base import Loss, check_same_shape

__all__ = ["LDLLoss", "artifact_map"]


def artifact_map(sr: Tensor, hr: Tensor, sr_ema: Tensor | None = None, *, kernel_size: int = 7) -> Tensor:
    """The LDL artifact weight ``(N, 1, H, W)`` of ``sr`` against ``hr`` (see the module docstring)."""
    residual = (hr - sr).abs().sum(1, keepdim=True)
    patch = residual.var(dim=(1, 2, 3), keepdim=True) ** 0.2
    pad = kernel_size // 2
    padded = F.pad(residual, (pad, pad, pad, pad), mode="reflect")
    # Local variance from box means of r and r^2 (unbiased, as the paper's windowed variance).
    n = kernel_size * kernel_size
    mean = F.avg_pool2d(padded, kernel_size, stride=1)
    mean_sq = F.avg_pool2d(padded * padded, kernel_size, stride=1)
    local = ((mean_sq - mean * mean) * (n / (n - 1))).clamp_min(0.0)
    weight = patch * local
    if sr_ema is not None:
        residual_ema = (hr - sr_ema).abs().sum(1, keepdim=True)
        weight = torch.where(residual < residual_ema, torch.zeros_like(weight), weight)
    return weight


class LDLLoss(Loss):
    """``mean(|M * (sr - hr)|)`` with ``M`` the LDL artifact map (constant for the gradient).

    The training loop passes the EMA generator's output as ``sr_ema`` when a mix has this term;
    without it the map is not gated (every irregular residual counts).

    Args:
        kernel_size: odd window of the local variance (7 in the paper).
    """

    inputs: ClassVar[tuple[str, ...]] = ("sr", "hr")
    optional_inputs: ClassVar[tuple[str, ...]] = ("sr_ema",)

    def __init__(self, *, kernel_size: int = 7) -> None:
        super().__init__()
        if (
            isinstance(kernel_size, bool)
            or not isinstance(kernel_size, int)
            or kernel_size < 3
            or kernel_size % 2 == 0
        ):
            raise ConfigError(
                f"ldl loss: option 'kernel_size' must be an odd integer >= 3, got {kernel_size!r}"
            )
        self.kernel_size = kernel_size

    def forward(self, sr: Tensor, hr: Tensor, sr_ema: Tensor | None = None) -> Tensor:
        check_same_shape("ldl loss", sr, hr)
        with torch.no_grad():
            weight = artifact_map(sr.detach(), hr, sr_ema, kernel_size=self.kernel_size)
        return F.l1_loss(weight * sr, weight * hr)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"
