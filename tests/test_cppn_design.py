"""Reference design 001 as its document describes it: 26x26 -> 28x28 (a non-integer scale), the
CPPN's f(z, x, y, r) form, and drawing from a latent alone (API and ``gansr sample``), at any size
up to 1800x1800."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import gansr
from gansr import models
from gansr.cli import main
from gansr.data import MNISTDataset, read_image
from gansr.errors import ConfigError
from gansr.models.vae_cppn import VAECPPN, random_cppn
from gansr.train.build import build_parts
from gansr.train.config import load_config
from gansr.train.logging import read_jsonl

pytestmark = pytest.mark.usefixtures("one_thread")


TINY = {"latent_dim": 4, "num_feat": 4, "cppn_width": 8, "cppn_depth": 1}


def test_non_integer_scale_and_the_two_forms() -> None:
    torch.manual_seed(0)
    lr = torch.rand(2, 1, 26, 26)
    for form in ("lr_features", "latent"):
        net = VAECPPN(scale=28 / 26, form=form, **TINY).eval()
        assert net(lr).shape == (2, 1, 28, 28) and net(lr[..., :13, :13]).shape == (2, 1, 14, 14)
        assert net(lr, size=(100, 100)).shape == (2, 1, 100, 100)
        again = models.create(net.arch, **net.config)  # the config rebuilds the same structure
        assert again.form == form and again.exact_scale == net.exact_scale == 28 / 26 and net.scale == 1
        again.load_state_dict(net.state_dict())
        assert torch.equal(again.eval()(lr), net(lr))
    latent = VAECPPN(form="latent", **TINY)
    assert latent.cppn_lr is None and latent.config["form"] == "latent"
    # Models trained before the option (the shipped one) load as the default form.
    shipped = models.load("mnist-cppn-x4")
    assert shipped.form == "lr_features" and shipped.config["form"] == "lr_features"
    for bad in ({"form": "coords"}, {"scale": 0}, {"scale": "4"}, {"scale": True}):
        with pytest.raises(ConfigError, match=r"model 'vae_cppn'"):
            VAECPPN(**bad)


def test_sampling_from_the_prior_at_any_size() -> None:
    net = VAECPPN(form="latent", **TINY).eval()
    a = net.sample(3, (20, 30), generator=torch.Generator().manual_seed(1))
    b = net.sample(3, (20, 30), generator=torch.Generator().manual_seed(1))
    assert a.shape == (3, 1, 20, 30) and torch.equal(a, b) and 0 < a.min() and a.max() < 1
    z = torch.randn(2, TINY["latent_dim"])
    big = net.sample(size=(1800, 1800), z=z[:1])
    assert big.shape == (1, 1, 1800, 1800)
    # One latent, one image: the 1800x1800 render shrunk back matches the 28x28 render.
    small = F.interpolate(big, size=(28, 28), mode="area")
    assert torch.allclose(small, net.sample(size=(28, 28), z=z[:1]), atol=0.02)
    with pytest.raises(ConfigError, match=r"lr_features form\) reads an LR image"):
        models.load("mnist-cppn-x4").sample(1, (28, 28))
    with pytest.raises(ConfigError, match=r"z must be \(N, 4\)"):
        net.sample(z=torch.zeros(1, 5))
    with pytest.raises(ConfigError, match="num must be a positive integer"):
        net.sample(0)


def test_cond_dropout_trains_both_ways_and_draws_from_the_prior() -> None:
    """With ``cond_dropout`` an lr_features model learns to draw from ``z`` alone on the samples
    whose LR conditioning is zeroed: those render exactly as ``render(z, None)``, the others read
    the LR; eval mode never drops, and such a model (only) can sample from the prior."""
    torch.manual_seed(0)
    net = VAECPPN(scale=28 / 26, cond_dropout=0.5, **TINY)
    lr = torch.rand(16, 1, 26, 26)
    sr, mu, logvar = net.train()(lr, return_latent=True, generator=torch.Generator().manual_seed(3))
    # Replay the forward's draws: eps for the latents first, then the keep mask.
    gen = torch.Generator().manual_seed(3)
    z = mu + torch.randn(mu.shape, generator=gen) * torch.exp(0.5 * logvar)
    keep = torch.rand(16, generator=gen) >= 0.5
    assert 0 < keep.sum() < 16
    with torch.no_grad():
        alone = net.render(z, None, (28, 28))
    assert torch.allclose(sr[~keep], alone[~keep], atol=1e-6)
    assert not torch.allclose(sr[keep], alone[keep], atol=1e-3)
    net.eval()
    assert torch.equal(net(lr), net(lr))  # no dropping (nor noise) in eval mode
    drawn = net.sample(2, (40, 40), generator=torch.Generator().manual_seed(0))
    assert drawn.shape == (2, 1, 40, 40) and torch.isfinite(drawn).all()
    again = models.create(net.arch, **net.config)
    assert again.cond_dropout == 0.5 and VAECPPN(**TINY).config["cond_dropout"] == 0
    with pytest.raises(ConfigError, match="lr_features form only"):
        VAECPPN(form="latent", cond_dropout=0.2)
    for bad in (1.0, -0.1, True, "0.2"):
        with pytest.raises(ConfigError, match=r"cond_dropout must be in \[0, 1\)"):
            VAECPPN(cond_dropout=bad)
    with pytest.raises(ConfigError, match=r"lr_features form\) reads an LR image"):
        VAECPPN(**TINY).eval().sample(1, (28, 28))


def test_random_cppn_draws_gray_and_colour_1800() -> None:
    for channels in (1, 3):
        art = random_cppn(channels, width=16, depth=3, seed=channels)
        img = art.sample(1, (1800, 1800), generator=torch.Generator().manual_seed(0))
        assert img.shape == (1, channels, 1800, 1800)
        assert float(img.max() - img.min()) > 0.5  # light and dark shapes, not a flat field
    same = random_cppn(3, seed=5).sample(1, (16, 16), generator=torch.Generator().manual_seed(0))
    assert torch.equal(
        same, random_cppn(3, seed=5).sample(1, (16, 16), generator=torch.Generator().manual_seed(0))
    )
    with pytest.raises(ConfigError, match="channels must be 1"):
        random_cppn(2)


def test_gansr_sample_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["sample", "-o", str(tmp_path / "art.png"), "--size", "64x48", "--seed", "3"]) == 0
    art = read_image(tmp_path / "art.png").pixels
    assert art.shape == (3, 48, 64)
    assert main(["sample", "-o", str(tmp_path / "gray.png"), "--size", "40", "--channels", "1"]) == 0
    assert read_image(tmp_path / "gray.png").pixels.shape == (1, 40, 40)
    trained = models.save(VAECPPN(form="latent", **TINY), tmp_path / "latent.safetensors")
    code = main(
        ["sample", "--model", str(trained), "--num", "2", "--size", "30x20", "-o", str(tmp_path / "d.png")]
    )
    assert code == 0
    out = capsys.readouterr().out.split()
    assert out[-2:] == [str(tmp_path / "d-0.png"), str(tmp_path / "d-1.png")]
    assert read_image(tmp_path / "d-1.png").pixels.shape == (1, 20, 30)
    for argv, message in (
        (["--model", "mnist-cppn-x4"], "cannot draw from a latent alone"),
        (["--model", "mnist-x4"], "has no latent to sample"),
        (["--model", str(trained), "--channels", "3"], "apply to --model random only"),
        (["--size", "100000x100000"], "pixels"),
    ):
        assert main(["sample", "-o", str(tmp_path / "x.png"), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "x.png").exists()


def test_preset_follows_the_document(shared_data: Path) -> None:
    cfg = load_config("vaegan_cppn_mnist", [f"data.root={shared_data / 'mnist'}"])
    assert cfg.data.scale == pytest.approx(28 / 26) and cfg.data.batch_size == 32
    assert cfg.model.g.arch == "vae_cppn"
    parts = build_parts(cfg)
    item = parts.val_items[0]
    assert item.lr.shape == (1, 26, 26) and item.hr.shape == (1, 28, 28) and item.name == "t10k-08000"
    assert len(parts.source) == 8000
    lr, hr = parts.source.get(0)
    assert lr is None and hr.shape == (1, 28, 28)
    assert parts.g(item.lr[None]).shape == (1, 1, 28, 28)
    # The shipped mnist-cppn's recipe, x4 on the MNIST protocol, is its own preset.
    x4 = load_config("vaegan_cppn_mnist_x4")
    assert (x4.data.scale, x4.data.degradation, x4.model.g.kwargs) == (4, "mnist", {"latent_dim": 32})


def test_non_integer_scale_is_checked_at_the_edge(shared_data: Path) -> None:
    mnist = f"data.root={shared_data / 'mnist'}"
    cases = {
        ("vaegan_cppn_mnist", "data.scale=abc"): r"^data\.scale: expected a number or a fraction",
        ("vaegan_cppn_mnist", "data.scale=28/0"): r"^data\.scale: expected a number or a fraction",
        ("vaegan_cppn_mnist", "data.scale=-2.5"): r"^data\.scale: must be a positive number",
        (
            "srresnet_x4",
            "data.scale=1.5",
        ): r"^data\.scale: a non-integer scale \(1\.5\) needs data\.kind 'mnist'",
        ("vaegan_cppn_mnist", "data.patch_size=28"): r"^data\.patch_size: needs an integer data\.scale",
        ("vaegan_cppn_mnist", "data.val_folder=/tmp"): r"^data\.val_folder: a non-integer data\.scale",
    }
    for (preset, override), message in cases.items():
        with pytest.raises(ConfigError, match=message):
            load_config(preset, [override])
    # A fixed-scale generator cannot do 26 -> 28; the degradation has to shrink by data.scale.
    with pytest.raises(ConfigError, match=r"^data\.scale: model 'mnist_sr': scale must be"):
        build_parts(load_config("vaegan_cppn_mnist", [mnist, "model.g.arch=mnist_sr", "model.g.kwargs={}"]))
    with pytest.raises(ConfigError, match=r"^data\.degradation: shrinks by 4, but data\.scale is 1\.07692"):
        build_parts(load_config("vaegan_cppn_mnist", [mnist, "data.degradation=mnist"]))
    with pytest.raises(ConfigError, match=r"^data\.degradation: shrinks by 1\.07692, but data\.scale is 4$"):
        build_parts(load_config("vaegan_cppn_mnist", [mnist, "data.scale=4"]))
    assert load_config("vaegan_cppn_mnist", ["data.scale=2.0"]).data.scale == 2  # whole: an int
    # MNIST's dataset takes any scale with a matching degradation, and only x4 without one.
    data = MNISTDataset(
        shared_data / "mnist", split="test", scale=28 / 26, degradation=[{"type": "resize", "scale": 13 / 14}]
    )
    assert data[0]["lr"].shape == (1, 26, 26)
    with pytest.raises(ConfigError, match="the MNIST protocol is x4"):
        MNISTDataset(shared_data / "mnist", scale=2)


def test_train_26_to_28_then_render_1800(
    capsys: pytest.CaptureFixture[str], shared_data: Path, tmp_path: Path
) -> None:
    code = main([
        "train", "vaegan_cppn_mnist", "--out", str(tmp_path / "runs"), "--quiet", "--set",
        f"data.root={shared_data / 'mnist'}", "data.batch_size=4", "model.g.kwargs.form=latent",
        "model.g.kwargs.cond_dropout=0",
        "model.g.kwargs.latent_dim=4", "model.g.kwargs.num_feat=4", "model.g.kwargs.cppn_width=8",
        "model.g.kwargs.cppn_depth=1", "model.d.kwargs.num_feat=4", "train.pretrain.iters=2",
        "train.gan.iters=2", "train.val_every=4", "train.ckpt_every=4", "train.val_max_images=8",
        "train.sample_images=2", "train.log_every=1", "train.plot_every=1000", "device=cpu",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    (run,) = (tmp_path / "runs").iterdir()
    records = read_jsonl(run / "log.jsonl")
    assert [r["phase"] for r in records if r["event"] == "train"] == ["pretrain"] * 2 + ["gan"] * 2
    val = [r for r in records if r["event"] == "val"][-1]
    assert val["val_images"] == 8 and 20 < val["bicubic_psnr"] < 40  # 26 -> 28 bicubic is close
    net = models.load(run / "model.safetensors")
    assert net.exact_scale == pytest.approx(28 / 26) and net.form == "latent"
    digit = MNISTDataset(
        shared_data / "mnist", split="test", scale=28 / 26, degradation=[{"type": "resize", "scale": 13 / 14}]
    )[0]["lr"]
    assert net(digit[None]).shape == (1, 1, 28, 28)  # 28 / 26 by default
    up = gansr.Upscaler(model=net)
    for side in (28, 100, 1800):
        assert up.upscale(digit, size=(side, side)).shape == (1, side, side)
    drawn = net.sample(1, (1800, 1800), generator=torch.Generator().manual_seed(0))
    assert drawn.shape == (1, 1, 1800, 1800) and torch.isfinite(drawn).all()


def test_the_upscaler_renders_a_non_integer_model_at_its_own_size() -> None:
    """A 26 -> 28 model upscales a 26x26 digit to 28x28 with no size given (not to 26x26, the
    nearest integer scale), and to any size when asked."""
    import gansr

    net = VAECPPN(scale=28 / 26, **TINY).eval()
    up = gansr.Upscaler(model=net)
    digit = torch.rand(1, 1, 26, 26)
    assert up.output_size(26, 26) == (28, 28)
    assert up.upscale(digit).shape == (1, 1, 28, 28)
    assert up.upscale(digit, size=(100, 100)).shape == (1, 1, 100, 100)
