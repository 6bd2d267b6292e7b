"""The training loop end to end on tiny settings: every preset, run folders, non-finite losses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gansr.cli import main
from gansr.train.logging import read_jsonl

FAST = ["train.log_every=1", "train.val_every=2", "train.ckpt_every=2", "train.val_max_images=4",
        "train.sample_images=2", "train.plot_every=1000", "data.workers=0", "device=cpu"]  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


def _run(capsys: pytest.CaptureFixture[str], out: Path, config: str, *overrides: str) -> tuple[Path, str]:
    code = main(["train", config, "--out", str(out), "--quiet", "--set", *FAST, *overrides])
    err = capsys.readouterr().err
    assert code == 0, err
    (run_dir,) = out.iterdir()
    return run_dir, err


def _check_run_folder(run_dir: Path, iterations: int) -> list[dict]:
    from gansr import models

    names = {p.name for p in run_dir.iterdir()}
    assert {
        "config.yaml",
        "log.jsonl",
        "log.csv",
        "checkpoints",
        "samples",
        "plots",
        "model.safetensors",
    } <= names
    records = read_jsonl(run_dir / "log.jsonl")
    train = [r for r in records if r["event"] == "train"]
    assert [r["it"] for r in train] == list(range(1, iterations + 1))
    assert all(np.isfinite(r["g_total"]) for r in train)
    val = [r for r in records if r["event"] == "val"]
    assert val[0]["it"] == 0 and val[-1]["it"] == iterations
    assert {"val_psnr", "val_ssim", "val_mse", "bicubic_psnr", "bicubic_ssim", "bicubic_mse"} <= set(val[-1])
    assert (run_dir / "checkpoints" / f"iter_{iterations:08d}.pt").is_file()
    assert (run_dir / "checkpoints" / "best.pt").is_file()
    assert (run_dir / "plots" / "losses.png").is_file() and (run_dir / "plots" / "metrics.png").is_file()
    with Image.open(run_dir / "samples" / f"iter_{iterations:08d}.png") as grid:
        assert grid.size[0] > grid.size[1] > 0
    model = models.load(run_dir / "model.safetensors")  # the EMA generator, self-describing
    assert model.metadata["iterations"] == iterations
    return records


def test_mnist_preset_runs_and_fills_the_run_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, shared_data: Path
) -> None:
    run_dir, _ = _run(
        capsys, tmp_path, "mnist_x4", f"data.root={shared_data / 'mnist'}", "data.batch_size=8",
        "model.g.kwargs.num_feat=8", "model.d.kwargs.num_feat=8", "train.gan.iters=4",
    )  # fmt: skip
    records = _check_run_folder(run_dir, 4)
    train = [r for r in records if r["event"] == "train"]
    assert {"g_mse", "g_lsgan", "d_loss", "lr_g", "lr_d"} <= set(train[0])
    val = [r for r in records if r["event"] == "val"]
    assert val[-1]["val_images"] == 4
    # MNIST validates on the test split: 1x28x28 digits, no border crop
    assert 0 < val[-1]["bicubic_psnr"] < 40
    csv_header = (run_dir / "log.csv").read_text().splitlines()[0].split(",")
    assert {"it", "event", "g_total", "val_psnr"} <= set(csv_header)


def test_vaegan_preset_runs_both_phases(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, shared_data: Path
) -> None:
    run_dir, _ = _run(
        capsys, tmp_path, "vaegan_cppn_mnist", f"data.root={shared_data / 'mnist'}", "data.batch_size=4",
        "model.g.kwargs={latent_dim: 4, num_feat: 4, cppn_width: 8, cppn_depth: 1}",
        "model.d.kwargs.num_feat=4", "train.pretrain.iters=2", "train.gan.iters=2",
    )  # fmt: skip
    records = _check_run_folder(run_dir, 4)
    phases = [
        (r["phase"], sorted(k for k in r if k.startswith("g_"))) for r in records if r["event"] == "train"
    ]
    assert phases[0] == ("pretrain", ["g_kl", "g_mse", "g_total"])
    assert phases[-1] == ("gan", ["g_kl", "g_reconstruction", "g_total", "g_vanilla"])


def _write_stl10(folder: Path, split: str, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    # smooth random images in the real layout: N x 3 x 96 x 96 uint8, each channel column-major
    base = rng.integers(0, 256, size=(count, 3, 12, 12), dtype=np.uint8)
    images = base.repeat(8, axis=2).repeat(8, axis=3)  # (N, 3, y, x)
    (folder / f"{split}_X.bin").write_bytes(np.ascontiguousarray(images.transpose(0, 1, 3, 2)).tobytes())


def test_msrgan_stl10_preset_with_wgan_gp(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    stl = tmp_path / "stl10" / "stl10_binary"
    stl.mkdir(parents=True)
    _write_stl10(stl, "train", 6, 0)
    _write_stl10(stl, "test", 2, 1)
    run_dir, _ = _run(
        capsys, tmp_path / "runs", "msrgan_stl10_x4", f"data.root={tmp_path / 'stl10'}", "data.batch_size=2",
        "model.g.kwargs={num_feat: 8, kernels: [3, 5], num_block: 1, convs_per_block: 2}",
        "model.d.kwargs={num_feat: 8, num_down: 2}", "train.gan.iters=3",
    )  # fmt: skip
    records = _check_run_folder(run_dir, 3)
    train = [r for r in records if r["event"] == "train"]
    assert all(r["d_gp"] >= 0 for r in train) and "g_ssim" in train[0] and "g_wgan_gp" in train[0]
    assert train[-1]["epoch"] == pytest.approx(3 * 5 / 3)  # n_critic=5 batches per iteration, 3 per epoch
    assert [r["val_images"] for r in records if r["event"] == "val"][-1] == 2


def _folder_overrides(shared_data: Path) -> list[str]:
    # train on a few BSDS500 training photos, validate on one Set5 image (never a training image)
    return [f"data.root={shared_data / 'bsds500' / 'train'}", "data.max_images=4", "data.patch_size=32",
            "data.batch_size=2", f"data.val_folder={shared_data / 'Set5'}", "train.val_max_images=1",
            "train.sample_images=1"]  # fmt: skip


def test_srgan_preset_falls_back_without_vgg_weights(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gansr.losses

    monkeypatch.setattr(gansr.losses, "find_vgg19_weights", lambda: None)
    run_dir, err = _run(
        capsys, tmp_path, "srgan_x4", *_folder_overrides(shared_data),
        "model.g.kwargs={num_feat: 8, num_block: 1}", "model.d.kwargs={num_feat: 8, dense: 16}",
        "train.pretrain.iters=1", "train.gan.iters=3",
    )  # fmt: skip
    records = _check_run_folder(run_dir, 4)
    notes = [r["message"] for r in records if r["event"] == "note"]
    assert len(notes) == 1 and notes[0].startswith(
        "VGG19 weights not found: train.gan.losses uses the fallback"
    )
    assert "ssim(1) + feature_matching(1)" in notes[0] and err == ""  # --quiet: logged, not printed
    gan = [r for r in records if r["event"] == "train" and r["phase"] == "gan"]
    assert {"g_ssim", "g_feature_matching", "g_vanilla"} <= set(gan[0]) and "g_perceptual" not in gan[0]
    val = [r for r in records if r["event"] == "val"][-1]
    assert val["val_images"] == 1 and 15 < val["bicubic_psnr"] < 40  # Set5 baby at x4, 4-pixel border crop


def test_esrgan_preset_with_a_random_weight_vgg(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, shared_data: Path
) -> None:
    run_dir, _ = _run(
        capsys, tmp_path, "esrgan_x4", *_folder_overrides(shared_data),
        "model.g.kwargs={num_feat: 8, num_block: 1, num_grow_ch: 4}",
        "model.d.kwargs={num_feat: 8, dense: 16}", "train.gan.losses.1.pretrained=false",
        "train.pretrain.iters=2", "train.gan.iters=2",
    )  # fmt: skip
    records = _check_run_folder(run_dir, 4)
    train = [r for r in records if r["event"] == "train"]
    assert [r["phase"] for r in train] == ["pretrain", "pretrain", "gan", "gan"]
    assert sorted(k for k in train[0] if k.startswith("g_")) == ["g_l1", "g_total"]
    assert {"g_l1", "g_perceptual", "g_ragan", "d_loss"} <= set(train[-1])
    assert not [r for r in records if r["event"] == "note"]


def test_bf16_autocast_channels_last_and_grad_clip(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, shared_data: Path
) -> None:
    common = [f"data.root={shared_data / 'mnist'}", "data.batch_size=4", "model.g.kwargs.num_feat=4",
              "model.d.kwargs.num_feat=4", "train.gan.iters=2", "train.val_every=2"]  # fmt: skip
    fp32, _ = _run(capsys, tmp_path / "fp32", "mnist_x4", *common)
    engine = ["train.amp=bf16", "train.channels_last=true", "train.grad_clip=0.5"]
    bf16, _ = _run(capsys, tmp_path / "bf16", "mnist_x4", *common, *engine)
    _check_run_folder(bf16, 2)
    first = [[r for r in read_jsonl(run / "log.jsonl") if r["event"] == "train"][0] for run in (fp32, bf16)]
    # same data and initialisation; bf16 arithmetic changes the losses a little, not a lot
    assert first[0]["g_mse"] != first[1]["g_mse"]
    assert first[1]["g_mse"] == pytest.approx(first[0]["g_mse"], rel=0.05)
    # amp_scope d: only D runs in bf16, so G's first output (before any G update) is the fp32 one.
    d_only, _ = _run(capsys, tmp_path / "bf16_d", "mnist_x4", *common, "train.amp=bf16", "train.amp_scope=d")
    first_d = [r for r in read_jsonl(d_only / "log.jsonl") if r["event"] == "train"][0]
    assert first_d["g_mse"] == pytest.approx(first[0]["g_mse"], rel=1e-6)
    assert first_d["d_loss"] != first[0]["d_loss"]


def test_nonfinite_losses_skip_steps_then_stop_the_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, shared_data: Path
) -> None:
    code = main(
        ["train", "mnist_x4", "--out", str(tmp_path), "--quiet", "--set", *FAST,
         f"data.root={shared_data / 'mnist'}", "data.batch_size=4", "model.g.kwargs.num_feat=4",
         "model.d.kwargs.num_feat=4", "train.gan.iters=50", "train.gan.optimizer.lr=1e30",
         "train.gan.d_optimizer.lr=1e30", "train.max_nonfinite=3"]
    )  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert (
        err.startswith("gansr: error: training stopped at iteration ")
        and "3 non-finite losses in a row" in err
    )
    (run_dir,) = tmp_path.iterdir()
    bad = [r for r in read_jsonl(run_dir / "log.jsonl") if r["event"] == "nonfinite"]
    assert [r["streak"] for r in bad][-3:] == [1, 2, 3]


def test_optimizer_step_skips_non_finite_losses() -> None:
    from gansr.train.distributed import DistContext
    from gansr.train.step import optimizer_step

    ctx = DistContext(0, 1, 0, torch.device("cpu"))
    model = torch.nn.Linear(2, 1)
    before = model.weight.detach().clone()
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    loss = model(torch.ones(1, 2)).sum() * float("nan")
    assert not optimizer_step(loss, opt, model, scaler, None, ctx)
    assert torch.equal(model.weight, before) and model.weight.grad is None
    assert optimizer_step(model(torch.ones(1, 2)).sum(), opt, model, scaler, 1.0, ctx)
    assert not torch.equal(model.weight, before)
