"""The real-world degradation model: blur kernels, filtering, noise, JPEG, random resizes, the
``realworld_x4`` preset, the training loader over it, and ``gansr degrade``.

Every operation is checked by measuring its effect back from the output (kernel moments and
frequency responses, noise standard deviations, JPEG quantization tables, output sizes, how often a
random step runs) rather than by comparing with stored outputs.
"""

from __future__ import annotations

import io
import itertools
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.fft import dctn

from gansr.data.io import read_image
from gansr.degrade import (
    KERNEL_KINDS,
    Pipeline,
    add_poisson_noise,
    anisotropic_kernel,
    filter2d,
    gaussian_blur,
    jpeg_compress,
    sinc_kernel,
    unsharp_mask,
)
from gansr.degrade import pipeline as pipeline_module
from gansr.errors import ConfigError

FAMILIES = ("gaussian", "generalized", "plateau")
pytestmark = pytest.mark.usefixtures("one_thread")


# --- helpers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def baby(set5: Path) -> torch.Tensor:
    """A real RGB photo (Set5 baby, 512x512), float32 in [0, 1]."""
    return read_image(set5 / "baby.png", channels="rgb").pixels


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _moments(k: torch.Tensor) -> torch.Tensor:
    """Covariance ``[[E xx, E xy], [E xy, E yy]]`` of a kernel read as a distribution (x right, y down)."""
    r = torch.arange(k.shape[0], dtype=torch.float64) - k.shape[0] // 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    exx, eyy, exy = (k * xx * xx).sum(), (k * yy * yy).sum(), (k * xx * yy).sum()
    return torch.stack([torch.stack([exx, exy]), torch.stack([exy, eyy])])


def _apply_step(step: dict, x: torch.Tensor, seed: int) -> torch.Tensor:
    """Run one step of a pipeline on its own (also the size-changing ones a Pipeline must end well)."""
    checked = pipeline_module._validate_step(0, step)
    return pipeline_module._apply(x, checked, _gen(seed), (x.shape[-2], x.shape[-1]))


# --- kernels -----------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("size", "sx", "sy", "theta"), [(7, 1.0, 1.0, 0.0), (21, 3.0, 1.2, 0.7), (15, 0.4, 2.5, -2.0)]
)
def test_gaussian_family_kernels_are_normalised_odd_and_point_symmetric(family, size, sx, sy, theta):
    k = anisotropic_kernel(size, sx, sy, theta, family=family, beta=1.7)
    assert k.shape == (size, size) and k.dtype == torch.float64
    assert k.sum().item() == pytest.approx(1.0, abs=1e-12)
    assert (k >= 0).all()
    torch.testing.assert_close(k, k.flip(0, 1), rtol=0, atol=1e-15)  # d(-x) = d(x)
    assert k.argmax().item() == size * size // 2  # the peak is the centre


@pytest.mark.parametrize("size", [7, 13, 21])
@pytest.mark.parametrize("cutoff", [math.pi / 5, math.pi / 3, 2.0, math.pi])
def test_sinc_kernels_are_normalised_odd_and_symmetric(size, cutoff):
    k = sinc_kernel(size, cutoff)
    assert k.shape == (size, size)
    assert k.sum().item() == pytest.approx(1.0, abs=1e-12)
    torch.testing.assert_close(k, k.flip(0, 1), rtol=0, atol=1e-15)
    torch.testing.assert_close(k, k.T, rtol=0, atol=1e-15)
    torch.testing.assert_close(k, k.flip(0), rtol=0, atol=1e-15)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("theta", [0.0, 0.6, -2.3])
def test_isotropic_kernels_are_rotation_invariant(family, theta):
    k = anisotropic_kernel(17, 2.2, 2.2, theta, family=family, beta=1.5)
    torch.testing.assert_close(k, k.T, rtol=0, atol=1e-15)
    torch.testing.assert_close(k, torch.rot90(k, 1), rtol=0, atol=1e-15)
    torch.testing.assert_close(
        k, anisotropic_kernel(17, 2.2, 2.2, 0.0, family=family, beta=1.5), rtol=0, atol=1e-15
    )


