"""The fast inference path (fused generators, engine, tile planner) and ``gansr speed``.

Nothing here is timed: the tests check that the fast path computes what the naive path computes
(on real images), that the fused building blocks are exact rewrites, that the planner respects
its budget while minimizing overlap work, and that the bench measures and reports what it says.
"""

from __future__ import annotations

import gc
import json
import math
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gansr import models
from gansr.cli import main
from gansr.data.io import read_image
from gansr.engine.fast import naive_forward, prepare_model, resolve_precision
from gansr.engine.tiles import plan, run_exact, run_tiled
from gansr.errors import ConfigError
from gansr.models.fused import (
    FusedConv2d,
    FusedNearestUpConv,
    conv_after_pixel_shuffle,
    tail_halo,
)
from gansr.speed.memory import MemoryPeak
from gansr.speed.peak import PeakConv
from gansr.speed.runner import BenchOptions, bench_input, model_macs, run_inference_bench
from gansr.speed.training import TrainBenchOptions, run_train_bench

ONE_LEVEL = 1 / 255
BF16 = resolve_precision("bf16", "cpu", warn=False) == "bf16"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def butterfly(set5: Path) -> torch.Tensor:
    """A real 48x40 LR input: a crop of Set5's butterfly (sharp edges everywhere)."""
    return read_image(set5 / "butterfly.png").pixels[:, 100:148, 60:100].contiguous()


def small_rrdbnet(scale: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return models.create("rrdbnet", num_feat=16, num_grow_ch=8, num_block=2, scale=scale)


def small_srresnet(scale: int = 4, norm: str = "batch") -> nn.Module:
    """A narrow SRResNet whose BatchNorms hold real (non-default) statistics and PReLU slopes."""
    torch.manual_seed(0)
    model = models.create("srresnet", num_feat=16, num_block=3, scale=scale, norm=norm)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(4, 3, 16, 16) * 2)
        for m in model.modules():
            if isinstance(m, nn.PReLU):
                m.weight.uniform_(0.05, 0.4)
    return model.eval()


# --------------------------------------------------------------------------- fast == naive


def small_msrresnet(scale: int = 4, skip: str = "bilinear", tail: str = "basicsr") -> nn.Module:
    torch.manual_seed(0)
    model = models.create("msrresnet", num_feat=16, num_block=2, scale=scale, upsample_skip=skip, tail=tail)
    if tail == "subpixel":  # its init makes the tail output ~0: give the comparison real values
        with torch.no_grad():
            model.upconv1.weight.normal_(0, 0.1)
    return model


def small_compact(scale: int = 4, skip: str = "bicubic") -> torch.nn.Module:
    """A narrow compact model (oneDNN widths) whose per-channel PReLUs are not all equal."""
    torch.manual_seed(0)
    model = models.create("compact", num_feat=16, num_conv=3, scale=scale, upsample_skip=skip)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.PReLU):
                m.weight.uniform_(-0.3, 0.6)
        model.body[-1].weight.normal_(0, 0.1)  # its init makes the residual ~0: give it real values
    return model


@pytest.mark.parametrize(
    "build",
    [
        small_rrdbnet,
        lambda: small_rrdbnet(2),
        lambda: small_rrdbnet(8),
        small_srresnet,
        small_msrresnet,
        lambda: small_msrresnet(3, "bicubic"),
        lambda: small_msrresnet(4, "bicubic", "subpixel"),
        lambda: small_compact(4, "nearest"),
        lambda: small_compact(4, "bilinear"),
        lambda: small_compact(3, "bicubic"),
    ],
)
def test_fast_path_equals_the_naive_path_on_a_real_image(butterfly: torch.Tensor, build) -> None:
    model = build()
    ref = naive_forward(model, butterfly[None])[0]
    fast = prepare_model(model)
    assert fast.fused and fast.channels_last and fast.precision == "fp32"
    fast.net.tail_tile = 8  # several tail tiles, so the halos are exercised too
    out = fast(butterfly[None])[0]
    assert out.shape == ref.shape and out.dtype == torch.float32
    assert (out - ref).abs().max().item() < 1e-5
    as_uint8 = (out.clamp(0, 1) * 255).round() != (ref.clamp(0, 1) * 255).round()
    assert as_uint8.float().mean().item() < 1e-3  # only values sitting on a rounding edge may flip


