"""SSIM and MS-SSIM losses (``1 - index``), on the metrics' differentiable SSIM core.

They call :func:`gansr.metrics.ssim_index` / :func:`gansr.metrics.ms_ssim_index`, the same code the
SSIM metrics use, so a loss of ``x`` equals ``1 - ssim`` as reported by evaluation (up to the
metric's float64 arithmetic and border crop).
"""

from __future__ import annotations

from torch import Tensor

from gansr.errors import ConfigError
from gansr.losses._options import check_range
from gansr.losses.base import Loss, check_same_shape
from gansr.metrics import MS_SSIM_WEIGHTS, ms_ssim_index, rgb_to_y, ssim_index

__all__ = ["MSSSIMLoss", "SSIMLoss"]


def _check_window(owner: str, window_size: int, sigma: float) -> tuple[int, float]:
    if (
        isinstance(window_size, bool)
        or not isinstance(window_size, int)
        or window_size < 1
        or window_size % 2 == 0
    ):
        raise ConfigError(
            f"{owner}: option 'window_size' must be a positive odd integer, got {window_size!r}"
        )
    return window_size, check_range(owner, "sigma", sigma, low=0.0, low_open=True)


class SSIMLoss(Loss):
    """``1 - mean_n SSIM(sr_n, hr_n)`` on ``(N, C, H, W)`` images in ``[0, 1]``.

    SSIM is Wang et al.'s (Gaussian window, 'valid' filtering, ``C1 = 0.01^2``, ``C2 = 0.03^2`` for
    data range 1); colour images are averaged over channels unless ``y_channel`` is set.

    Args:
        y_channel: compute on the Y channel of MATLAB's ``rgb2ycbcr`` (what SR papers report).
        window_size: odd Gaussian window side; images must be at least this large.
        sigma: the window's standard deviation.
    """

    def __init__(self, *, y_channel: bool = False, window_size: int = 11, sigma: float = 1.5) -> None:
        super().__init__()
        self.y_channel = bool(y_channel)
        self.window_size, self.sigma = _check_window("ssim loss", window_size, sigma)

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        check_same_shape("ssim loss", sr, hr)
        if self.y_channel:
            sr, hr = rgb_to_y(sr), rgb_to_y(hr)
        index = ssim_index(sr, hr, data_range=1.0, window_size=self.window_size, sigma=self.sigma)
        return 1.0 - index.mean()

    def extra_repr(self) -> str:
        return f"y_channel={self.y_channel}, window_size={self.window_size}, sigma={self.sigma:g}"


class MSSSIMLoss(Loss):
    """``1 - mean_n MS-SSIM(sr_n, hr_n)`` (Wang et al. 2003) on ``(N, C, H, W)`` images in ``[0, 1]``.

    Five scales need images of at least 176x176; training patches are often smaller, so ``levels``
    keeps only the first scales (the paper's weights, renormalized to sum to 1, so the index stays
    a weighted geometric mean). ``levels=3`` needs 44x44.

    Args:
        levels: number of scales, 1..5.
        y_channel: compute on the Y channel of MATLAB's ``rgb2ycbcr``.
        window_size, sigma: the Gaussian window at each scale.
    """

    def __init__(
        self, *, levels: int = 5, y_channel: bool = False, window_size: int = 11, sigma: float = 1.5
    ) -> None:
        super().__init__()
        count = len(MS_SSIM_WEIGHTS)
        if isinstance(levels, bool) or not isinstance(levels, int) or not 1 <= levels <= count:
            raise ConfigError(
                f"ms_ssim loss: option 'levels' must be an integer in 1..{count}, got {levels!r}"
            )
        self.levels = levels
        self.y_channel = bool(y_channel)
        self.window_size, self.sigma = _check_window("ms_ssim loss", window_size, sigma)
        chosen = MS_SSIM_WEIGHTS[:levels]
        self.weights = tuple(w / sum(chosen) for w in chosen) if levels < count else MS_SSIM_WEIGHTS

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        check_same_shape("ms_ssim loss", sr, hr)
        if self.y_channel:
            sr, hr = rgb_to_y(sr), rgb_to_y(hr)
        index = ms_ssim_index(
            sr, hr, data_range=1.0, weights=self.weights, window_size=self.window_size, sigma=self.sigma
        )
        return 1.0 - index.mean()

    def extra_repr(self) -> str:
        return f"levels={self.levels}, y_channel={self.y_channel}"
