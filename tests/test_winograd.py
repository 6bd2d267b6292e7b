"""The Winograd F(4x4, 3x3) kernel (``gansr.kernels.winograd``) and the fused models that use it.

Checked against PyTorch's own convolution in float64: every layout the fused models pass it
(channel slices of a dense buffer, residuals, in-place outputs), borders of every size modulo 4,
batches, both precisions, and the fallback when the kernel cannot be built. Nothing is timed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gansr import models
from gansr.engine.fast import naive_forward, prepare_model
from gansr.kernels import winograd
from gansr.models.fused import FusedConv2d

needs_kernel = pytest.mark.skipif(not winograd.available(), reason=f"no Winograd kernel: {winograd.status()}")
needs_bf16 = pytest.mark.skipif(
    not winograd.available(torch.bfloat16), reason="no AVX512-BF16 Winograd kernel on this CPU"
)


def channels_last(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last)


def reference(x, weight, bias, residual=None, slope=None) -> torch.Tensor:
    y = F.conv2d(x.double(), weight.double(), None if bias is None else bias.double(), padding=1)
    if residual is not None:
        y = y + residual.double()
    return y if slope is None else F.leaky_relu(y, slope)


@pytest.fixture
def fresh_kernel_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """An empty kernel cache and a forgotten load, restored afterwards."""
    monkeypatch.setenv("GANSR_CACHE", str(tmp_path))
    winograd._load.cache_clear()
    yield tmp_path
    monkeypatch.undo()
    winograd._load.cache_clear()


# --------------------------------------------------------------------------- the kernel


@needs_kernel
@pytest.mark.parametrize(
    ("n", "cin", "cout", "h", "w"),
    [(1, 64, 32, 17, 23), (2, 48, 64, 9, 6), (1, 16, 96, 4, 4), (1, 32, 32, 1, 1), (1, 32, 32, 2, 7)],
)
@pytest.mark.parametrize("threads", [1, 2])
def test_fp32_kernel_equals_conv2d(n: int, cin: int, cout: int, h: int, w: int, threads: int) -> None:
    torch.manual_seed(0)
    x = channels_last(torch.randn(n, cin, h, w))
    weight, bias = torch.randn(cout, cin, 3, 3) * 0.1, torch.randn(cout)
    residual = channels_last(torch.randn(n, cout, h, w))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        u = winograd.transform_weights(weight)
        plain = winograd.conv3x3(x, u)
        full = winograd.conv3x3(x, u, bias, residual=residual, negative_slope=0.2)
    finally:
        torch.set_num_threads(before)
    for out, ref in ((plain, reference(x, weight, None)), (full, reference(x, weight, bias, residual, 0.2))):
        assert out.shape == ref.shape and out.is_contiguous(memory_format=torch.channels_last)
        # Winograd's transforms cost a few bits: ~5x the rounding of a direct fp32 convolution.
        assert (out.double() - ref).abs().max().item() < 2e-5 * ref.abs().max().item()


@needs_kernel
def test_kernel_reads_and_writes_channel_slices_of_a_dense_buffer() -> None:
    """The dense-block layout: input = first channels of a buffer, output = a later slice of it,
    residual = another slice; nothing outside the output slice may change."""
    torch.manual_seed(1)
    buf = channels_last(torch.randn(2, 112, 13, 10))
    weight, bias = torch.randn(32, 48, 3, 3) * 0.1, torch.randn(32)
    x, res, before = buf[:, :48], buf[:, 16:48], buf.clone()
    expected = reference(x, weight, bias, res, 0.2)  # computed before the buffer is written
    winograd.conv3x3(
        x, winograd.transform_weights(weight), bias, residual=res, negative_slope=0.2, out=buf[:, 64:96]
    )
    assert (buf[:, 64:96].double() - expected).abs().max().item() < 2e-5 * expected.abs().max().item()
    assert torch.equal(buf[:, :64], before[:, :64]) and torch.equal(buf[:, 96:], before[:, 96:])


@needs_kernel
def test_prelu_slopes_outside_zero_to_one_are_exact() -> None:
    torch.manual_seed(2)
    x = channels_last(torch.randn(1, 32, 8, 8))
    weight = torch.randn(32, 32, 3, 3) * 0.1
    for slope in (-0.3, 0.0, 1.7):
        out = winograd.conv3x3(x, winograd.transform_weights(weight), negative_slope=slope)
        ref = reference(x, weight, None)
        ref = torch.where(ref < 0, ref * slope, ref)
        assert (out.double() - ref).abs().max().item() < 2e-5 * ref.abs().max().item(), slope


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_per_channel_prelu_slopes_apply_per_output_channel(dtype: torch.dtype) -> None:
    if not winograd.available(dtype):
        pytest.skip(f"no {dtype} kernel here")
    torch.manual_seed(3)
    x = channels_last(torch.randn(1, 32, 9, 7))
    weight, bias = torch.randn(64, 32, 3, 3) * 0.1, torch.randn(64)
    slopes = torch.linspace(-0.5, 1.5, 64)  # every output channel its own slope
    out = winograd.conv3x3(
        x.to(dtype), winograd.transform_weights(weight, dtype), bias, negative_slope=slopes
    ).double()
    ref = reference(x, weight, bias)
    ref = torch.where(ref < 0, ref * slopes.double().view(1, -1, 1, 1), ref)
    if dtype == torch.float32:
        assert (out - ref).abs().max().item() < 2e-5 * ref.abs().max().item()
    else:  # bf16 rounding of the transformed values: ~1-2% rms (wrong slopes: tens of %)
        assert ((out - ref).pow(2).mean().sqrt() / ref.pow(2).mean().sqrt()).item() < 0.03
    # A slope per channel is not one slope: a single-slope run differs where inputs are negative.
    single = winograd.conv3x3(
        x.to(dtype), winograd.transform_weights(weight, dtype), bias, negative_slope=0.5
    )
    assert (single.double() - out).abs().max().item() > 0.1
    with pytest.raises(ValueError, match="per-channel slopes"):
        winograd.conv3x3(x, winograd.transform_weights(weight), bias, negative_slope=torch.ones(32))


@needs_kernel
def test_kernel_rejects_what_it_cannot_compute() -> None:
    x = channels_last(torch.randn(1, 32, 8, 8))
    u = winograd.transform_weights(torch.randn(32, 32, 3, 3))
    with pytest.raises(ValueError, match="do not fit"):
        winograd.conv3x3(channels_last(torch.randn(1, 48, 8, 8)), u)
    with pytest.raises(ValueError, match="float32 or bfloat16"):
        winograd.conv3x3(x.double(), u)
    with pytest.raises(ValueError, match="out must be"):
        winograd.conv3x3(x, u, out=torch.empty(1, 32, 8, 7))
    with pytest.raises(ValueError, match="3x3"):
        winograd.transform_weights(torch.randn(32, 32, 5, 5))
    assert not winograd.supports(32, 16) and not winograd.supports(24, 32) and winograd.supports(16, 32)
    # An NCHW input is taken (copied to channels-last), with the same result.
    nchw = x.contiguous()
    assert torch.equal(winograd.conv3x3(nchw, u), winograd.conv3x3(x, u))


@needs_bf16
def test_bf16_kernel_is_close_to_the_exact_convolution() -> None:
    torch.manual_seed(3)
    x = channels_last(torch.randn(1, 64, 21, 18)).bfloat16()
    weight, bias = torch.randn(64, 64, 3, 3) * 0.05, torch.randn(64)
    res = channels_last(torch.randn(1, 64, 21, 18)).bfloat16()
    out = winograd.conv3x3(
        x, winograd.transform_weights(weight, torch.bfloat16), bias, residual=res, negative_slope=0.2
    )
    assert out.dtype == torch.bfloat16
    ref = reference(x, weight, bias, res, 0.2)
    rel_rms = ((out.double() - ref).pow(2).mean().sqrt() / ref.pow(2).mean().sqrt()).item()
    # bf16 keeps 8 bits; the transformed values are rounded to it, so ~1-2% rms (wrong maths: ~100%).
    assert 1e-3 < rel_rms < 0.03


# --------------------------------------------------------------------------- building and fallback


def test_kernel_is_built_once_into_the_cache(fresh_kernel_state: Path) -> None:
    if not winograd.available():
        pytest.skip(winograd.status())
    built = list((fresh_kernel_state / "kernels").iterdir())
    assert len(built) == 1 and built[0].suffix == ".so"  # no temporary files left behind
    stamp = built[0].stat().st_mtime_ns
    winograd._load.cache_clear()
    assert winograd.available() and built[0].stat().st_mtime_ns == stamp  # reused, not rebuilt


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"GANSR_WINOGRAD": "0"}, "disabled by GANSR_WINOGRAD=0"),
        ({"CC": "no-such-compiler-here"}, "no C compiler found"),
        ({"CC": "false"}, "kernel build failed: false failed"),
    ],
)
def test_without_the_kernel_models_fall_back_to_onednn(
    fresh_kernel_state: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], reason: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert not winograd.available() and winograd.status().startswith(reason)
    with pytest.raises(RuntimeError, match="not available"):
        winograd.conv3x3(torch.randn(1, 32, 4, 4), torch.randn(36, 32, 32))
    model = dense_rrdbnet()
    fused = model.fuse_for_inference()
    assert not fused.blocks[0][0].dense and fused.conv_body.winograd_weight is None
    x = torch.rand(1, 3, 12, 10)
    with torch.inference_mode():
        assert (fused(x) - naive_forward(model, x)).abs().max().item() < 1e-5
    assert not list(fresh_kernel_state.glob("kernels/*"))  # nothing built, no temporary left


# --------------------------------------------------------------------------- fused models


def dense_rrdbnet() -> torch.nn.Module:
    """An rrdbnet narrow enough for tests but with widths the kernel takes (32 and 32)."""
    torch.manual_seed(0)
    return models.create("rrdbnet", num_feat=32, num_grow_ch=32, num_block=2)


def trained_like_compact() -> torch.nn.Module:
    """A compact model whose PReLUs have distinct per-channel slopes (as after training)."""
    torch.manual_seed(0)
    model = models.create("compact", num_feat=32, num_conv=4, scale=4)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.PReLU):
                m.weight.uniform_(-0.3, 0.6)
    return model


@needs_kernel
@pytest.mark.parametrize("arch", ["rrdbnet", "srresnet", "msrresnet", "compact"])
def test_fused_models_on_the_kernel_equal_the_naive_path(butterfly_lr: torch.Tensor, arch: str) -> None:
    torch.manual_seed(0)
    if arch == "rrdbnet":
        model = dense_rrdbnet()
    elif arch == "compact":
        model = trained_like_compact()
    else:
        model = models.create(arch, num_feat=32, num_block=3)
    ref = naive_forward(model, butterfly_lr[None])
    fast = prepare_model(model)
    net = fast.net
    if arch == "rrdbnet":
        assert net.blocks[0][0].dense and net.blocks[0][0].convs[4].winograd_weight is not None
        net.tail_tile = 8
    convs = [m for m in net.modules() if isinstance(m, FusedConv2d)]
    assert sum(c.winograd_weight is not None for c in convs) >= len(convs) - 4  # all but thin/odd ones
    out = fast(butterfly_lr[None])
    assert (out - ref).abs().max().item() < 5e-5  # far inside 1/255
    flipped = (out.clamp(0, 1) * 255).round() != (ref.clamp(0, 1) * 255).round()
    assert flipped.float().mean().item() < 1e-3


@needs_bf16
def test_bf16_fused_rrdbnet_on_the_kernel_stays_close(butterfly_lr: torch.Tensor) -> None:
    model = dense_rrdbnet()
    ref = naive_forward(model, butterfly_lr[None])
    fast = prepare_model(model, precision="bf16")
    assert (
        fast.net.blocks[0][0].dense and fast.net.blocks[0][0].convs[0].winograd_weight.dtype == torch.bfloat16
    )
    err = (fast(butterfly_lr[None]) - ref).abs()
    assert 0 < err.mean().item() < 2e-3 and err.max().item() < 4 / 255


@needs_bf16
def test_bf16_fused_compact_on_the_kernel_stays_close(butterfly_lr: torch.Tensor) -> None:
    model = trained_like_compact()
    ref = naive_forward(model, butterfly_lr[None])
    fast = prepare_model(model, precision="bf16")
    assert fast.net.convs[1].winograd_weight.dtype == torch.bfloat16 and fast.net.convs[1].slopes is not None
    err = (fast(butterfly_lr[None]) - ref).abs()
    assert 0 < err.mean().item() < 2e-3 and err.max().item() < 4 / 255


@pytest.fixture(scope="module")
def butterfly_lr(set5: Path) -> torch.Tensor:
    from gansr.data.io import read_image

    return read_image(set5 / "butterfly.png").pixels[:, 100:137, 60:90].contiguous()  # 37x30: odd sizes