def test_fast_srresnet_without_batchnorm_and_at_every_scale(butterfly: torch.Tensor) -> None:
    for scale in (2, 3, 8):
        model = small_srresnet(scale, norm="none")
        ref = naive_forward(model, butterfly[None, :, :20, :24])
        out = prepare_model(model)(butterfly[None, :, :20, :24])
        assert (out - ref).abs().max().item() < 1e-5, scale


def test_run_tiled_whole_and_tiled_match_naive(butterfly: torch.Tensor) -> None:
    model = small_rrdbnet()
    ref = naive_forward(model, butterfly[None])[0]
    fast = prepare_model(model)
    whole = run_tiled(fast, butterfly)
    assert (whole - ref).abs().max().item() < 1e-5
    tiled = run_tiled(fast, butterfly, tile_plan=plan(fast, 48, 40, tile=16, overlap=16))
    assert (tiled - ref).abs().max().item() <= ONE_LEVEL


@pytest.mark.skipif(not BF16, reason="no native bf16 on this CPU")
def test_bf16_fast_path_stays_close(butterfly: torch.Tensor) -> None:
    model = small_rrdbnet()
    ref = naive_forward(model, butterfly[None])
    out = prepare_model(model, precision="bf16")(butterfly[None])
    assert out.dtype == torch.float32
    err = (out - ref).abs()
    assert err.mean().item() < 2e-3 and err.max().item() < 4 * ONE_LEVEL  # rounding, not garbage
    assert err.max().item() > 0  # it really ran in bf16


def test_unfused_models_run_channels_last_with_precision_fallback(butterfly: torch.Tensor) -> None:
    torch.manual_seed(0)
    model = models.create("msrgan", num_feat=16, num_block=2)
    ref = naive_forward(model, butterfly[None])
    with pytest.warns(UserWarning, match="fp16 needs a GPU"):
        fast = prepare_model(model, precision="fp16")
    assert fast.precision == "fp32" and not fast.fused and fast.channels_last
    assert (fast(butterfly[None]) - ref).abs().max().item() < 1e-5
    assert fast.bytes_per_pixel() > 0 and fast.fixed_bytes() == 0
    with pytest.raises(ConfigError):
        prepare_model(model, precision="fp8")


def test_upscaler_uses_the_engine(butterfly: torch.Tensor) -> None:
    from gansr.upscale import Upscaler

    model = small_rrdbnet()
    ref = naive_forward(model, butterfly[None])[0].clamp(0, 1)
    up = Upscaler(model, device="cpu", tile=0)
    assert up._fast.fused
    assert (up.upscale(butterfly) - ref).abs().max().item() < 1e-5


# --------------------------------------------------------------------------- fused building blocks


@pytest.mark.parametrize("grad", [False, True])
def test_fused_conv_folds_batchnorm_scale_activation_and_residual(grad: bool) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 6, 3, padding=1)
    bn = nn.BatchNorm2d(6).train()
    with torch.no_grad():
        bn(conv(torch.randn(4, 8, 10, 10) * 3))  # real running statistics
    bn.eval()
    x = torch.randn(2, 8, 12, 9).contiguous(memory_format=torch.channels_last)
    residual = torch.randn(2, 6, 12, 9).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        base = bn(conv(x)) * 0.3
    fused_act = FusedConv2d(conv, bn=bn, scale=0.3, negative_slope=0.2)
    fused_res = FusedConv2d(conv, bn=bn, scale=0.3)
    fused_both = FusedConv2d(conv, bn=bn, scale=0.3, negative_slope=0.0)
    # grad mode takes the differentiable fallback, inference mode oneDNN's fused kernels.
    ctx = torch.enable_grad() if grad else torch.inference_mode()
    with ctx:
        xin = x.clone().requires_grad_(grad)
        got_act = fused_act(xin)
        got_res = fused_res(xin, residual=residual)
        got_both = fused_both(xin, residual=residual)
        acc = fused_res(xin)
        acc = fused_res.accumulate_(acc, xin)  # acc += conv(x) + bias: twice the plain output
    assert torch.allclose(got_act, F.leaky_relu(base, 0.2), atol=1e-5)
    assert torch.allclose(got_res, base + residual, atol=1e-5)
    assert torch.allclose(got_both, F.relu(base + residual), atol=1e-5)
    assert torch.allclose(acc, 2 * base, atol=1e-5)
    no_bias = FusedConv2d(conv, with_bias=False)
    with torch.inference_mode():
        acc2 = no_bias.accumulate_(no_bias(x), x)
    assert torch.allclose(acc2, 2 * F.conv2d(x, conv.weight, padding=1), atol=1e-5)