@pytest.mark.parametrize(
    ("sx", "sy", "theta"), [(4.0, 1.5, 0.5), (3.0, 1.0, -1.2), (2.5, 1.0, 2.0), (3.5, 2.0, 0.0)]
)
def test_anisotropic_gaussian_has_the_requested_variances_along_the_rotated_axes(sx, sy, theta):
    # A large kernel truncates nothing that matters: the measured variance along the kernel's own
    # axes is sigma^2 and the long axis points along theta.
    k = anisotropic_kernel(61, sx, sy, theta)
    cov = _moments(k)
    axis = torch.tensor([math.cos(theta), math.sin(theta)], dtype=torch.float64)
    normal = torch.tensor([-math.sin(theta), math.cos(theta)], dtype=torch.float64)
    assert (axis @ cov @ axis).item() == pytest.approx(sx**2, rel=1e-3)
    assert (normal @ cov @ normal).item() == pytest.approx(sy**2, rel=1e-3)
    assert (axis @ cov @ normal).item() == pytest.approx(0.0, abs=1e-3)
    values, vectors = torch.linalg.eigh(cov)
    long_axis = vectors[:, 1]  # eigenvalues ascending
    assert values[1].item() == pytest.approx(sx**2, rel=1e-3)
    assert abs((long_axis @ axis).item()) == pytest.approx(1.0, abs=1e-6)  # parallel (sign is free)


def test_generalized_family_with_beta_one_is_the_gaussian():
    for sx, sy, theta in [(2.0, 2.0, 0.0), (3.0, 1.1, 0.9)]:
        gauss = anisotropic_kernel(21, sx, sy, theta)
        torch.testing.assert_close(
            anisotropic_kernel(21, sx, sy, theta, family="generalized", beta=1.0), gauss, rtol=0, atol=1e-15
        )


@pytest.mark.parametrize(("family", "beta"), [("plateau", 2.0), ("generalized", 3.0)])
def test_plateau_and_high_beta_kernels_have_a_flat_top(family, beta):
    sigma = 3.0
    flat = anisotropic_kernel(31, sigma, sigma, family=family, beta=beta)
    gauss = anisotropic_kernel(31, sigma, sigma)
    c = 15

    def drop(k: torch.Tensor, r: int) -> float:  # relative fall from the peak at r pixels
        return 1 - (k[c, c + r] / k[c, c]).item()

    # Near the centre the flat-topped kernel falls far less than the Gaussian, and as r^(2 beta)
    # instead of r^2 (zero curvature at the peak: doubling r multiplies the fall by ~2^(2 beta))...
    assert drop(flat, 1) < 0.3 * drop(gauss, 1)
    assert drop(gauss, 2) / drop(gauss, 1) < 4.5
    assert drop(flat, 2) / drop(flat, 1) > 10
    # ...but it is still a low-pass kernel that does fall off.
    assert drop(flat, 10) > 0.5
    if family == "plateau":  # 1 / (1 + d^beta) has polynomial, i.e. heavier, tails
        assert flat[c, c + 15] / flat[c, c] > 100 * gauss[c, c + 15] / gauss[c, c]


