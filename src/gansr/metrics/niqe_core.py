"""NIQE, the no-reference Natural Image Quality Evaluator (Mittal, Soundararajan and Bovik 2013).

A faithful port of the reference MATLAB release (``computequality.m``, ``computefeature.m``,
``estimateaggdparam.m``): 96x96 blocks without overlap, two scales (the second made with MATLAB's
antialiased bicubic ``imresize(im, 0.5)``), MSCN coefficients from the 7x7 Gaussian window of the
release, 18 AGGD features per block and scale found by the release's table search over
``gam = 0.2:0.001:10``, and the distance to the pristine multivariate Gaussian
``sqrt((mu_p - mu_d) pinv((cov_p + cov_d) / 2) (mu_p - mu_d)')``. Lower is more natural.

The pristine model ships as package data (``niqe_pris_params.npz``, the parameters of the MATLAB
release) and is read once, on first use.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gansr.degrade import imresize
from gansr.metrics._inputs import ImageLike, as_image
from gansr.metrics._inputs import crop_border as _crop
from gansr.metrics.color import rgb_to_y

BLOCK_SIZE = 96
_PARAMS_FILE = "niqe_pris_params.npz"
# Rows of the (vectors x 9801) table search done at once: bounds memory on large images.
_SEARCH_CHUNK = 256
# The four neighbour directions of computefeature.m (circshift offsets, rows then columns).
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


@dataclass(frozen=True)
class PristineModel:
    """The NIQE pristine model: feature mean ``(36,)``, covariance ``(36, 36)``, MSCN window ``(7, 7)``."""

    mu: Tensor
    cov: Tensor
    window: Tensor


@lru_cache(maxsize=1)
def pristine_model() -> PristineModel:
    """Load the packaged pristine parameters (float64; cached, do not modify the tensors)."""
    raw = resources.files("gansr.metrics").joinpath(_PARAMS_FILE).read_bytes()
    with np.load(io.BytesIO(raw)) as data:
        return PristineModel(
            mu=torch.from_numpy(data["mu_pris_param"].astype(np.float64).reshape(-1)),
            cov=torch.from_numpy(data["cov_pris_param"].astype(np.float64)),
            window=torch.from_numpy(data["gaussian_window"].astype(np.float64)),
        )


@dataclass(frozen=True)
class _GammaTables:
    gam: Tensor  # the candidate shape parameters 0.2, 0.201, ..., 10
    r_gam: Tensor  # gamma(2/a)^2 / (gamma(1/a) gamma(3/a)), the ratio the search matches
    beta_factor: Tensor  # sqrt(gamma(1/a) / gamma(3/a)): std -> AGGD scale
    mean_factor: Tensor  # gamma(2/a) / gamma(1/a): the AGGD mean term of computefeature.m


@lru_cache(maxsize=1)
def _gamma_tables() -> _GammaTables:
    # k / 1000 gives the decimal grid of MATLAB's 0.2:0.001:10 without accumulated rounding.
    gam = [k / 1000 for k in range(200, 10001)]
    g1 = [math.gamma(1 / a) for a in gam]
    g2 = [math.gamma(2 / a) for a in gam]
    g3 = [math.gamma(3 / a) for a in gam]
    as_t = lambda values: torch.tensor(values, dtype=torch.float64)  # noqa: E731
    return _GammaTables(
        gam=as_t(gam),
        r_gam=as_t([b * b / (a * c) for a, b, c in zip(g1, g2, g3, strict=True)]),
        beta_factor=as_t([math.sqrt(a / c) for a, c in zip(g1, g3, strict=True)]),
        mean_factor=as_t([b / a for a, b in zip(g1, g2, strict=True)]),
    )


def _aggd_fit(vectors: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``estimateaggdparam.m`` for each row of ``(K, L)``: table indices, left and right std.

    Empty sides give NaN, as MATLAB's mean of an empty set does; a NaN ratio picks the first table
    entry, as MATLAB's ``min`` does for an all-NaN vector.
    """
    negative = vectors < 0
    positive = vectors > 0
    squares = vectors * vectors
    left_std = torch.sqrt((squares * negative).sum(-1) / negative.sum(-1))
    right_std = torch.sqrt((squares * positive).sum(-1) / positive.sum(-1))
    gammahat = left_std / right_std
    rhat = vectors.abs().mean(-1) ** 2 / squares.mean(-1)
    rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2

    r_gam = _gamma_tables().r_gam
    # Exhaustive search like the reference (first minimum wins), in chunks to bound memory.
    index = torch.cat(
        [torch.argmin((r_gam - chunk[:, None]) ** 2, dim=1) for chunk in rhatnorm.split(_SEARCH_CHUNK)]
    )
    index = torch.where(torch.isnan(rhatnorm), torch.zeros_like(index), index)
    return index, left_std, right_std