@pytest.mark.parametrize(("factor", "kernel"), [(2, 3), (2, 9), (3, 5), (4, 3)])
def test_conv_after_pixel_shuffle_is_the_same_convolution(factor: int, kernel: int) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(5, 3, kernel, padding=kernel // 2)
    x = torch.randn(1, 5 * factor * factor, 7, 6)
    w, b, pad = conv_after_pixel_shuffle(conv, factor)
    assert w.shape[:2] == (3 * factor * factor, 5 * factor * factor) and w.shape[-1] == 2 * pad + 1
    with torch.no_grad():
        ref = conv(F.pixel_shuffle(x, factor))
        got = F.pixel_shuffle(F.conv2d(x, w, b, padding=pad), factor)
    assert torch.allclose(got, ref, atol=1e-5)


@pytest.mark.parametrize("slope", [None, 0.2])
def test_nearest_upsample_conv_on_the_small_grid_is_the_same_convolution(slope: float | None) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 5, 3, padding=1)
    up = FusedNearestUpConv(conv, negative_slope=slope)
    assert up.conv.weight.shape == (20, 6, 2, 2)  # 4 phases, 2x2 taps: 4/9 of the work
    x = torch.randn(2, 6, 9, 7).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        ref = conv(F.interpolate(x, scale_factor=2, mode="nearest"))
        ref = ref if slope is None else F.leaky_relu(ref, slope)
        got = up(x)
    assert got.shape == ref.shape
    assert (got - ref).abs().max().item() < 1e-5  # borders included: zero padding maps to zero padding
    with pytest.raises(ValueError, match="3x3"):
        FusedNearestUpConv(nn.Conv2d(6, 5, 5, padding=2))


def test_tiles_with_the_computed_halo_are_exact_and_smaller_halos_are_not() -> None:
    torch.manual_seed(0)
    convs = nn.ModuleList(nn.Conv2d(4, 4, 3, padding=1) for _ in range(3))

    def stage(x: torch.Tensor) -> torch.Tensor:  # conv at x1, upsample, conv twice at x2
        x = convs[0](x)
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return convs[2](torch.tanh(convs[1](x)))

    halo = tail_halo([(1, 1), (1, 2), (1, 2)], 2)
    assert halo == 2  # 1 px at x1 = 2 output px, plus 1 + 1 at x2: 4 output px = 2 input px
    x = torch.randn(1, 4, 23, 19)
    with torch.no_grad():
        ref = stage(x)
        exact = run_exact(stage, x, scale=2, halo=halo, tile=5)
        short = run_exact(stage, x, scale=2, halo=halo - 1, tile=5)
    assert (exact - ref).abs().max().item() < 1e-6
    assert (short - ref).abs().max().item() > 1e-3


def test_rrdbnet_fused_form_keeps_no_concatenation_alive() -> None:
    fused = small_rrdbnet().fuse_for_inference()
    # conv_k of a dense block is split into k input slices (no torch.cat needed).
    parts = fused.blocks[0][0].parts
    assert [len(p) for p in parts] == [1, 2, 3, 4, 5]
    assert [p[0].weight.shape[1] for p in parts] == [16, 16, 16, 16, 16]
    assert fused.tail_halo == 2


# --------------------------------------------------------------------------- the planner


