"""Tests of gansr.degrade: MATLAB imresize, the single degradations and YAML pipelines.

Reference values come from hand derivations of MATLAB's algorithm, independent libraries
(SciPy, scikit-image, Pillow) and the published Set5 bicubic x4 PSNR.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy import ndimage
from skimage.transform import downscale_local_mean

from gansr.degrade import (
    PRESETS,
    Pipeline,
    add_gaussian_noise,
    area_downsample,
    bicubic_degrade,
    blur_downsample,
    gaussian_blur,
    gaussian_kernel,
    imresize,
    imresize_weights,
    jpeg_compress,
    mnist_degrade,
    quantize,
)
from gansr.degrade import resize as resize_module
from gansr.errors import ConfigError, DataError

# --- helpers (kept local: gansr.data / gansr.metrics are separate parts) -----------------------


def _read_rgb(path: Path, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    with Image.open(path) as image:
        array = np.array(image.convert("RGB"))
    return torch.from_numpy(array).permute(2, 0, 1).to(dtype) / 255


def _to_uint8_levels(x: torch.Tensor) -> torch.Tensor:
    return (x * 255).round().clamp(0, 255) / 255


def _y_channel(rgb: torch.Tensor) -> torch.Tensor:
    """BT.601 studio-range Y (MATLAB rgb2ycbcr) in 0..255 units."""
    return 16 + 65.481 * rgb[0] + 128.553 * rgb[1] + 24.966 * rgb[2]


def _psnr_255(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return 10 * math.log10(255**2 / mse)


@pytest.fixture(scope="module")
def butterfly(set5: Path) -> torch.Tensor:
    return _read_rgb(set5 / "butterfly.png", torch.float32)


# --- imresize: hand-derived weights -------------------------------------------------------------
#
# Shrinking 4 -> 2 (scale 0.5, antialiased): the kernel is h(x) = 0.5 * cubic(0.5 x), width 8.
# Output 1 sits at u = 1/0.5 + 0.5 * (1 - 2) = 1.5; taps at 1-based positions -3..6 are at
# distances 4.5 .. -4.5, so h = 0.5 * cubic(2.25, 1.75, 1.25, 0.75, 0.25, ...) =
# 0.5 * (0, -0.0234375, -0.0703125, 0.2265625, 0.8671875, 0.8671875, 0.2265625, -0.0703125,
# -0.0234375, 0) (sum 1). Positions -3..0 mirror to 4, 3, 2, 1 and 5, 6 to 4, 3 (edge repeated):
#   w(1) = (0.2265625 + 0.8671875) / 2 = 0.546875      w(2) = (0.8671875 - 0.0703125) / 2 = 0.3984375
#   w(3) = (0.2265625 - 0.0234375) / 2 = 0.1015625     w(4) = (-0.0703125 - 0.0234375) / 2 = -0.046875
SHRINK_4_TO_2 = np.array(
    [
        [0.546875, 0.3984375, 0.1015625, -0.046875],
        [-0.046875, 0.1015625, 0.3984375, 0.546875],
    ]
)


def test_shrink_weights_match_hand_derivation() -> None:
    # Resizing the identity along W returns the transposed weight matrix.
    out = imresize(torch.eye(4, dtype=torch.float64), size=(4, 2))
    np.testing.assert_allclose(out.numpy().T, SHRINK_4_TO_2, rtol=0, atol=1e-15)
    ramp = imresize(torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64), size=(1, 2))
    # 0.546875 + 2 * 0.3984375 + 3 * 0.1015625 - 4 * 0.046875; the mirrored border bends the ramp.
    np.testing.assert_allclose(ramp.numpy(), [[1.4609375, 3.5390625]], rtol=0, atol=1e-15)


def test_shrink_of_2d_matrix_is_separable_hand_result() -> None:
    m = np.arange(16, dtype=np.float64).reshape(4, 4) ** 2
    expected = SHRINK_4_TO_2 @ m @ SHRINK_4_TO_2.T
    np.testing.assert_allclose(imresize(m, 0.5), expected, rtol=0, atol=1e-12)
    impulse = np.zeros((4, 4))
    impulse[1, 2] = 1.0
    np.testing.assert_allclose(
        imresize(impulse, 0.5), np.outer(SHRINK_4_TO_2[:, 1], SHRINK_4_TO_2[:, 2]), atol=1e-15
    )


def test_enlarge_weights_match_hand_derivation() -> None:
    # Scale 2, plain kernel (width 4). Output 1: u = 0.5 + 0.25 = 0.75, taps -2..3 at distances
    # 2.75, 1.75, 0.75, -0.25, -1.25, -2.25 -> cubic = 0, -0.0234375, 0.2265625, 0.8671875,
    # -0.0703125, 0; positions -1, 0 mirror to 2, 1: w(1) = 1.09375, w(2) = -0.09375.
    # Output 4: u = 2.25, taps 0..5 -> w(1..4) = -0.0703125, 0.8671875, 0.2265625, -0.0234375.
    weights = imresize(torch.eye(4, dtype=torch.float64), size=(4, 8)).numpy().T
    np.testing.assert_allclose(weights[0], [1.09375, -0.09375, 0, 0], atol=1e-15)
    np.testing.assert_allclose(weights[3], [-0.0703125, 0.8671875, 0.2265625, -0.0234375], atol=1e-15)
    np.testing.assert_allclose(weights[4], weights[3][::-1], atol=1e-15)  # mirror symmetry
    step = imresize(torch.tensor([[0.0, 0.0, 1.0, 1.0]], dtype=torch.float64), 2.0)
    # Output 4 = 0.2265625 - 0.0234375 (the overshoot of bicubic shows at outputs 3 and 6).
    assert step.shape == (2, 8)
    assert step[0, 3].item() == pytest.approx(0.203125, abs=1e-15)
    assert step[0, 2].item() == pytest.approx(-0.0703125, abs=1e-15)


def test_shrink_without_antialias_uses_plain_kernel() -> None:
    # Scale 0.5 without antialiasing: output 2 (1-based) sits at u = 2 / 0.5 - 0.5 = 3.5, between
    # inputs 3 and 4 at distance 0.5: cubic(0.5) = 0.5625, cubic(1.5) = -0.0625 on inputs 2 and 5.
    weights = imresize(torch.eye(8, dtype=torch.float64), size=(8, 4), antialias=False).numpy().T
    np.testing.assert_allclose(weights[1], [0, -0.0625, 0.5625, 0.5625, -0.0625, 0, 0, 0], atol=1e-15)


@pytest.mark.parametrize(
    ("n_in", "n_out", "scale"), [(17, 6, 1 / 3), (23, 17, 0.7), (9, 23, 2.5), (10, 40, 4)]
)
def test_weights_are_normalised_and_in_range(n_in: int, n_out: int, scale: float) -> None:
    weights, indices = imresize_weights(n_in, n_out, scale)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-12)
    assert indices.min() >= 0 and indices.max() < n_in
    assert np.all(np.any(weights != 0, axis=0))  # all-zero tap columns trimmed


@settings(max_examples=60, deadline=None)
@given(n_in=st.integers(1, 60), scale=st.floats(0.05, 6.0), antialias=st.booleans())
def test_weights_property_any_length_and_factor(n_in: int, scale: float, antialias: bool) -> None:
    n_out = math.ceil(scale * n_in)
    weights, indices = imresize_weights(n_in, n_out, scale, antialias)
    assert weights.shape == indices.shape and weights.shape[0] == n_out
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-9)
    assert indices.min() >= 0 and indices.max() < n_in


# --- imresize: behaviour ------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [0.25, 1 / 3, 0.7, 1.5, 2.0, 4.0])
def test_constant_image_stays_constant(scale: float) -> None:
    x = torch.full((2, 17, 23), 0.37, dtype=torch.float64)
    out = imresize(x, scale)
    assert out.shape == (2, math.ceil(17 * scale), math.ceil(23 * scale))
    torch.testing.assert_close(out, torch.full_like(out, 0.37), rtol=0, atol=1e-12)


@pytest.mark.parametrize("scale", [2.0, 3.0, 2.5, 4.0])
def test_upscaling_reproduces_linear_ramp_away_from_borders(scale: float) -> None:
    n = 20
    ramp = 0.1 + 0.03 * torch.arange(1, n + 1, dtype=torch.float64)  # value at 1-based position i
    out = imresize(ramp.repeat(3, 1), (1.0, scale))[1]
    x = torch.arange(1, out.numel() + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # where MATLAB samples the input for output x
    interior = (u >= 3) & (u <= n - 2)
    assert interior.sum() > out.numel() // 2
    torch.testing.assert_close(out[interior], 0.1 + 0.03 * u[interior], rtol=0, atol=1e-12)
    assert not torch.allclose(out[~interior], 0.1 + 0.03 * u[~interior], atol=1e-6)  # borders bend


def test_scale_one_is_identity_and_size_equals_scale() -> None:
    x = torch.rand(3, 12, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    same = imresize(x, 1.0)
    assert same is not x and torch.equal(same, x)
    torch.testing.assert_close(imresize(x, 0.5), imresize(x, size=(6, 8)), rtol=0, atol=0)
    assert imresize(x, size=(5, 7)).shape == (3, 5, 7)
    assert imresize(x, (0.5, 2.0)).shape == (3, 6, 32)


def test_float32_matches_float64_and_numpy_roundtrip(butterfly: torch.Tensor) -> None:
    out32 = imresize(butterfly, 0.25)
    out64 = imresize(butterfly.double(), 0.25)
    assert out32.dtype == torch.float32 and out32.shape == (3, 64, 64)
    torch.testing.assert_close(out32.double(), out64, rtol=0, atol=2e-6)
    as_numpy = imresize(butterfly.double().numpy(), 0.25)
    assert isinstance(as_numpy, np.ndarray)
    np.testing.assert_array_equal(as_numpy, out64.numpy())


def test_gather_path_matches_dense_path(monkeypatch: pytest.MonkeyPatch, butterfly: torch.Tensor) -> None:
    x = butterfly[:, :61, :83].double()
    dense = [imresize(x, s) for s in (0.25, 0.7, 3.0)]
    monkeypatch.setattr(resize_module, "_DENSE_MAX_RATIO", 0)
    gathered = [imresize(x, s) for s in (0.25, 0.7, 3.0)]
    for a, b in zip(dense, gathered, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dense", [True, False])
def test_imresize_is_differentiable(monkeypatch: pytest.MonkeyPatch, dense: bool) -> None:
    if not dense:
        monkeypatch.setattr(resize_module, "_DENSE_MAX_RATIO", 0)
    x = torch.rand(2, 9, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert torch.autograd.gradcheck(lambda t: imresize(t, 0.5), (x.requires_grad_(),))


def test_imresize_rejects_bad_arguments() -> None:
    x = torch.rand(4, 4)
    with pytest.raises(TypeError, match="floating-point"):
        imresize(torch.zeros(4, 4, dtype=torch.uint8), 0.5)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(x, 0.5, size=(2, 2))
    with pytest.raises(ValueError, match="exactly one"):
        imresize(x)
    with pytest.raises(ValueError, match="positive"):
        imresize(x, -1.0)


def test_set5_bicubic_x4_psnr_matches_published_matlab_number(set5: Path) -> None:
    """The SR literature's protocol; published bicubic x4 on Set5 is 28.42 dB."""
    scores = []
    for path in sorted(set5.glob("*.png")):
        hr = _read_rgb(path)
        hr = hr[:, : hr.shape[1] // 4 * 4, : hr.shape[2] // 4 * 4]
        lr = _to_uint8_levels(bicubic_degrade(hr, 4))
        assert lr.shape[1:] == (hr.shape[1] // 4, hr.shape[2] // 4)
        sr = _to_uint8_levels(imresize(lr, 4.0))
        scores.append(_psnr_255(_y_channel(sr)[4:-4, 4:-4], _y_channel(hr)[4:-4, 4:-4]))
    assert len(scores) == 5
    assert np.mean(scores) == pytest.approx(28.42, abs=0.03)


# --- single operations --------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.8, 1.5, 3.0])
def test_gaussian_blur_matches_scipy(butterfly: torch.Tensor, sigma: float) -> None:
    x = butterfly[:, 40:120, 30:130].double()
    ours = gaussian_blur(x, sigma)
    # scipy "mirror" = reflect without repeating the edge; our default radius is ceil(3 sigma).
    radius = math.ceil(3 * sigma)
    ref = np.stack([ndimage.gaussian_filter(c, sigma, mode="mirror", radius=radius) for c in x.numpy()])
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-12)
    assert gaussian_kernel(sigma).numel() == 2 * math.ceil(3 * sigma) + 1


def test_gaussian_blur_edge_cases() -> None:
    x = torch.rand(1, 5, 6, generator=torch.Generator().manual_seed(2))
    assert torch.equal(gaussian_blur(x, 0.0), x)
    flat = gaussian_blur(torch.full((1, 3, 4), 0.6), 3.0)  # radius 9 > image size
    torch.testing.assert_close(flat, torch.full_like(flat, 0.6))
    assert gaussian_blur(x, 1.0, kernel_size=3).shape == x.shape
    with pytest.raises(ValueError, match="odd"):
        gaussian_blur(x, 1.0, kernel_size=4)


def test_blur_downsample_is_blur_then_decimate(butterfly: torch.Tensor) -> None:
    hr = butterfly[:, :66, :70]
    lr = blur_downsample(hr, 4)
    assert lr.shape == (3, 16, 17)
    torch.testing.assert_close(lr, gaussian_blur(hr, 1.5)[:, :64:4, :68:4])  # default sigma 1.5 for x4
    torch.testing.assert_close(
        blur_downsample(hr, 3, sigma=1.6, kernel_size=7),
        gaussian_blur(hr, 1.6, kernel_size=7)[:, :66:3, :69:3],
    )
    with pytest.raises(DataError, match="smaller than the scale"):
        blur_downsample(torch.rand(1, 3, 8), 4)


def test_area_downsample_matches_skimage_and_pillow(butterfly: torch.Tensor) -> None:
    x = butterfly[:, :96, :128].double()
    ours = area_downsample(x, 4)
    assert ours.shape == (3, 24, 32)
    np.testing.assert_allclose(ours.numpy(), downscale_local_mean(x.numpy(), (1, 4, 4)), atol=1e-12)
    gray = x[1].float().numpy()
    pil_box = np.asarray(Image.fromarray(gray, mode="F").resize((32, 24), Image.Resampling.BOX))
    np.testing.assert_allclose(ours[1].numpy(), pil_box, atol=1e-6)
    # Rows/columns beyond a multiple of the scale are dropped; a batch is handled per image.
    assert area_downsample(x[None, :, :99, :130], 4).shape == (1, 3, 24, 32)


def test_gaussian_noise_statistics_and_determinism() -> None:
    gray = torch.full((1, 256, 256), 0.5)
    noisy = add_gaussian_noise(gray, 10.0, generator=torch.Generator().manual_seed(3), clip=False)
    residual = (noisy - gray) * 255
    assert residual.std().item() == pytest.approx(10.0, rel=0.02)
    assert abs(residual.mean().item()) < 0.2  # 5 standard errors of the mean (10 / 256)
    again = add_gaussian_noise(gray, 10.0, generator=torch.Generator().manual_seed(3), clip=False)
    other = add_gaussian_noise(gray, 10.0, generator=torch.Generator().manual_seed(4), clip=False)
    assert torch.equal(noisy, again) and not torch.equal(noisy, other)
    clipped = add_gaussian_noise(
        torch.full((1, 64, 64), 0.99), 50.0, generator=torch.Generator().manual_seed(5)
    )
    assert clipped.max().item() == 1.0 and clipped.min().item() >= 0.0
    assert torch.equal(add_gaussian_noise(gray, 0.0, generator=torch.Generator()), gray)


def test_no_global_rng_is_touched_without_generator() -> None:
    state = torch.get_rng_state()
    a = add_gaussian_noise(torch.full((1, 8, 8), 0.5), 5.0)
    b = add_gaussian_noise(torch.full((1, 8, 8), 0.5), 5.0)
    assert torch.equal(torch.get_rng_state(), state)
    assert not torch.equal(a, b)  # fresh OS-seeded generators


def test_jpeg_compress_quality_orders_fidelity(butterfly: torch.Tensor) -> None:
    x = _to_uint8_levels(butterfly[:, :128, :128])
    scores = []
    for quality in (10, 40, 95):
        out = jpeg_compress(x, quality)
        assert out.shape == x.shape and out.dtype == x.dtype
        torch.testing.assert_close(out, _to_uint8_levels(out), rtol=0, atol=0)  # 8-bit levels
        scores.append(_psnr_255(out * 255, x * 255))
    assert scores[0] < scores[1] < scores[2]
    assert scores[2] > 35 and scores[0] < 30
    batch = torch.stack([x, x.flip(-1)])
    out_batch = jpeg_compress(batch, 40)
    torch.testing.assert_close(out_batch[1], jpeg_compress(x.flip(-1), 40))
    assert jpeg_compress(x[:1], 50).shape == (1, 128, 128)
    with pytest.raises(ValueError, match="quality"):
        jpeg_compress(x, 0)
    with pytest.raises(ValueError, match="C 1 or 3"):
        jpeg_compress(torch.rand(2, 8, 8), 50)


def test_quantize_levels() -> None:
    x = torch.tensor([0.0, 0.5, 1.2, -0.1, 0.1 / 255])
    torch.testing.assert_close(quantize(x), torch.tensor([0.0, 128 / 255, 1.0, 0.0, 0.0]))
    torch.testing.assert_close(quantize(torch.tensor([0.3]), bits=1), torch.tensor([0.0]))


def _mnist_digits(shared_data: Path, count: int) -> torch.Tensor:
    with gzip.open(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz", "rb") as f:
        header = np.frombuffer(f.read(16), dtype=">i4")
        assert header[0] == 2051 and tuple(header[2:]) == (28, 28)
        pixels = np.frombuffer(f.read(count * 28 * 28), dtype=np.uint8)
    return torch.from_numpy(pixels.reshape(count, 1, 28, 28).copy()).float() / 255


def test_mnist_protocol_on_real_digits(shared_data: Path) -> None:
    hr = _mnist_digits(shared_data, 512)
    lr = mnist_degrade(hr, generator=torch.Generator().manual_seed(6))
    assert lr.shape == (512, 1, 7, 7)
    assert lr.min().item() >= 0.0 and lr.max().item() <= 1.0
    clean = area_downsample(hr, 4)
    mid = (clean > 0.25) & (clean < 0.75)  # far from the clip limits
    assert mid.sum() > 1000
    assert ((lr - clean)[mid] * 255).std().item() == pytest.approx(10.0, rel=0.08)
    assert torch.equal(lr, mnist_degrade(hr, generator=torch.Generator().manual_seed(6)))


# --- pipelines ----------------------------------------------------------------------------------

BLIND_YAML = """
- {type: gaussian_blur, sigma: [0.2, 3.0]}     # a [lo, hi] range is sampled uniformly per call
- {type: resize, scale: 0.25, kernel: bicubic}  # bicubic (MATLAB), area, nearest, bilinear
- {type: noise, sigma: [0, 10]}
- {type: jpeg, quality: [30, 95]}
"""


def test_yaml_pipeline_is_reproducible(butterfly: torch.Tensor) -> None:
    pipe = Pipeline.from_yaml(BLIND_YAML)
    assert pipe.scale == 4 and len(pipe) == 4
    batch = torch.stack([butterfly, butterfly.flip(-1)])
    a = pipe(batch, torch.Generator().manual_seed(7))
    b = pipe(batch, torch.Generator().manual_seed(7))
    c = pipe(batch, torch.Generator().manual_seed(8))
    assert a.shape == (2, 3, 64, 64) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert pipe(butterfly).shape == (3, 64, 64)


def test_pipeline_samples_ranges_per_call() -> None:
    pipe = Pipeline([{"type": "noise", "sigma": [2, 20], "clip": False}])
    gray = torch.full((1, 64, 64), 0.5)
    generator = torch.Generator().manual_seed(9)
    stds = [((pipe(gray, generator) - gray) * 255).std().item() for _ in range(12)]
    assert min(stds) > 2 * 0.9 and max(stds) < 20 * 1.1
    assert max(stds) - min(stds) > 5  # not one fixed sigma


def test_presets(butterfly: torch.Tensor) -> None:
    assert {"bicubic_x4", "srgan_x4", "mnist"} <= set(Pipeline.presets())
    x = butterfly[:, :64, :96]
    bicubic = Pipeline.preset("bicubic_x4")
    assert bicubic.scale == 4
    torch.testing.assert_close(bicubic(x), quantize(imresize(x, 0.25)), rtol=0, atol=0)
    srgan = Pipeline.preset("srgan_x4")
    torch.testing.assert_close(srgan(x), quantize(blur_downsample(x, 4)), rtol=0, atol=0)
    digits = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(10))
    torch.testing.assert_close(
        Pipeline.preset("mnist")(digits, torch.Generator().manual_seed(11)),
        mnist_degrade(digits, generator=torch.Generator().manual_seed(11)),
    )
    assert Pipeline.preset("bicubic_x3").scale == 3
    for name in PRESETS:
        assert Pipeline.preset(name).scale >= 1
    with pytest.raises(ConfigError, match="unknown degradation preset 'x9'"):
        Pipeline.preset("x9")


def test_resize_kernels(butterfly: torch.Tensor) -> None:
    x = butterfly[:, :64, :96]

    def run(kernel: str, scale: float = 0.25) -> torch.Tensor:
        return Pipeline([{"type": "resize", "scale": scale, "kernel": kernel}])(x)

    torch.testing.assert_close(run("area"), area_downsample(x, 4))
    torch.testing.assert_close(run("nearest", 0.5), x[:, 1::2, 1::2])  # pixel centres
    bilinear = run("bilinear")
    assert bilinear.shape == (3, 16, 24)
    assert (bilinear - area_downsample(x, 4)).abs().mean() < 0.03
    assert run("bicubic", 2.0).shape == (3, 128, 192)
    assert Pipeline([{"type": "resize", "scale": 2.0}]).scale == 0.5


def test_pipeline_config_roundtrip_and_files(tmp_path: Path) -> None:
    pipe = Pipeline.from_yaml(BLIND_YAML)
    assert Pipeline(pipe.config).config == pipe.config
    assert pipe.config[1] == {"type": "resize", "scale": 0.25, "kernel": "bicubic", "antialias": True}
    path = tmp_path / "lr.yaml"
    path.write_text("steps:\n  - {type: area_downsample, scale: 2}\n  - {type: quantize}\n")
    assert Pipeline.from_yaml(path).scale == 2
    assert Pipeline.from_yaml(str(path)).config == Pipeline.from_yaml(path).config
    with pytest.raises(ConfigError, match="not found"):
        Pipeline.from_yaml(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="invalid YAML"):
        Pipeline.from_yaml("- {type: noise, sigma: [1, 2}\n")


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([{"type": "noise", "sigma": 1}, {"type": "blurr"}], "step 1: unknown type 'blurr'"),
        ([{"type": "gaussian_blur", "sigma": 1, "sgima": 2}], "step 0 (gaussian_blur): unknown key 'sgima'"),
        ([{"type": "noise"}], "step 0 (noise): missing key 'sigma'"),
        ([{"type": "mnist"}, {"sigma": 1}], "step 1: missing key 'type'"),
        ([{"type": "noise", "sigma": "big"}], "step 0 (noise): key 'sigma' must be a number"),
        ([{"type": "noise", "sigma": [5, 1]}], "key 'sigma' range [5.0, 1.0] has lo > hi"),
        ([{"type": "noise", "sigma": -1}], "key 'sigma' must be >= 0"),
        ([{"type": "jpeg", "quality": [30, 95.5]}], "step 0 (jpeg): key 'quality' must be an integer"),
        ([{"type": "jpeg", "quality": 101}], "key 'quality' must be <= 100"),
        ([{"type": "area_downsample", "scale": True}], "key 'scale' must be an integer"),
        ([{"type": "resize", "scale": 0}], "key 'scale' must be > 0"),
        ([{"type": "resize", "scale": 0.5, "kernel": "lanczos"}], "key 'kernel' must be one of"),
        ([{"type": "resize", "scale": 0.3, "kernel": "area"}], "must be 1/n for kernel area"),
        ([{"type": "noise", "sigma": 1, "clip": "yes"}], "key 'clip' must be true or false"),
        ([{"type": "gaussian_blur", "sigma": 1, "kernel_size": 4}], "key 'kernel_size' must be odd"),
        (["noise"], "step 0: expected a mapping"),
        ([], "at least one step"),
        ({"type": "noise"}, "must be a list of steps"),
    ],
)
def test_pipeline_validation_errors(steps: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Pipeline(steps)  # type: ignore[arg-type]
    text = str(info.value)
    assert message in text and "\n" not in text