def _radial_response(k: torch.Tensor, n: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """|H| of a kernel zero-padded to n x n, and the radial frequency (radians/pixel) of each bin."""
    response = torch.fft.fft2(k, s=(n, n)).abs()
    f = torch.fft.fftfreq(n, dtype=torch.float64) * 2 * math.pi
    fy, fx = torch.meshgrid(f, f, indexing="ij")
    return response, torch.sqrt(fx**2 + fy**2)


@pytest.mark.parametrize(("size", "cutoff"), [(21, math.pi / 3), (21, math.pi / 2), (21, 2.0)])
def test_sinc_kernel_is_a_low_pass_filter_at_its_cutoff(size, cutoff):
    # Kernels long enough to hold a few side lobes: a truncated ideal low-pass only approximates
    # the ideal response (Gibbs ripple, +-15% here), more so when truncated inside the main lobe.
    k = sinc_kernel(size, cutoff)
    response, omega = _radial_response(k)
    assert response[0, 0].item() == pytest.approx(1.0, abs=1e-12)
    passband = response[omega < 0.5 * cutoff]
    stopband = response[(omega > 1.4 * cutoff) & (omega < math.pi)]
    assert passband.min().item() > 0.85 and passband.max().item() < 1.1
    assert response[(omega > 0.97 * cutoff) & (omega < 1.03 * cutoff)].mean().item() == pytest.approx(
        0.5, abs=0.1
    )
    assert stopband.max().item() < 0.1 and stopband.mean().item() < 0.03
    # The circular ideal low-pass has negative side lobes: a ring near r = 3.83 / cutoff (J1's first zero).
    assert k.min().item() < -0.01 * k.max().item()
    r = torch.arange(size, dtype=torch.float64) - size // 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    radius = torch.sqrt(xx**2 + yy**2)
    ring = (radius > 3.8317 / cutoff) & (radius < 7.0156 / cutoff)  # between J1's first two zeros
    assert (k[ring] < 0).all()


# --- filter2d ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel_size", [3, 5, 9])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_filter2d_equals_conv2d_with_reflect_padding(kernel_size, dtype):
    g = _gen(kernel_size)
    img = torch.rand(2, 3, 23, 17, generator=g, dtype=torch.float64)
    kernel = torch.rand(kernel_size, kernel_size, generator=g, dtype=torch.float64)  # asymmetric
    kernel /= kernel.sum()
    pad = kernel_size // 2
    padded = F.pad(img.reshape(6, 1, 23, 17), (pad, pad, pad, pad), mode="reflect")
    # F.conv2d is a correlation, as filter2d is documented to be: no flip on either side.
    reference = F.conv2d(padded, kernel[None, None]).reshape(img.shape)
    out = filter2d(img.to(dtype), kernel)
    assert out.shape == img.shape and out.dtype == dtype
    tol = 1e-12 if dtype == torch.float64 else 2e-6
    torch.testing.assert_close(out.double(), reference, rtol=0, atol=tol)
    # (C, H, W) input too.
    torch.testing.assert_close(filter2d(img[0].to(dtype), kernel).double(), reference[0], rtol=0, atol=tol)


@pytest.mark.parametrize("shape", [(3, 40, 33), (1, 5, 6)])  # the second is smaller than the kernel
def test_filter2d_keeps_a_constant_image(shape):
    img = torch.full(shape, 0.37)
    for kernel in (anisotropic_kernel(21, 3.0, 1.0, 0.4, family="plateau", beta=1.5), sinc_kernel(21, 1.1)):
        torch.testing.assert_close(filter2d(img, kernel), img, rtol=0, atol=1e-6)


def test_filter2d_with_a_one_pixel_kernel_scales():
    img = torch.rand(3, 8, 8, generator=_gen(0))
    torch.testing.assert_close(filter2d(img, torch.ones(1, 1, dtype=torch.float64)), img)


# --- noise -------------------------------------------------------------------------------------


GRAY = torch.full((3, 256, 256), 0.5)


@pytest.mark.parametrize("sigma", [3.0, 12.0, 25.0])
def test_gaussian_noise_sigma_is_measured_back(sigma):
    pipe = Pipeline([{"type": "noise", "sigma": sigma}])
    out = pipe(GRAY, generator=_gen(1))
    noise = (out - GRAY) * 255
    assert noise.mean().abs().item() < 0.05 * sigma
    assert noise.std().item() == pytest.approx(sigma, rel=0.02)


def test_gray_noise_is_the_same_in_every_channel_and_colour_noise_is_not():
    gray = Pipeline([{"type": "noise", "sigma": 10.0, "gray_prob": 1.0}])(GRAY, generator=_gen(2))
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    assert ((gray[0] - 0.5) * 255).std().item() == pytest.approx(10.0, rel=0.02)
    colour = Pipeline([{"type": "noise", "sigma": 10.0, "gray_prob": 0.0}])(GRAY, generator=_gen(2))
    channels = (colour - 0.5).reshape(3, -1)
    correlation = torch.corrcoef(channels)
    assert (
        correlation[0, 1].abs() < 0.02 and correlation[1, 2].abs() < 0.02 and correlation[0, 2].abs() < 0.02
    )
    # gray_prob is a probability per call.
    small = torch.full((3, 8, 8), 0.5)
    step = Pipeline([{"type": "noise", "sigma": 10.0, "gray_prob": 0.4}])
    grays = sum(torch.equal(o[0], o[1]) for o in (step(small, generator=_gen(s)) for s in range(300)))
    assert 0.3 < grays / 300 < 0.5


@pytest.mark.parametrize(("level", "scale"), [(0.1, 1.0), (0.3, 1.0), (0.6, 1.0), (0.3, 2.0), (0.2, 0.5)])
def test_poisson_noise_std_follows_the_shot_noise_law(level, scale):
    img = torch.full((3, 256, 256), level)
    out = add_poisson_noise(img, scale, generator=_gen(3))
    measured = (out - img).std().item()
    assert measured == pytest.approx(math.sqrt(level / 255) * scale, rel=0.03)
    assert (out - img).mean().abs().item() < 0.03 * measured


def test_poisson_noise_is_larger_on_brighter_pixels_of_one_image():
    ramp = torch.linspace(0.05, 0.9, 8).repeat_interleave(64).view(1, 1, 512).expand(3, 256, 512)
    out = add_poisson_noise(ramp, 1.0, generator=_gen(4))
    stds = [(out - ramp)[..., i * 64 : (i + 1) * 64].std().item() for i in range(8)]
    assert stds == sorted(stds)
    for level, std in zip(torch.linspace(0.05, 0.9, 8).tolist(), stds, strict=True):
        assert std == pytest.approx(math.sqrt(level / 255), rel=0.05)


def test_gray_poisson_noise_is_shared_by_the_channels_and_the_step_draws_it():
    img = torch.full((3, 64, 64), 0.4)
    gray = add_poisson_noise(img, 1.0, gray=True, generator=_gen(5))
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    colour = add_poisson_noise(img, 1.0, gray=False, generator=_gen(5))
    assert not torch.equal(colour[0], colour[1])
    step = Pipeline([{"type": "poisson_noise", "scale": 2.0, "gray_prob": 0.0}])
    assert (step(GRAY, generator=_gen(6)) - 0.5).std().item() == pytest.approx(
        2 * math.sqrt(0.5 / 255), rel=0.03
    )
    assert torch.equal(add_poisson_noise(img, 0.0, generator=_gen(7)), img)


# --- JPEG --------------------------------------------------------------------------------------


def _libjpeg_luma_table(quality: int) -> np.ndarray:
    """The luminance quantization table Pillow writes at ``quality`` (read back from a real file)."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as im:
        return np.array(im.quantization[0], dtype=np.float64).reshape(8, 8)


def _estimate_jpeg_quality(decoded: torch.Tensor) -> int:
    """The quality a gray JPEG was saved at, from its pixels alone.

    Every 8x8 block's DCT coefficients of a decoded JPEG sit on multiples of the quantization table
    (up to the rounding of the pixels). Finer tables (higher qualities) fit too, so the estimate is
    the coarsest table that fits.
    """
    a = decoded[0].double().numpy() * 255 - 128
    h, w = (a.shape[0] // 8) * 8, (a.shape[1] // 8) * 8
    blocks = a[:h, :w].reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)
    coefficients = dctn(blocks, axes=(2, 3), norm="ortho")
    for quality in range(1, 101):
        table = _libjpeg_luma_table(quality)
        residual = coefficients - table * np.round(coefficients / table)
        if np.mean(residual**2) < 0.2:
            return quality
    raise AssertionError("no JPEG table fits")


def test_jpeg_quality_is_measured_back_from_the_output(baby):
    gray = (0.299 * baby[0] + 0.587 * baby[1] + 0.114 * baby[2])[None, 128:384, 128:384]
    for quality in (20, 50, 75, 90):
        out = Pipeline([{"type": "jpeg", "quality": quality}])(gray, generator=_gen(0))
        # Neighbouring qualities can share almost the whole table (49, 50, 51): +-1 is the resolution.
        assert abs(_estimate_jpeg_quality(out) - quality) <= 1


def _blockiness(img: torch.Tensor) -> float:
    """Mean |horizontal step| across the 8x8 block boundaries over the mean step inside blocks."""
    d = (img[..., :, 1:] - img[..., :, :-1]).abs()
    on = d[..., 7::8].mean()
    mask = torch.ones(d.shape[-1], dtype=torch.bool)
    mask[7::8] = False
    return (on / d[..., mask].mean()).item()


def test_jpeg_error_falls_with_quality_and_low_quality_shows_the_block_grid(baby):
    patch = baby[:, 100:356, 100:356]
    errors, grids = [], []
    for quality in (10, 30, 50, 70, 90):
        out = jpeg_compress(patch, quality)
        errors.append((out - patch).abs().mean().item() * 255)
        grids.append(_blockiness(out))
    assert errors == sorted(errors, reverse=True)
    assert grids == sorted(grids, reverse=True)
    # The photo itself has no grid (~0.94); quality 10 makes the boundaries ~4x the inner steps.
    assert _blockiness(patch) < 1.05
    assert grids[0] > 3 * _blockiness(patch)
    assert grids[-1] < 1.25 * _blockiness(patch)


# --- resizing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("directions", "up", "down", "low", "high"),
    [
        ({"down": 1.0}, [1.0, 1.5], [0.5, 0.75], 64, 96),
        ({"up": 1.0}, [1.2, 1.5], [0.15, 1.0], 154, 192),
        ({"keep": 1.0}, [1.0, 1.5], [0.15, 1.0], 128, 128),
        ({"up": 0.2, "down": 0.7, "keep": 0.1}, [1.0, 1.5], [0.15, 1.0], 19, 192),
    ],
)
def test_random_resize_sizes_stay_in_the_requested_ranges(directions, up, down, low, high):
    step = {"type": "random_resize", "directions": directions, "up": up, "down": down}
    x = torch.rand(3, 128, 128, generator=_gen(0))
    sizes = []
    for seed in range(60):
        out = _apply_step(step, x, seed)
        assert out.shape[-2] == out.shape[-1]  # one factor for both sides of a square
        assert 0 <= out.min() and out.max() <= 1
        sizes.append(out.shape[-1])
    assert low <= min(sizes) and max(sizes) <= high
    if low < high:
        assert len(set(sizes)) > 10  # drawn from the range, not one value
    if len(directions) == 3:
        assert min(sizes) < 128 < max(sizes) and 128 in sizes


@pytest.mark.parametrize("size", [128, 96, 192, 132, 100, 36])
def test_resize_to_gives_the_hr_size_over_the_scale(size):
    pipe = Pipeline(
        [
            {"type": "random_resize", "up": [1.0, 1.5], "down": [0.15, 1.0]},
            {"type": "noise", "sigma": 5},
            {"type": "resize_to", "scale": 0.25},
        ]
    )
    assert pipe.scale == 4
    hr = torch.rand(3, size, size + 8, generator=_gen(1))
    for seed in range(12):
        assert pipe(hr, generator=_gen(seed)).shape == (3, size // 4, (size + 8) // 4)


@pytest.mark.parametrize("size", [130, 129, 131, 134])
def test_resize_to_rounds_a_size_that_is_not_a_multiple_up(size):
    # As the resize step does: ceil(size / 4), so no input row is left without an LR pixel.
    out = Pipeline([{"type": "resize_to", "scale": 0.25}])(torch.rand(3, size, size), generator=_gen(0))
    assert out.shape[-2:] == (math.ceil(size / 4),) * 2


@pytest.mark.parametrize(("size", "lr"), [(128, 32), (192, 48), (96, 24)])
def test_realworld_x4_shrinks_exactly_four_times(baby, size, lr):
    pipe = Pipeline.preset("realworld_x4")
    assert pipe.scale == 4
    hr = baby[:, :size, :size].contiguous()
    for seed in range(20):
        out = pipe(hr, generator=_gen(seed))
        assert out.shape == (3, lr, lr)
        assert out.dtype == hr.dtype and 0 <= out.min() and out.max() <= 1
    assert pipe(torch.stack([hr, hr]), generator=_gen(0)).shape == (2, 3, lr, lr)


# --- probabilities, order, reproducibility -------------------------------------------------------

_P_STEPS = [
    {"type": "noise", "sigma": 10},
    {"type": "poisson_noise", "scale": 1.0},
    {"type": "jpeg", "quality": 30},
    {"type": "blur", "sigma": 2.0},
    {"type": "sinc", "cutoff": 1.0},
    {"type": "gaussian_blur", "sigma": 2.0},
]


@pytest.mark.parametrize("step", _P_STEPS, ids=lambda s: s["type"])
def test_step_probability_zero_never_and_one_always_runs(baby, step):
    x = baby[:, 200:264, 200:264].contiguous()
    never = Pipeline([{**step, "p": 0.0}])
    always = Pipeline([{**step, "p": 1.0}])
    for seed in range(15):
        assert torch.equal(never(x, generator=_gen(seed)), x)
        assert not torch.equal(always(x, generator=_gen(seed)), x)


@pytest.mark.parametrize("step", _P_STEPS[:3], ids=lambda s: s["type"])
def test_step_probability_half_runs_about_half_the_time(step):
    x = torch.full((3, 16, 16), 0.5)
    pipe = Pipeline([{**step, "p": 0.5}])
    ran = sum(not torch.equal(pipe(x, generator=_gen(seed)), x) for seed in range(400))
    assert 0.42 < ran / 400 < 0.58  # binomial sd 0.025


def test_random_order_runs_the_groups_in_both_orders(baby):
    hr = baby[:, 64:192, 64:192].contiguous()
    shrink = {"type": "resize_to", "scale": 0.5, "modes": {"bilinear": 1.0}}
    jpeg = {"type": "jpeg", "quality": 20}
    pipe = Pipeline([{"type": "random_order", "groups": [[shrink], [jpeg]]}])
    assert pipe.scale == 2
    first_shrink = Pipeline([shrink, jpeg])(hr, generator=_gen(0))
    first_jpeg = Pipeline([jpeg, shrink])(hr, generator=_gen(0))
    assert not torch.equal(first_shrink, first_jpeg)
    seen = []
    for seed in range(20):
        out = pipe(hr, generator=_gen(seed))
        assert torch.equal(out, first_shrink) or torch.equal(out, first_jpeg)
        seen.append(torch.equal(out, first_shrink))
    assert 3 <= sum(seen) <= 17


def test_realworld_x4_is_reproducible_per_seed(baby):
    pipe = Pipeline.preset("realworld_x4")
    hr = baby[:, 256:384, 256:384].contiguous()
    outputs = [pipe(hr, generator=_gen(seed)) for seed in range(8)]
    for seed, out in enumerate(outputs):
        assert torch.equal(pipe(hr, generator=_gen(seed)), out)
    for a, b in itertools.combinations(outputs, 2):
        assert not torch.equal(a, b)
    # A fresh build of the same config draws the same stream.
    assert torch.equal(Pipeline(pipe.config)(hr, generator=_gen(3)), outputs[3])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_realworld_x4_runs_on_cuda_with_a_cuda_generator(baby):
    # Every draw of the pipeline (step probabilities, kernel kinds, group order) uses the
    # generator's device, so a CUDA generator works for images on the GPU.
    hr = baby[:, :128, :128].cuda()
    pipe = Pipeline.preset("realworld_x4")
    outputs = [pipe(hr, generator=torch.Generator("cuda").manual_seed(seed)) for seed in (0, 0, 1)]
    assert outputs[0].shape == (3, 32, 32) and outputs[0].is_cuda
    assert torch.equal(outputs[0], outputs[1]) and not torch.equal(outputs[0], outputs[2])


def test_training_loader_batches_do_not_depend_on_the_worker_count(shared_data, tmp_path):
    from gansr.data.loader import make_loader
    from gansr.train.data import BatchPlan, FolderSource, TrainSamples

    bsds = sorted((shared_data / "bsds500" / "train").glob("*.jpg"))[:3]
    if len(bsds) < 3:
        pytest.skip("BSDS500 train images not found")
    for path in bsds:  # small crops keep the decoding quick
        with Image.open(path) as im:
            im.convert("RGB").crop((0, 0, 120, 100)).save(tmp_path / f"{path.stem}.png")
    source = FolderSource(tmp_path, channels="rgb", min_size=64)
    samples = TrainSamples(
        source, scale=4, patch_size=64, pipeline=Pipeline.preset("realworld_x4"), augment=True, seed=7
    )

    def batches(workers: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        plan = BatchPlan(len(source), 2, seed=7)
        loader = iter(make_loader(samples, batches=plan, num_workers=workers, seed=7, pin_memory=False))
        out = [next(loader) for _ in range(3)]
        del loader  # stops the workers
        return out

    serial, parallel = batches(0), batches(2)
    for (lr0, hr0), (lr2, hr2) in zip(serial, parallel, strict=True):
        assert lr0.shape == (2, 3, 16, 16) and hr0.shape == (2, 3, 64, 64)
        assert torch.equal(lr0, lr2) and torch.equal(hr0, hr2)
    assert not torch.equal(serial[0][0], serial[1][0])


# --- validation --------------------------------------------------------------------------------

_RESIZE = {"type": "resize", "scale": 0.5}
_RESIZE_TO = {"type": "resize_to", "scale": 0.5}
_JPEG = {"type": "jpeg", "quality": 50}
_NOISE = {"type": "noise", "sigma": 1}


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([{"type": "noise", "sigma": 5, "sigmaa": 1}], ["step 0 (noise)", "unknown key 'sigmaa'"]),
        ([{"type": "noise", "sigma": 5}, {"type": "blur", "size": 7}], ["step 1 (blur)", "'size'"]),
        ([{"type": "blur", "kinds": {"iso": -1.0}}], ["step 0 (blur)", "'kinds'"]),
        ([{"type": "blur", "kinds": {"gauss": 1.0}}], ["step 0 (blur)", "'kinds'"]),
        ([{"type": "blur", "kinds": {"iso": 0, "aniso": 0}}], ["step 0 (blur)", "'kinds'"]),
        ([{"type": "blur", "kinds": [0.5, 0.5]}], ["step 0 (blur)", "'kinds'"]),
        ([{"type": "random_resize", "directions": {"sideways": 1}}, {"type": "resize_to", "scale": 0.25}],
         ["step 0 (random_resize)", "'directions'"]),
        ([{"type": "resize_to", "scale": 0.25, "modes": {"lanczos": 1}}], ["step 0 (resize_to)", "'modes'"]),
        ([{"type": "noise", "sigma": 5, "p": 1.5}], ["step 0 (noise)", "'p'"]),
        ([{"type": "sinc", "cutoff": 4.0}], ["step 0 (sinc)", "'cutoff'"]),
        ([{"type": "blur", "kernel_size": [6, 21]}], ["step 0 (blur)", "'kernel_size'", "odd"]),
        ([{"type": "random_resize"}], ["random_resize", "resize_to"]),
        ([{"type": "random_resize"}, {"type": "noise", "sigma": 2}], ["random_resize", "resize_to"]),
        ([{"type": "resize_to", "scale": 0.25}, {"type": "random_resize"}], ["random_resize", "resize_to"]),
        ([{"type": "random_order", "groups": [[_RESIZE], [_JPEG]]}],
         ["step 0 (random_order)", "group 0 step 0", "resize cannot run in a random order"]),
        ([_NOISE, {"type": "random_order", "groups": [[_JPEG], [{"type": "random_resize"}]]}],
         ["step 1 (random_order)", "group 1 step 0", "random_resize"]),
        ([{"type": "random_order", "groups": [[_RESIZE_TO], [_JPEG, _RESIZE_TO]]}],
         ["step 0 (random_order)", "at most one resize_to"]),
        ([{"type": "random_order", "groups": []}], ["step 0 (random_order)", "'groups'"]),
    ],
)  # fmt: skip
def test_invalid_pipelines_raise_one_line_config_errors_naming_the_step(steps, expected):
    with pytest.raises(ConfigError) as info:
        Pipeline(steps)
    message = str(info.value)
    assert "\n" not in message
    for part in expected:
        assert part in message, message


def test_the_new_defaults_are_valid_and_every_kernel_kind_is_drawn(monkeypatch):
    pipe = Pipeline([{"type": "blur", "sinc_prob": 0.0}])
    kinds = set()
    original = pipeline_module.kernels.anisotropic_kernel

    def spy(size, sx, sy, theta=0.0, *, family="gaussian", beta=1.0):
        kinds.add((family, "iso" if sx == sy else "aniso"))
        assert size % 2 == 1 and 7 <= size <= 21 and 0.2 <= min(sx, sy) and max(sx, sy) <= 3.0
        return original(size, sx, sy, theta, family=family, beta=beta)

    x = torch.rand(3, 24, 24, generator=_gen(0))
    monkeypatch.setattr(pipeline_module.kernels, "anisotropic_kernel", spy)
    for seed in range(400):
        pipe(x, generator=_gen(seed))
    assert len(kinds) == len(KERNEL_KINDS)


# --- unsharp mask ------------------------------------------------------------------------------


def test_unsharp_mask_raises_edge_contrast_of_a_real_image(baby):
    img = baby[:, 128:384, 128:384].contiguous()
    sharp = unsharp_mask(img)
    residual = img - gaussian_blur(img, 8.0)
    edges = (residual.abs() * 255 > 30).any(0)  # strong detail: the mask is on around here
    assert edges.float().mean() > 0.01

    def gradient(x: torch.Tensor) -> torch.Tensor:
        gx = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1))
        gy = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
        return torch.sqrt(gx**2 + gy**2).mean(0)

    assert gradient(sharp)[edges].mean() > 1.2 * gradient(img)[edges].mean()
    assert (sharp - gaussian_blur(sharp, 8.0))[:, edges].abs().mean() > 1.2 * residual[:, edges].abs().mean()
    assert 0 <= sharp.min() and sharp.max() <= 1


def test_unsharp_mask_leaves_flat_regions_untouched(baby):
    # Weak noise on a flat background stays below the threshold (10/255) everywhere: no change at all.
    flat = (torch.full((3, 128, 128), 0.45) + torch.randn(3, 128, 128, generator=_gen(0)) * 1.0 / 255).clamp(
        0, 1
    )
    assert torch.equal(unsharp_mask(flat), flat)
    # A real patch in a corner of a flat canvas: far from it (> 2 x 24 px, the blurs' reach) nothing changes.
    canvas = torch.full((3, 256, 256), 0.45)
    canvas[:, :96, :96] = baby[:, 200:296, 200:296]
    sharp = unsharp_mask(canvas)
    assert not torch.equal(sharp[:, :96, :96], canvas[:, :96, :96])
    far = torch.ones(256, 256, dtype=torch.bool)
    far[: 96 + 48, : 96 + 48] = False
    assert torch.equal(sharp[:, far], canvas[:, far])


# --- throughput --------------------------------------------------------------------------------


def test_realworld_x4_throughput_on_128px_patches(baby, one_thread):
    pipe = Pipeline.preset("realworld_x4")
    patches = [baby[:, y : y + 128, x : x + 128].contiguous() for y in (0, 192, 384) for x in (0, 192, 384)]
    pipe(patches[0], generator=_gen(0))  # warm-up
    n = 90
    start = time.perf_counter()
    for i in range(n):
        pipe(patches[i % len(patches)], generator=_gen(i))
    rate = n / (time.perf_counter() - start)
    print(f"realworld_x4: {rate:.0f} degraded 128px patches/s on one thread")
    assert rate > 20


# --- gansr degrade -----------------------------------------------------------------------------


def _cells(grid: np.ndarray, rows: int, cols: int, patch: int, sep: int = 2) -> list[list[np.ndarray]]:
    step = patch + sep
    return [
        [grid[r * step : r * step + patch, c * step : c * step + patch] for c in range(cols)]
        for r in range(rows)
    ]


def test_cli_degrade_writes_a_grid_of_distinct_samples(tmp_path, capsys):
    from importlib.resources import files

    from gansr.cli import main

    image = Path(str(files("gansr") / "samples" / "Set5" / "butterfly.png"))
    out = tmp_path / "sub" / "grid.png"
    args = [
        "degrade",
        "realworld_x4",
        str(image),
        "-o",
        str(out),
        "--samples",
        "4",
        "--patch",
        "64",
        "--seed",
        "3",
    ]
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == str(out)
    grid = np.asarray(Image.open(out).convert("RGB"))
    assert grid.shape == (64, 5 * 64 + 4 * 2, 3)
    cells = _cells(grid, 1, 5, 64)[0]
    assert (grid[:, 64:66] == 255).all()  # the separator
    # The HR cell is a crop of the image.
    hr = np.asarray(Image.open(image).convert("RGB"))
    assert any(
        np.array_equal(hr[y : y + 64, x : x + 64], cells[0])
        for y in range(hr.shape[0] - 63)
        for x in range(hr.shape[1] - 63)
        if hr[y, x].tolist() == cells[0][0, 0].tolist()
    )
    # Every LR is nearest-enlarged 4x (constant 4x4 blocks) and the samples differ from each other.
    for cell in cells[1:]:
        blocks = cell.reshape(16, 4, 16, 4, 3)
        assert (blocks == blocks[:, :1, :, :1]).all()
    for a, b in itertools.combinations(cells[1:], 2):
        assert np.abs(a.astype(int) - b.astype(int)).mean() > 1.0
    # Seeded: the same command writes the same grid.
    again = tmp_path / "again.png"
    assert main([*args[:3], "-o", str(again), *args[5:]]) == 0
    assert np.array_equal(np.asarray(Image.open(again).convert("RGB")), grid)


def test_cli_degrade_reads_pipelines_from_yaml_and_training_configs(tmp_path, capsys):
    from gansr.cli import main

    steps = tmp_path / "steps.yaml"
    steps.write_text(
        "- {type: gaussian_blur, sigma: 1.0}\n- {type: resize, scale: 0.5}\n- {type: noise, sigma: 5}\n"
    )
    config = tmp_path / "train.yaml"
    config.write_text(
        "data:\n  scale: 2\n  degradation:\n"
        "    - {type: resize, scale: 0.5}\n    - {type: jpeg, quality: 20}\n"
    )
    for spec in (steps, config, "realsrnet_x4"):
        out = tmp_path / f"{Path(str(spec)).stem}.png"
        options = ["--samples", "2", "--patch", "32", "--max-images", "3"]
        assert main(["degrade", str(spec), "-o", str(out), *options]) == 0
        assert Image.open(out).size == (3 * 32 + 2 * 2, 3 * 32 + 2 * 2)
    capsys.readouterr()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nope"], "unknown pipeline 'nope'"),
        (["bicubic_x3", "--patch", "64"], "not a multiple of the pipeline's scale 3"),
        (["bicubic_x4", "/no/such/dir"], "/no/such/dir: no such file or folder"),
        (["bicubic_x4", "--patch", "1024"], "is smaller than --patch 1024"),
        (["bicubic_x4", "-o", "grid.txt"], "grid.txt: not an image file name"),
    ],
)
def test_cli_degrade_errors_are_one_line(tmp_path, capsys, argv, message):
    from gansr.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("- {type: random_resize}\n")
    # -o first: a later -o in argv replaces it.
    assert main(["degrade", "-o", str(tmp_path / "g.png"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert main(["degrade", str(bad), "-o", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.yaml: " in err and "random_resize" in err
    assert not (tmp_path / "g.png").exists()


@pytest.mark.parametrize(("family", "beta"), [("generalized", 0.5), ("generalized", 2.5), ("plateau", 1.5)])
def test_shaped_kernels_follow_the_papers_formulas(family, beta):
    # Real-ESRGAN eq. (2)-(3): generalized exp(-0.5 * d**beta), plateau 1 / (1 + d**beta), with
    # d = x^T Sigma^-1 x; along the x axis of an unrotated kernel d = (x / sigma_x)^2.
    k = anisotropic_kernel(21, 2.0, 1.0, 0.0, family=family, beta=beta)
    centre = k[10, 10].item()
    for x in (1, 3, 6):
        d = (x / 2.0) ** 2
        expected = math.exp(-0.5 * d**beta) if family == "generalized" else 1 / (1 + d**beta)
        assert k[10, 10 + x].item() / centre == pytest.approx(expected, rel=1e-12)