def test_plan_is_untiled_when_it_fits_else_least_overlap_within_budget() -> None:
    fast = prepare_model(models.create("rrdbnet", num_block=1))
    assert plan(fast, 500, 500).tile == 0  # a few hundred MB: whole image
    assert plan(fast, 500, 500, tile=0).tile == 0
    assert plan(fast, 500, 500, tile=33).tile == 33
    budget = fast.memory_bytes(600, 600)
    chosen = plan(fast, 1000, 700, budget_bytes=budget, overlap=16)
    assert chosen.tile > 0 and chosen.batch_size == 1  # CPUs gain nothing from batched tiles
    from gansr.engine.tiles import _tile_cost

    # A tile's pass shares the budget with the float32 output canvas of the whole image.
    tile_budget = budget - 3 * 1000 * 700 * 16 * 4
    assert tile_budget > budget // 4
    area, th, tw = _tile_cost(1000, 700, chosen.tile, 16, 1)
    assert fast.memory_bytes(th, tw) <= tile_budget
    # No other core size that fits computes fewer pixels.
    for core in range(32, 1001, 7):
        other, oh, ow = _tile_cost(1000, 700, core, 16, 1)
        if fast.memory_bytes(oh, ow) <= tile_budget:
            assert other >= area
    with pytest.raises(ConfigError):
        plan(fast, 10, 10, overlap=-1)


def test_memory_estimates_of_fused_models() -> None:
    full = prepare_model(models.create("rrdbnet", num_block=1))
    # 3 feature maps + 4 growth maps in fp32, plus the input: 1304 bytes per pixel.
    assert full.bytes_per_pixel() == (3 * 64 + 4 * 32) * 4 + 3 * 8
    assert full.memory_bytes(1024, 1024) < 1.5 * 2**30  # so 1024x1024 runs untiled (fast)
    assert plan(full, 2000, 2000, budget_bytes=3 << 29).tile > 0


# --------------------------------------------------------------------------- measurement pieces


def test_memory_peak_sees_a_transient_allocation() -> None:
    # Collect earlier tests' garbage first: a collection inside the block would free memory while
    # the block allocates, and the peak over the baseline would look smaller than 64 MiB.
    gc.collect()
    with MemoryPeak() as mem:
        block = torch.ones(64 << 20, dtype=torch.uint8)  # 64 MiB, touched
        del block
    assert mem.increase >= 60 << 20
    assert mem.peak >= mem.baseline


def test_peak_conv_counts_its_work() -> None:
    peak = PeakConv.build("fp32", channels=8, size=16, repeats=2)
    assert peak.flops == 2 * 8 * 8 * 9 * 16 * 16 * 2
    peak.run()
    assert peak.x.is_contiguous(memory_format=torch.channels_last)


def test_bench_input_is_the_real_photo_mirrored_to_size() -> None:
    small = bench_input(20, 30)
    assert small.shape == (3, 20, 30) and 0 <= small.min() and small.max() <= 1 and small.std() > 0.05
    big = bench_input(1100, 600)
    assert big.shape == (3, 1100, 600)
    assert torch.equal(big[:, 246:266, 241:271], small)  # both centred on the 512x512 photo
    assert torch.equal(big[:, 512, :], big[:, 510, :])  # mirrored about the last row


def test_macs_match_the_published_rrdbnet_count() -> None:
    macs = model_macs(models.create("rrdbnet", num_block=23), 256, 256)
    assert macs / 256**2 == pytest.approx(17.9e6, rel=0.005)


# --------------------------------------------------------------------------- the bench end to end


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models.save(small_rrdbnet(), tmp_path_factory.mktemp("bench") / "tiny")


def test_inference_bench_report(tiny_checkpoint: Path) -> None:
    opts = BenchOptions(
        model=str(tiny_checkpoint), sizes=((24, 20),), tiles=("auto", 0, 8), repeat=2, warmup=0
    )
    report = run_inference_bench(opts)
    assert report["model"]["arch"] == "rrdbnet" and report["model"]["scale"] == 4
    assert report["model"]["macs"] == model_macs(small_rrdbnet(), 24, 20)
    names = [c["name"] for c in report["cases"]]
    assert names[0] == "peak-fp32" and "naive" in names and "fast-fp32-auto=untiled" in names
    assert "fast-fp32-8" in names and "fast-fp32-untiled" not in names  # same plan as auto: once
    assert any("same plan" in n for n in report["notes"])
    for case in report["cases"]:
        assert len(case["times_s"]) == 2 and case["median_s"] > 0 and case["peak_rss_mb"] > 0
        if case["kind"] == "fast":
            exact = case["tiles"] == "untiled" and case["precision"] == "fp32"
            assert case["vs_naive"]["max_abs_diff_255"] < (0.01 if exact else 1)
            assert case["speedup_vs_naive"] > 0 and 0 < case["peak_ratio"]
    tiled = next(c for c in report["cases"] if c["name"] == "fast-fp32-8")
    assert tiled["tiles"]["count"] == 9 and tiled["tiles"]["overlap_work"] > 0
    with pytest.raises(ConfigError):
        BenchOptions(repeat=0)
    with pytest.raises(ConfigError):
        BenchOptions(tiles=("big",))