def _correlate_replicate(img: Tensor, window: Tensor) -> Tensor:
    """MATLAB ``imfilter(img, window, 'replicate')`` on ``(H, W)``: correlation, edges repeated."""
    rows, cols = window.shape
    padded = F.pad(img[None, None], (cols // 2, cols // 2, rows // 2, rows // 2), mode="replicate")[0, 0]
    height, width = img.shape
    out = torch.zeros_like(img)
    # A sum of shifted copies: torch has no fast float64 conv2d on CPU (about 8x slower here).
    for i in range(rows):
        for j in range(cols):
            out.add_(padded[i : i + height, j : j + width], alpha=float(window[i, j]))
    return out


def _mscn(img: Tensor, window: Tensor) -> Tensor:
    """Mean-subtracted contrast-normalized coefficients of ``(H, W)``, as computequality.m."""
    window = window.to(img.dtype)
    mu = _correlate_replicate(img, window)
    sigma = torch.sqrt(torch.abs(_correlate_replicate(img * img, window) - mu * mu))
    return (img - mu) / (sigma + 1)


def _block_features(mscn: Tensor, block: int) -> Tensor:
    """The 18 ``computefeature.m`` features of every ``block`` x ``block`` tile: ``(tiles, 18)``."""
    rows, cols = mscn.shape[0] // block, mscn.shape[1] // block
    tiles = mscn.reshape(rows, block, cols, block).permute(0, 2, 1, 3).reshape(-1, block, block)
    # The block itself, then its products with the four circularly shifted neighbours.
    vectors = [tiles] + [tiles * torch.roll(tiles, shifts=s, dims=(1, 2)) for s in _SHIFTS]
    stacked = torch.stack(vectors, dim=1).flatten(2)  # (tiles, 5, block * block)
    index, left_std, right_std = _aggd_fit(stacked.flatten(0, 1))
    tables = _gamma_tables()
    alpha = tables.gam[index].view(-1, 5)
    beta_l = (left_std * tables.beta_factor[index]).view(-1, 5)
    beta_r = (right_std * tables.beta_factor[index]).view(-1, 5)
    mean = (beta_r - beta_l) * tables.mean_factor[index].view(-1, 5)

    columns = [alpha[:, 0], (beta_l[:, 0] + beta_r[:, 0]) / 2]
    for k in range(1, 5):
        columns += [alpha[:, k], mean[:, k], beta_l[:, k], beta_r[:, k]]
    return torch.stack(columns, dim=1)


def niqe(img: ImageLike, *, crop_border: int = 0) -> float:
    """NIQE of one image, as the reference MATLAB implementation computes it (lower is better).

    RGB images are measured on the Y channel of MATLAB's ``rgb2ycbcr`` in 0..255 units, rounded to
    integer levels as ``rgb2ycbcr`` returns them for 8-bit images (the protocol of the published
    numbers); gray images are scaled to 0..255 and rounded the same way. The image is then cropped
    to whole 96x96 blocks (bottom and right). Everything runs in float64.

    ``Set14/baboon.png`` scores 5.72996 here and 5.72957 in the published MATLAB run: one of its 250
    AGGD shape estimates is a near-tie between two entries of the search table, and float32
    filtering (which reproduces 5.72957) tips it the other way.

    Args:
        img: one image, a ``(C, H, W)`` tensor or ``(H, W, C)`` array in ``[0, 1]``, ``C`` in ``{1, 3}``.
        crop_border: pixels removed at each side first (the SR scale, when comparing with papers).

    Returns:
        The NIQE score; NaN when fewer than two blocks have finite features (e.g. a flat image),
        where the covariance of the image's features is undefined.

    Raises:
        ValueError: unsupported input, or fewer than two 96x96 blocks fit in the cropped image.
    """
    image = as_image(img)
    luma = torch.round(rgb_to_y(image) * 255.0)
    luma = _crop(luma, crop_border)[0]
    height, width = luma.shape
    rows, cols = height // BLOCK_SIZE, width // BLOCK_SIZE
    if rows * cols < 2:
        raise ValueError(
            f"NIQE needs at least two {BLOCK_SIZE}x{BLOCK_SIZE} blocks (e.g. {BLOCK_SIZE}x{2 * BLOCK_SIZE} "
            f"pixels) after cropping, got {height}x{width}"
        )
    luma = luma[: rows * BLOCK_SIZE, : cols * BLOCK_SIZE]

    model = pristine_model()
    full = _block_features(_mscn(luma, model.window), BLOCK_SIZE)
    # The image is not rescaled to [0, 1] first: bicubic resizing is linear (and does not clip).
    half = imresize(luma, 0.5)
    features = torch.cat([full, _block_features(_mscn(half, model.window), BLOCK_SIZE // 2)], dim=1)

    # nanmean / nancov of the release: the mean per feature skips NaNs, the covariance drops rows.
    mu_dist = torch.nanmean(features, dim=0)
    complete = features[~torch.isnan(features).any(dim=1)]
    if complete.shape[0] < 2:
        return math.nan
    cov_dist = torch.cov(complete.T)
    diff = model.mu - mu_dist
    # torch's default pinv tolerance, max(m, n) * eps * largest singular value, is MATLAB's.
    quality = diff @ torch.linalg.pinv((model.cov + cov_dist) / 2) @ diff
    return math.sqrt(float(quality))
