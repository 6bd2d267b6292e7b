"""The Upscaler API: tiling exactness, every input kind, channels, alpha, sizes, devices."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from gansr import models
from gansr.data.io import read_image
from gansr.degrade import imresize
from gansr.engine.fast import estimate_memory, prepare_model
from gansr.engine.tiles import MIN_TILE, TilePlan, axis_spans, plan, run_tiled
from gansr.errors import ConfigError, DataError, ModelError
from gansr.upscale.pixels import fill_transparent, icc_for, resize
from gansr.upscale.upscaler import Upscaler

ONE_LEVEL = 1 / 255


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def texture(set5: Path) -> torch.Tensor:
    """A real 64x88 RGB crop of wing veins and edges (texture everywhere, so seams would show)."""
    return read_image(set5 / "butterfly.png").pixels[:, 120:184, 100:188].contiguous()


def small_model(name: str) -> torch.nn.Module:
    """A real gansr architecture, narrowed so the tests stay fast; random init, fixed seed."""
    torch.manual_seed(0)
    if name == "msrresnet":
        return models.create("msrresnet", num_feat=16, num_block=4)
    # x2 RRDBNet pixel-unshuffles its input: size_multiple 2 exercises the tile alignment.
    return models.create("rrdbnet", num_feat=16, num_grow_ch=8, num_block=2, scale=2)


# --------------------------------------------------------------------------- tiling


@pytest.mark.parametrize("name", ["msrresnet", "rrdbnet"])
def test_tiled_equals_untiled_on_a_real_image(texture: torch.Tensor, name: str) -> None:
    model = small_model(name)
    whole = Upscaler(model, device="cpu", tile=0).upscale(texture)
    assert whole.shape == (3, 64 * model.scale, 88 * model.scale)
    # The default overlap (32) at three tile sizes (27 is not a multiple of rrdbnet's
    # size_multiple, 2), then many small tiles with 4-way corners and a shorter overlap.
    for tile, overlap in [(16, None), (27, None), (40, None), (12, 10)]:
        tiled = Upscaler(model, device="cpu", tile=tile, tile_overlap=overlap).upscale(texture)
        diff = (tiled - whole).abs().max().item()
        assert diff <= ONE_LEVEL, f"{name} tile {tile}: max diff {diff * 255:.3f}/255"


def test_tiled_bicubic_model_equals_untiled(texture: torch.Tensor) -> None:
    # The Upscaler resizes straight to the final size for `bicubic`; the model itself tiles too.
    model = models.create("bicubic").eval()
    with torch.inference_mode():
        whole = model(texture[None])[0]
        for tile in (8, 20, 33):
            tiled = run_tiled(model, texture, scale=4, tile_plan=TilePlan(tile, 32, 4))
            assert (tiled - whole).abs().max().item() <= 1e-5
    assert torch.allclose(Upscaler(model, device="cpu").upscale(texture), whole.clamp(0, 1), atol=1e-5)


def test_tiles_without_overlap_show_seams(texture: torch.Tensor) -> None:
    # The control for the test above: without context the tile borders do differ.
    model = small_model("msrresnet")
    whole = Upscaler(model, device="cpu", tile=0).upscale(texture)
    tiled = Upscaler(model, device="cpu", tile=16, tile_overlap=0).upscale(texture)
    assert (tiled - whole).abs().max().item() > 2 * ONE_LEVEL


@pytest.mark.parametrize(
    ("length", "tile", "overlap", "multiple"), [(100, 32, 8, 1), (97, 30, 5, 4), (64, 64, 8, 1)]
)
def test_axis_spans_cover_the_axis_aligned_to_the_multiple(
    length: int, tile: int, overlap: int, multiple: int
) -> None:
    spans = axis_spans(length, tile, overlap, multiple)
    assert spans[0].core_lo == 0 and spans[-1].core_hi == length
    for a, b in zip(spans, spans[1:], strict=False):
        assert a.core_hi == b.core_lo  # cores partition the axis
    for s in spans:
        assert s.lo % multiple == 0 and s.core_lo % multiple == 0
        assert 0 <= s.lo <= s.core_lo < s.core_hi <= s.hi <= length
        assert s.core_lo - s.lo == min(s.core_lo, -(-overlap // multiple) * multiple)
        assert s.core_hi - s.core_lo <= -(-tile // multiple) * multiple


def test_blend_weights_sum_to_one_everywhere() -> None:
    # A model that outputs ones: any gap or double count in the feathering would show.
    def ones(batch: torch.Tensor) -> torch.Tensor:
        return torch.ones(batch.shape[0], 2, batch.shape[2] * 3, batch.shape[3] * 3)

    image = torch.rand(3, 53, 71)
    for tile, overlap in [(5, 32), (16, 4), (20, 0), (7, 3)]:
        out = run_tiled(ones, image, scale=3, tile_plan=TilePlan(tile, overlap, 3))
        assert out.shape == (2, 159, 213)
        assert (out - 1).abs().max().item() < 1e-6


def test_plan_fits_the_budget_with_the_least_overlap_work() -> None:
    # The planner the Upscaler, bench, video and the web app use, on a real (narrow) model.
    fast = prepare_model(small_model("rrdbnet"), device="cpu")  # size_multiple 2
    assert plan(fast, 100, 100, budget_bytes=1 << 30).tile == 0  # fits: one piece, no overlap work
    assert plan(fast, 5000, 5000, budget_bytes=1 << 20).tile == MIN_TILE  # nothing fits: the floor
    budget = 1 << 29
    for height, width in [(2000, 3000), (1777, 2999)]:
        tp = plan(fast, height, width, budget_bytes=budget)
        assert tp.tile >= MIN_TILE and tp.tile % fast.size_multiple == 0
        ys = axis_spans(height, tp.tile, tp.overlap, fast.size_multiple)
        xs = axis_spans(width, tp.tile, tp.overlap, fast.size_multiple)
        biggest = fast.memory_bytes(max(s.hi - s.lo for s in ys), max(s.hi - s.lo for s in xs))
        canvas = 3 * height * width * fast.scale**2 * 4  # the CPU output canvas is held beside a tile
        assert biggest <= max(budget // 4, budget - canvas)
    assert plan(fast, 100, 100, tile=24).tile == 24  # explicit wins
    assert plan(fast, 100, 100, tile=23).tile == 24  # rounded up to the size multiple
    with pytest.raises(ConfigError):
        plan(fast, 10, 10, tile=-1)
    with pytest.raises(ConfigError):
        plan(fast, 10, 10, overlap=-1)


def test_auto_tiles_fit_the_memory_budget() -> None:
    up = Upscaler(small_model("msrresnet"), device="cpu")
    budget = 1 << 26
    tp = up.plan(3000, 4000, memory_budget=budget)
    assert tp == plan(up._fast, 3000, 4000, budget_bytes=budget)  # the Upscaler plans with the engine
    assert tp.tile >= MIN_TILE
    assert up._fast.memory_bytes(tp.tile + 2 * tp.overlap, tp.tile + 2 * tp.overlap) <= budget
    assert up.plan(40, 40).tile == 0  # small images run in one piece
    assert up.plan(20_000, 20_000).tile > 0


def test_memory_probe_grows_with_the_model_width() -> None:
    narrow = models.create("msrresnet", num_feat=16, num_block=1).eval()
    wide = models.create("msrresnet", num_feat=64, num_block=1).eval()
    with torch.inference_mode():
        b_narrow = estimate_memory(narrow, narrow, 3)
        b_wide = estimate_memory(wide, wide, 3)
    # Widest activation: num_feat channels at 4x4 output pixels per LR pixel, float32.
    assert b_narrow >= 16 * 16 * 4 and b_wide >= 64 * 16 * 4
    assert 3.5 < b_wide / b_narrow < 4.5


# --------------------------------------------------------------------------- input kinds


def test_numpy_arrays_keep_dtype_and_layout(texture: torch.Tensor) -> None:
    up = Upscaler("bicubic", device="cpu")
    rgb8 = (texture.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    out = up.upscale(rgb8)
    assert out.dtype == np.uint8 and out.shape == (256, 352, 3)
    expected = imresize(torch.from_numpy(rgb8).permute(2, 0, 1).float() / 255, 4).clamp(0, 1)
    assert np.abs(out.astype(np.float32) / 255 - expected.permute(1, 2, 0).numpy()).max() <= 0.5 / 255 + 1e-6

    gray16 = (texture[0].numpy() * 65535).astype(np.uint16)
    out16 = up.upscale(gray16, outscale=2)
    assert out16.dtype == np.uint16 and out16.shape == (128, 176)
    assert np.any(out16 % 257 != 0)  # really 16-bit, not 8-bit levels

    rgba = np.concatenate([texture.permute(1, 2, 0).numpy(), np.ones((64, 88, 1), np.float32)], axis=2)
    out_f = up.upscale(rgba.astype(np.float64), size=(100, 50))
    assert out_f.dtype == np.float64 and out_f.shape == (100, 50, 4)
    assert np.allclose(out_f[..., 3], 1.0)
    with pytest.raises(DataError):
        up.upscale(np.zeros((8, 8, 5), np.uint8))
    with pytest.raises(DataError):
        up.upscale(np.zeros((8, 8), np.int32))


def test_tensors_keep_shape_and_dtype(texture: torch.Tensor) -> None:
    up = Upscaler("bicubic", device="cpu")
    one = up.upscale(texture.double())
    assert one.dtype == torch.float64 and one.shape == (3, 256, 352)
    batch = up.upscale(torch.stack([texture, texture.flip(-1)]), outscale=1.5)
    assert batch.shape == (2, 3, 96, 132)
    assert torch.allclose(batch[1], batch[0].flip(-1), atol=1e-5)
    with pytest.raises(DataError):
        up.upscale((texture * 255).to(torch.uint8))


def test_pil_images_keep_their_mode_family(set5: Path) -> None:
    up = Upscaler("bicubic", device="cpu")
    src = Image.open(set5 / "bird.png").convert("RGB").crop((0, 0, 40, 30))
    alpha = Image.new("L", src.size, 255)
    alpha.paste(0, (0, 0, 20, 30))
    cases = {
        "RGB": src,
        "L": src.convert("L"),
        "LA": Image.merge("LA", (src.convert("L"), alpha)),
        "RGBA": Image.merge("RGBA", (*src.split(), alpha)),
        "CMYK": src.convert("CMYK"),
        "1": src.convert("1"),
        "I;16": Image.fromarray(np.asarray(src.convert("L"), np.uint16) * 257),
    }
    expected_mode = {
        "RGB": "RGB",
        "L": "L",
        "LA": "LA",
        "RGBA": "RGBA",
        "CMYK": "CMYK",
        "1": "1",
        "I;16": "I;16",
    }
    for mode, image in cases.items():
        out = up.upscale(image)
        assert out.mode == expected_mode[mode], mode
        assert out.size == (160, 120), mode
    pal = src.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.info["transparency"] = 0
    assert up.upscale(pal).mode == "RGBA"  # palette + transparency: RGBA, not re-quantized


def test_path_input_returns_pil_with_icc(tmp_path: Path, set5: Path) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = tmp_path / "head.png"
    Image.open(set5 / "head.png").crop((0, 0, 32, 24)).save(path, icc_profile=icc)
    out = Upscaler("bicubic", device="cpu").upscale(path, outscale=3)
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == (96, 72)
    assert out.info["icc_profile"] == icc
    assert icc_for(icc, 3) == icc and icc_for(icc, 1) is None and icc_for(b"junk", 3) is None
    with pytest.raises(TypeError):
        Upscaler("bicubic", device="cpu").upscale([1, 2, 3])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- channels, alpha, sizes


@pytest.mark.parametrize("size", [(256, 352), (200, 301), (31, 45), (7, 5), (64, 88)])
def test_resize_matches_matlab_imresize(texture: torch.Tensor, size: tuple[int, int]) -> None:
    # Up, odd, down (antialiased), extreme down, identity: MATLAB's result everywhere, borders too.
    expected = imresize(texture.double(), size=size).float()
    assert (resize(texture, size) - expected).abs().max().item() < 1e-5


def test_gray_through_an_rgb_model_stays_gray(texture: torch.Tensor) -> None:
    model = small_model("msrresnet")
    up = Upscaler(model, device="cpu")
    gray = texture[1:2]
    out = up.upscale(gray)
    assert out.shape == (1, 256, 352)
    rgb = up.upscale(gray.expand(3, -1, -1).contiguous())
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    assert torch.allclose(out[0], luma.clamp(0, 1), atol=1e-5)


class GrayBicubic(torch.nn.Module):
    """A 1-channel x2 model (as SRCNN-style Y-only models are)."""

    scale = 2
    in_channels = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1] == 1
        return imresize(x, 2)


def test_rgb_through_a_gray_model_runs_on_luma(texture: torch.Tensor) -> None:
    out = Upscaler(GrayBicubic(), device="cpu").upscale(texture)
    assert out.shape == (3, 128, 176)
    # Bicubic is linear, so Y/CbCr bicubic equals RGB bicubic.
    assert torch.allclose(out, imresize(texture, 2).clamp(0, 1), atol=1e-4)


def test_transparent_pixels_do_not_darken_the_edges(set5: Path) -> None:
    rgb = read_image(set5 / "butterfly.png").pixels[:, 40:104, 40:104].contiguous()
    alpha = torch.ones(1, 64, 64)
    alpha[:, :, 32:] = 0
    hidden_black = rgb.clone()
    hidden_black[:, :, 32:] = 0  # what many editors store under transparency
    up = Upscaler("bicubic", device="cpu")
    filled, out_alpha = up.upscale_planes(hidden_black, alpha)
    naive, _ = up.upscale_planes(hidden_black, None)
    truth, _ = up.upscale_planes(rgb, None)
    assert out_alpha is not None
    fringe = (out_alpha[0] > 0.02) & (out_alpha[0] < 0.98)
    assert fringe.sum() > 50

    def visible_error(colour: torch.Tensor) -> torch.Tensor:  # what a viewer sees: colour * alpha
        return ((colour - truth) * out_alpha)[:, fringe]

    # Hidden black bleeds in as a dark fringe; the filled colours do not darken the edge.
    assert visible_error(naive).mean() < -0.05
    assert visible_error(filled).mean().abs() < 0.02
    assert visible_error(filled).abs().mean() < 0.5 * visible_error(naive).abs().mean()
    assert 0 <= out_alpha.min() and out_alpha.max() <= 1
    # Opaque pixels keep their colour; transparent ones take the neighbours'.
    fill = fill_transparent(hidden_black, alpha)
    assert torch.equal(fill[:, :, :32], rgb[:, :, :32])
    assert (fill[:, :, 32:].mean(dim=(1, 2)) - rgb[:, :, 24:32].mean(dim=(1, 2))).abs().max() < 0.15


def test_output_sizes_and_resize_after_sr(texture: torch.Tensor) -> None:
    model = small_model("rrdbnet")  # x2
    up = Upscaler(model, device="cpu")
    native = up.upscale(texture)
    assert native.shape == (3, 128, 176)
    three = up.upscale(texture, outscale=3)
    assert three.shape == (3, 192, 264)
    assert torch.allclose(three, imresize(native, size=(192, 264)).clamp(0, 1), atol=1e-5)
    assert up.output_size(64, 88, size=(0, 44)) == (32, 44)
    assert up.output_size(64, 88, size=(32, 0)) == (32, 44)
    assert up.output_size(3, 3, outscale=0.1) == (1, 1)
    for bad in (
        {"outscale": 0},
        {"outscale": float("nan")},
        {"size": (0, 0)},
        {"size": (10, -1)},
        {"outscale": 2, "size": (4, 4)},
    ):
        with pytest.raises(ConfigError):
            up.output_size(64, 88, **bad)


def test_arbitrary_scale_model_renders_the_requested_size(texture: torch.Tensor) -> None:
    torch.manual_seed(0)
    cppn = models.create("vae_cppn", in_channels=1, num_feat=8, latent_dim=4, cppn_width=8, cppn_depth=1)
    up = Upscaler(cppn, device="cpu", tile=8)  # tiling does not apply to a global decoder
    out = up.upscale(texture[:1], size=(50, 70))
    assert out.shape == (1, 50, 70)
    assert out.std() > 0


# --------------------------------------------------------------------------- construction


def test_bad_settings_raise_config_errors() -> None:
    with pytest.raises(ConfigError):
        Upscaler("bicubic", precision="fp8")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        Upscaler("bicubic", tile=-5)
    with pytest.raises(ConfigError):
        Upscaler("bicubic", tile_overlap=-1)
    with pytest.raises(ConfigError):
        Upscaler("bicubic", device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            Upscaler("bicubic", device="cuda")


def test_models_resolve_by_name_path_or_module(tmp_path: Path) -> None:
    with pytest.raises(ModelError):
        Upscaler("no-such-model", device="cpu")
    with pytest.raises(ModelError):
        Upscaler("patch_d", device="cpu")  # a discriminator, not a generator
    with pytest.warns(UserWarning, match="random weights"):
        assert Upscaler("srcnn", device="cpu").scale == 4
    saved = models.save(small_model("rrdbnet"), tmp_path / "tiny")
    up = Upscaler(saved, device="cpu")
    assert up.scale == 2 and up.size_multiple == 2
    assert Upscaler(str(saved), device="cpu").model.arch == "rrdbnet"


def test_precision_falls_back_or_runs_bf16(texture: torch.Tensor) -> None:
    with pytest.warns(UserWarning, match="fp16 needs a GPU"):
        up = Upscaler("bicubic", device="cpu", precision="fp16")
    assert up.precision == "fp32"
    model = small_model("msrresnet")
    ref = Upscaler(model, device="cpu").upscale(texture)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bf16 = Upscaler(model, device="cpu", precision="bf16")
    out = bf16.upscale(texture)
    assert out.dtype == torch.float32
    assert (out - ref).abs().mean().item() < 0.02  # bf16 rounding, not garbage


def test_lazy_export_from_the_package() -> None:
    import gansr

    assert gansr.Upscaler is Upscaler
