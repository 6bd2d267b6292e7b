"""gansr.train.config: presets, YAML, --set overrides, and one-line errors naming the dotted key."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gansr import models
from gansr.cli import main
from gansr.errors import ConfigError
from gansr.train.config import (
    Config,
    apply_override,
    config_from_dict,
    dump_yaml,
    load_config,
    parse_yaml,
    preset_names,
    to_dict,
)

PRESETS = [
    "esrgan_x4",
    "mnist_x4",
    "mnist_x4_plus",
    "msrgan_stl10_x4",
    "msrgan_x4_bsds",
    "realsr_x4",
    "realsrnet_x4",
    "srgan_x4",
    "srgan_x4_attention",
    "srgan_x4_bsds",
    "srresnet_x4",
    "vaegan_cppn_mnist",
    "vaegan_cppn_mnist_x4",
]


def test_every_preset_is_shipped_and_parses() -> None:
    assert preset_names() == PRESETS
    for name in PRESETS:
        cfg = load_config(name)
        assert isinstance(cfg, Config)
        assert cfg.name == name
        assert cfg.total_iters > 0
        # The resolved YAML round-trips to an equal config.
        assert config_from_dict(parse_yaml(dump_yaml(cfg))) == cfg


def test_preset_contents_follow_the_designs() -> None:
    mnist = load_config("mnist_x4")
    assert (mnist.model.g.arch, mnist.model.d.arch, mnist.data.batch_size) == (
        "mnist_sr",
        "mnist_feature_d",
        100,
    )
    assert {t["type"] for t in mnist.train.gan.losses} == {"mse", "lsgan"}
    esrgan = load_config("esrgan_x4")
    assert esrgan.train.ema_decay == 0.999
    assert esrgan.train.pretrain.losses == [{"type": "l1", "weight": 1.0}]
    weights = {t["type"]: t["weight"] for t in esrgan.train.gan.losses}
    assert weights == {"l1": 1e-2, "perceptual": 1.0, "ragan": 5e-3}
    msrgan = load_config("msrgan_stl10_x4")
    assert msrgan.train.gan.d_loss == {"type": "wgan_gp", "lambda_gp": 10.0, "n_critic": 5}
    assert (msrgan.data.kind, msrgan.data.hr_size, msrgan.data.scale) == ("stl10", 48, 4)
    srgan = load_config("srgan_x4")
    assert srgan.data.patch_size == 96 and srgan.train.gan.optimizer.lr == 1e-4
    assert {"type": "vanilla", "weight": 1e-3} in srgan.train.gan.losses
    # The shipped photo GANs: srgan-x4 fine-tunes the shipped PSNR model; msrgan-x4 is design 004.
    finetune = load_config("srgan_x4_bsds")
    assert finetune.model.g.init == "srresnet-x4" and finetune.train.pretrain is None
    assert finetune.model.g.kwargs == load_config("srresnet_x4").model.g.kwargs
    assert {"type": "ragan", "weight": 5e-3} in finetune.train.gan.losses
    msrgan_bsds = load_config("msrgan_x4_bsds")
    assert msrgan_bsds.train.gan.d_loss == msrgan.train.gan.d_loss
    assert (msrgan_bsds.model.g.arch, msrgan_bsds.model.d.arch) == ("msrgan", "wgan_critic")
    assert {t["type"] for t in msrgan_bsds.train.gan.losses} >= {"ssim", "wgan_gp"}


def test_yaml_reads_exponent_floats_without_a_dot() -> None:
    # PyYAML (YAML 1.1) reads `1e-4` as a string; learning rates are written that way.
    assert parse_yaml("lr: 1e-4") == {"lr": 1e-4}
    assert parse_yaml("a: 2E3\nb: '1e-4'") == {"a": 2000.0, "b": "1e-4"}


def test_overrides_use_dotted_keys_and_yaml_scalars() -> None:
    cfg = load_config(
        "mnist_x4",
        [
            "data.root=../x",
            "train.gan.iters=100",
            "train.gan.optimizer.lr=2e-4",
            "train.gan.optimizer.betas=[0.5, 0.9]",
            "train.gan.losses.1.weight=0.01",
            "train.grad_clip=null",
            "model.g.kwargs.num_feat=8",
            "train.pretrain.iters=5",
        ],
    )
    assert cfg.data.root == "../x"
    assert cfg.train.gan.iters == 100
    assert cfg.train.gan.optimizer.lr == 2e-4
    assert cfg.train.gan.optimizer.betas == (0.5, 0.9)
    assert cfg.train.gan.losses[1] == {"type": "lsgan", "weight": 0.01}
    assert cfg.model.g.kwargs == {"final_activation": "relu", "num_feat": 8}  # merged into the preset
    assert cfg.train.pretrain.iters == 5  # a whole section created from a dotted key
    assert cfg.total_iters == 105


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.gan.optimizer.lr=abc", "train.gan.optimizer.lr: expected a number, got 'abc'"),
        ("train.gan.iters=1.5", "train.gan.iters: expected an integer, got 1.5"),
        ("train.gan.optimizr.lr=1", "train.gan.optimizr: unknown key"),
        ("data.kind=imagenet", "data.kind: expected one of"),
        ("train.amp=true", "train.amp: expected one of 'none', 'bf16', 'fp16', got true"),
        ("train.gan.optimizer.betas=[0.9]", "train.gan.optimizer.betas: expected a list of 2 values, got 1"),
        ("train.gan.optimizer.lr=-1", "train.gan.optimizer.lr: must be > 0, got -1.0"),
        ("data.patch_size=30", "data.patch_size: must be a multiple of data.scale (4), got 30"),
        ("train.ema_decay=1", "train.ema_decay: must be in [0, 1), got 1.0"),
        ("train.gan.losses=[]", "train.gan.losses: needs a non-empty list of loss terms"),
        ("model.g=null", "model.g: expected a mapping, got null"),
    ],
)
def test_type_and_range_errors_name_the_full_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("mnist_x4", ["data.root=/tmp", override])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_required_key() -> None:
    raw = to_dict(load_config("mnist_x4"))
    del raw["model"]["g"]
    with pytest.raises(ConfigError, match=r"^model\.g: missing required key$"):
        config_from_dict(raw)


def test_bad_override_syntax() -> None:
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_override({}, "train.gan.iters")
    with pytest.raises(ConfigError, match="list index"):
        apply_override({"a": [1]}, "a.3=2")


def test_config_file_and_unknown_preset(tmp_path: Path) -> None:
    path = tmp_path / "my.yaml"
    path.write_text("name: mine\nmodel: {g: {arch: srcnn}}\ndata: {root: x}\ntrain: {pretrain: {iters: 3}}\n")
    cfg = load_config(path)
    assert (cfg.name, cfg.total_iters, cfg.train.pretrain.losses) == (
        "mine",
        3,
        [{"type": "l1", "weight": 1.0}],
    )
    with pytest.raises(ConfigError, match="unknown config 'nope': not a file and not a preset"):
        load_config("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(bad)


# ------------------------------------------------------------------------------------------------
# The CLI: every class of mistake fails before training, with one line and exit code 2.
def _cli_error(capsys: pytest.CaptureFixture[str], out: Path, *args: str) -> str:
    code = main(["train", *args, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("gansr: error: ")
    assert not out.exists() or not any(out.iterdir()), "no run folder may be created for a bad config"
    return err


def test_cli_bad_configs_fail_before_training(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, shared_data: Path
) -> None:
    mnist = f"data.root={shared_data / 'mnist'}"
    out = tmp_path / "runs"
    # unknown key
    err = _cli_error(capsys, out, "mnist_x4", "--set", mnist, "train.gan.optimiser.lr=1e-3")
    assert "train.gan.optimiser: unknown key" in err
    # wrong type
    err = _cli_error(capsys, out, "mnist_x4", "--set", mnist, "train.gan.optimizer.lr=abc")
    assert err == "gansr: error: train.gan.optimizer.lr: expected a number, got 'abc'"
    # missing data folder
    err = _cli_error(capsys, out, "mnist_x4", "--set", f"data.root={tmp_path / 'nowhere'}")
    assert err == f"gansr: error: data.root: folder not found: {tmp_path / 'nowhere'}"
    err = _cli_error(capsys, out, "mnist_x4")
    assert "data.root: required" in err
    # a scale the model does not support (mnist_sr upsamples by powers of two)
    err = _cli_error(capsys, out, "mnist_x4", "--set", mnist, "data.scale=3", "data.degradation=bicubic_x3")
    assert err.startswith("gansr: error: data.scale: ") and "scale" in err[len("gansr: error: data.scale:") :]
    # unknown architecture
    err = _cli_error(capsys, out, "mnist_x4", "--set", mnist, "model.g.arch=unet9000")
    assert err.startswith("gansr: error: model.g.arch: unknown model 'unet9000'")
    # unknown model option
    err = _cli_error(capsys, out, "mnist_x4", "--set", mnist, "model.d.kwargs.depth=3")
    assert err.startswith("gansr: error: model.d.kwargs") and "depth" in err
    # a bad loss term
    err = _cli_error(capsys, out, "mnist_x4", "--set", mnist, "train.gan.losses.0.type=l3")
    assert err.startswith("gansr: error: train.gan.losses: ") and "l3" in err
    # degradation that does not match the scale
    err = _cli_error(capsys, out, "mnist_x4", "--set", mnist, "data.degradation=bicubic_x2")
    assert err == "gansr: error: data.degradation: shrinks by 2, but data.scale is 4"
    # fp16 needs CUDA
    err = _cli_error(capsys, out, "mnist_x4", "--set", mnist, "device=cpu", "train.amp=fp16")
    assert err == "gansr: error: train.amp: fp16 needs a CUDA device; use bf16 on CPU"


def test_generator_starts_from_a_shipped_model_or_refuses_a_mismatch(shared_data: Path) -> None:
    from gansr.train import build_parts

    mnist = f"data.root={shared_data / 'mnist'}"
    cfg = load_config("mnist_x4_plus", [mnist, "model.g.init=mnist-x4-plus"])
    g = build_parts(cfg).g
    shipped = models.load("mnist-x4-plus")
    for name, value in shipped.state_dict().items():
        assert torch.equal(g.state_dict()[name], value.float()), name
    # Another architecture, or the same one configured differently, is a one-line config error.
    other_arch = r"^model.g.init: mnist-x4 is mnist_sr .* but the model is msrresnet"
    with pytest.raises(ConfigError, match=other_arch):
        build_parts(load_config("mnist_x4_plus", [mnist, "model.g.init=mnist-x4"]))
    narrower = [mnist, "model.g.init=mnist-x4-plus", "model.g.kwargs.num_block=5"]
    with pytest.raises(ConfigError, match=r"^model.g.init: "):
        build_parts(load_config("mnist_x4_plus", narrower))
    with pytest.raises(ConfigError, match=r"^model.g.init: .*no-such-model"):
        build_parts(load_config("mnist_x4_plus", [mnist, "model.g.init=no-such-model"]))


def test_cli_check_accepts_a_good_config(capsys: pytest.CaptureFixture[str], shared_data: Path) -> None:
    code = main(["train", "mnist_x4", "--set", f"data.root={shared_data / 'mnist'}", "--check"])
    assert code == 0
    assert "config OK (4000 iterations)" in capsys.readouterr().out
