"""The gradient loss: match the steps between neighbouring pixels, optionally more at a block grid.

An SR network fed JPEG'd LR images learns from a pixel loss to remove noise and ringing, but the
8x8 block edges of the input are a tiny share of the pixels, so the mean error barely notices when
they survive as a grid in the output (measured: `gansr.metrics.blockiness.grid_ratio` hardly moved
over 3,000 L1 iterations). This loss compares the horizontal and vertical differences of SR and HR
(``mean |d sr - d hr|``), which a leftover block edge violates directly, and can weight the steps
that cross the lines of a ``grid``-pixel grid more (``grid_weight``) than the others
(``base_weight``). In training, the LR of each patch is compressed with its own 8x8 grid
anchored at the patch's corner, so with ``grid = 8 * scale`` those are exactly the output
positions where block edges land. The network itself never sees positions (it is fully
convolutional): it has to recognise block edges by their look, which is what it needs on real
photos.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gansr.errors import ConfigError
from gansr.losses._options import check_range
from gansr.losses.base import Loss, check_same_shape

__all__ = ["GradientLoss"]


class GradientLoss(Loss):
    """``mean(w * |d sr - d hr|)`` over horizontal and vertical neighbour differences.

    Args:
        grid: period in output pixels of the lines whose crossing steps get ``grid_weight``
            (``8 * scale`` for JPEG'd LR: 32 at x4); 0 weights every step the same.
        grid_weight: weight of a step across a grid line, >= 0.
        base_weight: weight of every other step, >= 0. ``base_weight: 0`` leaves texture alone
            (for a GAN stage, whose invented texture never matches HR step for step) and only
            asks the block edges to match.
    """

    def __init__(self, *, grid: int = 0, grid_weight: float = 1.0, base_weight: float = 1.0) -> None:
        super().__init__()
        if isinstance(grid, bool) or not isinstance(grid, int) or grid < 0 or grid == 1:
            raise ConfigError(f"gradient loss: option 'grid' must be 0 or an integer >= 2, got {grid!r}")
        self.grid = grid
        self.grid_weight = check_range("gradient loss", "grid_weight", grid_weight, low=0.0)
        self.base_weight = check_range("gradient loss", "base_weight", base_weight, low=0.0)
        if self.grid_weight == 0.0 and (self.base_weight == 0.0 or not grid):
            raise ConfigError("gradient loss: every step would weigh 0 (raise grid_weight or base_weight)")

    def _weights(self, n: int, like: Tensor) -> Tensor:
        """Weights of the ``n - 1`` steps along an axis of length ``n`` (step j goes into j + 1)."""
        w = torch.full((n - 1,), self.base_weight, dtype=like.dtype, device=like.device)
        if self.grid:
            w[self.grid - 1 :: self.grid] = self.grid_weight
        return w

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        check_same_shape("gradient loss", sr, hr)
        if sr.shape[-1] < 2 or sr.shape[-2] < 2:
            raise ValueError(f"gradient loss needs images of at least 2x2 pixels, got {tuple(sr.shape)}")
        diff = sr - hr  # d(sr) - d(hr) = d(sr - hr): one pass instead of two
        dx = (diff[..., :, 1:] - diff[..., :, :-1]).abs() * self._weights(diff.shape[-1], diff)
        dy = (diff[..., 1:, :] - diff[..., :-1, :]).abs() * self._weights(diff.shape[-2], diff)[:, None]
        return (dx.sum() + dy.sum()) / (dx.numel() + dy.numel())

    def extra_repr(self) -> str:
        return f"grid={self.grid}, grid_weight={self.grid_weight:g}, base_weight={self.base_weight:g}"