def test_cli_speed_json_and_table(tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["speed", "--model", str(tiny_checkpoint), "--size", "16x12", "--repeat", "1", "--warmup", "0"]
    assert main([*common, "--precision", "fp32", "--tiles", "auto", "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["input"] == {"height": 12, "width": 16} and report["output"] == {"height": 48, "width": 64}
    assert [c["name"] for c in report["cases"]] == ["peak-fp32", "naive", "fast-fp32-auto=untiled"]
    assert main([*common[:4], "16x12,20", *common[5:], "--precision", "fp32", "--no-naive", "-q"]) == 0
    table = capsys.readouterr().out
    assert "fast-fp32-auto=untiled@16x12" in table and "fast-fp32-auto=untiled@20x20" in table
    assert not any(line.startswith("naive") for line in table.splitlines())
    assert main([*common, "--repeat", "0", "-q"]) == 2
    assert "repeat must be >= 1" in capsys.readouterr().err


def test_cli_speed_quality_on_the_default_device(
    tiny_checkpoint: Path, set5: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["speed", "--model", str(tiny_checkpoint), "--size", "16", "--repeat", "1", "--warmup", "0"]
    assert main([*argv, "--precision", "fp32", "--quality", str(set5), "--json", "-q"]) == 0
    quality = json.loads(capsys.readouterr().out)["quality"]
    assert "fp32" in json.dumps(quality) and "psnr" in json.dumps(quality)


def test_training_bench_times_the_trainers_step_and_checks_quality(set5: Path, tmp_path: Path) -> None:
    from gansr.data.io import write_image

    val = tmp_path / "val"  # small real crops keep the validation quick
    for name in ("baby", "bird"):
        write_image(val / f"{name}.png", read_image(set5 / f"{name}.png").pixels[:, 64:128, 64:128])
    opts = TrainBenchOptions(
        batch_size=2,
        patch_size=32,
        steps=1,
        repeat=1,
        warmup=0,
        variants=("naive", "channels_last"),
        check_steps=1,
        check_pretrain_steps=1,
        val_folder=str(val),
        overrides=("model.g.kwargs.num_block=1",),
    )
    report = run_train_bench(opts)
    assert report["g"] == "srresnet" and report["d"] == "srgan_d" and report["batch_size"] == 2
    assert [v["name"] for v in report["variants"]] == ["naive", "channels_last"]
    assert all(v["median_steps_per_s"] > 0 for v in report["variants"])
    check = report["check"]["variants"]
    # Same initialisation, same batches: fp32 channels-last trains to the same weights (rounding).
    assert math.isfinite(check["naive"]["val_psnr"])
    assert abs(check["channels_last"]["psnr_change_db"]) < 0.01
    with pytest.raises(ConfigError):
        TrainBenchOptions(variants=("turbo",))


def test_training_bench_times_the_trainers_wgan_gp_step(set5: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The timed step is the trainer's own: all 5 critic steps of a WGAN-GP preset, with the penalty."""
    from gansr.train.step import TrainStep

    outputs = []
    step = TrainStep.__call__

    def recording(self: TrainStep, *args: object, **kwargs: object) -> object:
        outputs.append(step(self, *args, **kwargs))
        return outputs[-1]

    monkeypatch.setattr(TrainStep, "__call__", recording)
    opts = TrainBenchOptions(
        preset="msrgan_x4_bsds",
        data=str(set5),
        batch_size=2,
        patch_size=32,
        steps=1,
        repeat=1,
        warmup=0,
        variants=("naive",),
        overrides=("model.g.kwargs={num_feat: 8, num_block: 1}", "model.d.kwargs={num_feat: 8, num_down: 2}"),
    )
    report = run_train_bench(opts)
    assert report["g"] == "msrgan" and report["variants"][0]["median_steps_per_s"] > 0
    (out,) = outputs
    assert len(out.d_loss) == len(out.d_gp) == 5 and all(gp.item() > 0 for gp in out.d_gp)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert TrainBenchOptions().variants[0] == "naive"
