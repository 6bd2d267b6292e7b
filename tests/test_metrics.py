"""gansr.metrics against independent references on real Set5/Set14 images.

scikit-image is the cross-check for PSNR, SSIM and the rgb2ycbcr luma; NIQE is checked against the
published MATLAB number for Set14/baboon.png.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from gansr.metrics import ms_ssim, ms_ssim_index, niqe, psnr, rgb_to_y, ssim, ssim_index

# skimage's Gaussian SSIM with Wang et al.'s settings (its 11x11 window is truncate=3.5 at sigma=1.5).
SKIMAGE_SSIM = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)


def load_uint8(path: Path) -> np.ndarray:
    """HWC (or HW for gray) uint8 pixels, read with PIL only."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB" if im.mode != "L" else "L")).copy()


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """uint8 HWC/HW -> float64 (C, H, W) in [0, 1], the gansr convention."""
    t = torch.from_numpy(pixels).double() / 255.0
    return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


def distort(pixels: np.ndarray, *, blur: float, noise: float, seed: int) -> np.ndarray:
    """A realistic degraded copy: Gaussian blur, additive noise, then 8-bit quantization."""
    blurred = np.asarray(Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(blur)), dtype=np.float64)
    noisy = blurred + np.random.default_rng(seed).normal(0.0, noise, size=pixels.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def jpeg(pixels: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return load_uint8(io.BytesIO(buffer.getvalue()))


def skimage_y(pixels: np.ndarray) -> np.ndarray:
    """Y of rgb2ycbcr in 0..255 units (16..235), computed by scikit-image."""
    return rgb2ycbcr(pixels.astype(np.float64) / 255.0)[..., 0]


@pytest.fixture(scope="module")
def pairs(set5: Path, set14: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, HR, distorted) for a mix of images and distortions."""
    out = []
    images = [set5 / "baby.png", set5 / "woman.png", set14 / "comic.png", set14 / "lenna.png"]
    for i, path in enumerate(images):
        hr = load_uint8(path)
        sr = distort(hr, blur=1.0 + 0.5 * i, noise=3.0 + 2 * i, seed=i)
        out.append((f"{path.name}/blur+noise", hr, sr))
    hr = load_uint8(set14 / "zebra.png")
    out.append(("zebra.png/jpeg20", hr, jpeg(hr, 20)))
    return out


# --- rgb_to_y ------------------------------------------------------------------------------------


def test_rgb_to_y_hand_computed_pixel() -> None:
    rgb = torch.tensor([200.0, 100.0, 50.0], dtype=torch.float64).view(3, 1, 1) / 255
    # 16 + (65.481*200 + 128.553*100 + 24.966*50) / 255 = 16 + 27199.8 / 255
    assert float(rgb_to_y(rgb)) * 255 == pytest.approx(122.665882352941, abs=1e-9)
    extremes = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]).view(2, 3, 1, 1)
    assert (rgb_to_y(extremes).flatten() * 255).tolist() == pytest.approx([16.0, 235.0], abs=1e-4)


def test_rgb_to_y_shapes_dtype_and_gray_passthrough(set5: Path) -> None:
    img = to_tensor(load_uint8(set5 / "bird.png"))
    assert rgb_to_y(img).shape == (1, *img.shape[1:]) and rgb_to_y(img).dtype == torch.float64
    batch = torch.stack([img, img.flip(-1)]).float()
    y = rgb_to_y(batch)
    assert y.shape == (2, 1, *img.shape[1:]) and y.dtype == torch.float32
    assert torch.allclose(y[1], rgb_to_y(img.flip(-1)).float(), atol=1e-6)
    gray = img[:1]
    assert rgb_to_y(gray) is gray
    with pytest.raises(ValueError, match="1 or 3 channels"):
        rgb_to_y(torch.zeros(4, 8, 8))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_rgb_to_y_low_precision_only_rounds_the_result(set5: Path, dtype: torch.dtype) -> None:
    img = to_tensor(load_uint8(set5 / "bird.png")).to(dtype)
    y = rgb_to_y(img)
    assert y.dtype == dtype
    exact = rgb_to_y(img.double())  # of the same (already rounded) input
    # Only the final rounding to dtype (relative error <= eps / 2): no error from a 0..255 sum
    # (summing in bf16 itself was off by up to 3.6x the input's own rounding).
    bound = exact * torch.finfo(dtype).eps / 2 * (1 + 1e-6)
    assert bool(((y.double() - exact).abs() <= bound).all())


def test_rgb_to_y_matches_skimage_on_real_image(set14: Path) -> None:
    pixels = load_uint8(set14 / "monarch.png")
    ours = rgb_to_y(to_tensor(pixels))[0].numpy() * 255
    assert np.abs(ours - skimage_y(pixels)).max() < 1e-9


# --- PSNR / SSIM against scikit-image -----------------------------------------------------------------


@pytest.mark.parametrize("crop", [0, 4])
def test_psnr_y_matches_skimage(pairs, crop: int) -> None:
    for name, hr, sr in pairs:
        ref_hr, ref_sr = skimage_y(hr), skimage_y(sr)
        if crop:
            ref_hr, ref_sr = ref_hr[crop:-crop, crop:-crop], ref_sr[crop:-crop, crop:-crop]
        expected = peak_signal_noise_ratio(ref_hr, ref_sr, data_range=255)
        got = psnr(to_tensor(sr), to_tensor(hr), crop_border=crop)
        assert 20 < got < 40, name  # realistic distortions, not a degenerate comparison
        assert got == pytest.approx(expected, abs=1e-9), name


def test_psnr_rgb_and_numpy_hwc_input_match_skimage(pairs) -> None:
    for name, hr, sr in pairs:
        expected = peak_signal_noise_ratio(hr, sr, data_range=255)
        assert psnr(to_tensor(sr), to_tensor(hr), y_channel=False) == pytest.approx(expected, abs=1e-9), name
        # NumPy arrays are read as HWC; uint8 is scaled by 1/255.
        assert psnr(sr, hr, y_channel=False) == pytest.approx(expected, abs=1e-9), name


@pytest.mark.parametrize("crop", [0, 4])
def test_ssim_y_matches_skimage(pairs, crop: int) -> None:
    for name, hr, sr in pairs:
        ref_hr, ref_sr = skimage_y(hr), skimage_y(sr)
        if crop:
            ref_hr, ref_sr = ref_hr[crop:-crop, crop:-crop], ref_sr[crop:-crop, crop:-crop]
        # skimage filters with padding but averages only the interior (5 px in): our 'valid' map.
        expected = structural_similarity(ref_hr, ref_sr, **SKIMAGE_SSIM)
        got = ssim(to_tensor(sr), to_tensor(hr), crop_border=crop)
        assert 0.3 < got < 0.99, name
        assert got == pytest.approx(expected, abs=1e-10), name


def test_ssim_rgb_matches_skimage_channel_mean(pairs) -> None:
    for name, hr, sr in pairs[:3]:
        expected = structural_similarity(
            hr.astype(np.float64), sr.astype(np.float64), channel_axis=-1, **SKIMAGE_SSIM
        )
        got = ssim(to_tensor(sr), to_tensor(hr), y_channel=False)
        assert got == pytest.approx(expected, abs=1e-10), name


def test_gray_image_metrics_match_skimage(set14: Path) -> None:
    hr = load_uint8(set14 / "bridge.png")  # a mode-L image
    sr = distort(hr, blur=1.2, noise=4.0, seed=7)
    assert hr.ndim == 2
    f64 = hr.astype(np.float64), sr.astype(np.float64)
    assert psnr(to_tensor(sr), to_tensor(hr)) == pytest.approx(peak_signal_noise_ratio(*f64, data_range=255))
    assert ssim(to_tensor(sr), to_tensor(hr)) == pytest.approx(structural_similarity(*f64, **SKIMAGE_SSIM))


def test_metric_ssim_uses_the_shared_core(pairs) -> None:
    _, hr, sr = pairs[0]
    core = ssim_index(
        rgb_to_y(to_tensor(sr))[None] * 255, rgb_to_y(to_tensor(hr))[None] * 255, data_range=255.0
    )
    assert ssim(to_tensor(sr), to_tensor(hr)) == float(core)


def test_identical_images(set5: Path) -> None:
    img = to_tensor(load_uint8(set5 / "head.png"))
    assert psnr(img, img) == math.inf
    assert ssim(img, img, crop_border=4) == pytest.approx(1.0, abs=1e-12)
    assert ms_ssim(img, img) == pytest.approx(1.0, abs=1e-12)


# --- differentiable cores -------------------------------------------------------------------------------


def test_ssim_index_batch_dtype_and_gradient(set5: Path) -> None:
    pixels = load_uint8(set5 / "butterfly.png")[:64, :64]
    hr = to_tensor(pixels).float()
    sr = to_tensor(distort(pixels, blur=1.5, noise=5, seed=1)).float()
    x = torch.stack([sr, hr]).requires_grad_(True)
    y = torch.stack([hr, hr])
    values = ssim_index(x, y)
    assert values.shape == (2,) and values.dtype == torch.float32
    assert values[0].item() < 0.95 and values[1].item() == pytest.approx(1.0, abs=1e-5)
    (1 - values).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad[0].abs().sum() > 0


def test_ssim_index_gradcheck() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 2, 13, 14, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 2, 13, 14, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: ssim_index(a, y), (x,))


def test_ms_ssim_decreases_with_noise_and_single_scale_is_ssim(set14: Path) -> None:
    hr = load_uint8(set14 / "pepper.png")[:256, :256]
    noisy = [to_tensor(distort(hr, blur=0.1, noise=sigma, seed=3)) for sigma in (2, 8, 20, 40)]
    scores = [ms_ssim(sr, to_tensor(hr)) for sr in noisy]
    assert all(a > b for a, b in zip(scores, scores[1:], strict=False)), scores
    assert 0.2 < scores[-1] < scores[0] < 1.0
    x = to_tensor(distort(hr, blur=1.0, noise=5, seed=4))[None]
    single = ms_ssim_index(x, to_tensor(hr)[None], weights=(1.0,))
    assert torch.allclose(single, ssim_index(x, to_tensor(hr)[None]), atol=1e-12)


def test_ms_ssim_index_gradient_is_finite_for_anticorrelated_images() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 176, 176, generator=gen, requires_grad=True)
    # The second pair is anti-correlated: its cs terms are negative and get clamped.
    y = torch.stack([x[0].detach() * 0.8 + 0.1, 1 - x[1].detach()])
    values = ms_ssim_index(x, y)
    assert values.shape == (2,) and torch.isfinite(values).all() and values[1] < 1e-3 < values[0]
    values.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_ms_ssim_index_gradcheck_with_clamped_terms() -> None:
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(2, 1, 12, 12, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.rand(2, 1, 12, 12, generator=gen, dtype=torch.float64)
    fn = lambda a: ms_ssim_index(a, y, weights=(0.4, 0.6), window_size=3)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))


def test_ms_ssim_too_small_says_minimum_size() -> None:
    x = torch.rand(1, 1, 175, 300)
    with pytest.raises(ValueError, match="at least 176x176"):
        ms_ssim_index(x, x)
    assert ms_ssim_index(x, x, weights=(0.2, 0.3, 0.5)).item() == pytest.approx(1.0, abs=1e-6)


# --- NIQE -------------------------------------------------------------------------------------------------


def test_niqe_baboon_matches_matlab_reference(set14: Path) -> None:
    value = niqe(to_tensor(load_uint8(set14 / "baboon.png")))
    assert abs(value - 5.7296) <= 0.002, value


def test_niqe_input_forms_crop_and_blur(set14: Path) -> None:
    pixels = load_uint8(set14 / "flowers.png")
    img = to_tensor(pixels)
    base = niqe(img)
    assert niqe(pixels) == base  # HWC uint8 array
    # A gray image is measured as is: handing over the (rounded) luma gives the same score.
    luma = torch.round(rgb_to_y(img) * 255) / 255
    assert niqe(luma) == pytest.approx(base, abs=1e-9)
    assert niqe(img, crop_border=6) == pytest.approx(niqe(img[:, 6:-6, 6:-6]), abs=1e-12)
    blurred = niqe(to_tensor(distort(pixels, blur=2.5, noise=0.0, seed=0)))
    assert blurred > base + 1, (base, blurred)


def test_niqe_small_and_flat_images() -> None:
    with pytest.raises(ValueError, match="at least two 96x96 blocks"):
        niqe(torch.rand(3, 100, 150))
    assert math.isnan(niqe(torch.full((1, 96, 192), 0.5)))


# --- bad inputs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", [psnr, ssim, ms_ssim])
def test_shape_mismatch_raises(metric) -> None:
    with pytest.raises(ValueError, match="same shape"):
        metric(torch.rand(3, 200, 200), torch.rand(3, 200, 201))
    with pytest.raises(ValueError, match="same shape"):
        metric(torch.rand(1, 200, 200), torch.rand(3, 200, 200))


def test_bad_inputs_raise_clear_errors() -> None:
    img = torch.rand(3, 32, 32)
    with pytest.raises(ValueError, match="one image"):
        psnr(img[None], img[None])
    with pytest.raises(ValueError, match="1 or 3 channels"):
        psnr(torch.rand(4, 32, 32), torch.rand(4, 32, 32))
    with pytest.raises(ValueError, match=r"divide 0..255 images by 255"):
        psnr(img * 255, img * 255)
    with pytest.raises(ValueError, match="leaves nothing"):
        psnr(img, img, crop_border=16)
    with pytest.raises(ValueError, match="non-negative integer"):
        ssim(img, img, crop_border=-1)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(img, img, crop_border=11)
    with pytest.raises(ValueError, match="same shape"):
        ssim_index(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 17))
