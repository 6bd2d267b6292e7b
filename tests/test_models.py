"""Tests of gansr.models: the registry, every architecture's forward pass, precisions and layouts."""

from __future__ import annotations

import copy
import inspect
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from gansr import models
from gansr.degrade import imresize
from gansr.errors import ConfigError, ModelError

# Small but complete configurations, so the suite stays fast; full sizes are tested where stated.
SMALL: dict[str, dict] = {
    "mnist_sr": {},
    "vae_cppn": {"num_feat": 8, "latent_dim": 8, "cppn_width": 16},
    "srresnet": {"num_feat": 16, "num_block": 2},
    "msrresnet": {"num_feat": 16, "num_block": 2},
    "rrdbnet": {"num_feat": 16, "num_block": 1, "num_grow_ch": 8},
    "compact": {"num_feat": 16, "num_conv": 2, "upsample_skip": "bicubic"},
    "msrgan": {"num_feat": 16, "num_block": 1},
    "bicubic": {},
    "srcnn": {"widths": [16, 8]},
    "mnist_feature_d": {},
    "srgan_d": {"num_feat": 8, "dense": 32},
    "wgan_critic": {"num_feat": 8},
    "patch_d": {"num_feat": 8},
}
NAMES = list(SMALL)
KINDS = {info.name: info.kind for info in models.architectures()}
DISCRIMINATORS = [n for n in NAMES if KINDS[n] == "discriminator"]


def _build(name: str, **overrides) -> nn.Module:
    torch.manual_seed(0)
    return models.create(name, **{**SMALL[name], **overrides}).eval()


def _input(model: nn.Module, h: int = 17, w: int = 23, n: int = 2, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, model.in_channels, h, w, generator=g)


def _load_rgb(path: Path) -> torch.Tensor:
    """An image as a float32 (3, H, W) tensor in [0, 1] (PIL, independent of gansr.data)."""
    arr = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


# --------------------------------------------------------------------------- registry


def test_registry_lists_every_model_with_kind_and_default_config():
    infos = models.architectures()
    assert [i.name for i in infos] == NAMES
    for info in infos:
        assert info.kind in ("generator", "discriminator", "baseline")
        assert info.description and "\n" not in info.description and len(info.description) < 100
        with torch.device("meta"):  # shapes only: even the full rrdbnet builds instantly
            model = models.create(info.name)
        assert model.arch == info.name
        assert model.config == info.default_config
        assert json.loads(json.dumps(info.default_config)) == info.default_config
    assert {i.name: i.kind for i in infos}["bicubic"] == "baseline"
    assert {i.name for i in infos if i.kind == "discriminator"} == set(DISCRIMINATORS)


@pytest.mark.parametrize("name", NAMES)
def test_config_is_complete_and_rebuilds_the_same_model(name):
    model = _build(name)
    signature = inspect.signature(type(model))
    assert set(model.config) == set(signature.parameters)
    assert json.loads(json.dumps(model.config)) == model.config
    rebuilt = models.create(model.arch, **model.config).eval()
    assert rebuilt.config == model.config
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }
    rebuilt.load_state_dict(model.state_dict())
    x = _input(model, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=0)


def test_unknown_option_and_unknown_model_raise_clear_errors():
    with pytest.raises(ConfigError) as exc:
        models.create("rrdbnet", num_blocks=6)
    assert str(exc.value).startswith("unknown option 'num_blocks' for model 'rrdbnet'; valid: ")
    assert "num_block" in str(exc.value) and "num_grow_ch" in str(exc.value)
    with pytest.raises(ModelError) as exc:
        models.create("esrgan_plus")
    message = str(exc.value)
    assert "unknown model 'esrgan_plus'" in message
    assert all(name in message for name in NAMES)


@pytest.mark.parametrize(
    ("name", "kwargs", "fragment"),
    [
        ("rrdbnet", {"scale": 3}, "scale must be one of 1, 2, 4, 8, got 3"),
        ("srresnet", {"norm": "group"}, "norm must be one of"),
        ("msrresnet", {"upsample_skip": "nearest"}, "upsample_skip must be one of"),
        ("mnist_sr", {"scale": 3}, "scale must be a power of two"),
        ("mnist_sr", {"num_feat": True}, "num_feat must be an integer"),
        ("msrgan", {"kernels": [3, 4]}, "odd kernel sizes"),
        ("msrgan", {"upsample": "pixelshuffle"}, "upsample must be one of"),
        ("vae_cppn", {"latent_dim": 0}, "latent_dim must be >= 1"),
        ("srcnn", {"kernels": [9, 5]}, "kernels must hold 3 sizes"),
        ("srgan_d", {"pool_size": "6"}, "pool_size must be an integer"),
        ("wgan_critic", {"norm": "batch"}, "norm must be one of"),
        ("patch_d", {"skip_connection": "yes"}, "skip_connection must be true or false"),
    ],
)
def test_invalid_option_values_raise_config_error(name, kwargs, fragment):
    with pytest.raises(ConfigError) as exc:
        models.create(name, **kwargs)
    assert fragment in str(exc.value) and f"model '{name}'" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_wrong_input_channels_raise_model_error():
    model = _build("rrdbnet")
    with pytest.raises(ModelError, match=r"expects input of shape \(N, 3, H, W\), got \(1, 1, 8, 8\)"):
        model(torch.rand(1, 1, 8, 8))


def test_load_save_and_profile_are_reexported_lazily():
    from gansr.models import checkpoint, profile

    assert models.load is checkpoint.load and models.save is checkpoint.save
    assert models.count_parameters is profile.count_parameters
    assert {"load", "save", "count_macs", "profile_model"} <= set(dir(models))
    with pytest.raises(AttributeError):
        models.no_such_function  # noqa: B018


# --------------------------------------------------------------------------- forward shapes

# (name, extra kwargs) covering every supported scale / option.
SCALE_CASES = [
    ("mnist_sr", {"scale": 2}),
    ("mnist_sr", {"scale": 4}),
    ("mnist_sr", {"scale": 8}),
    ("vae_cppn", {"scale": 3}),
    ("srresnet", {"scale": 2}),
    ("srresnet", {"scale": 3}),
    ("srresnet", {"scale": 4, "norm": "none"}),
    ("srresnet", {"scale": 8}),
    ("msrresnet", {"scale": 2}),
    ("msrresnet", {"scale": 3}),
    ("msrresnet", {"scale": 4, "upsample_skip": "bicubic"}),
    ("rrdbnet", {"scale": 1}),
    ("rrdbnet", {"scale": 2}),
    ("rrdbnet", {"scale": 4}),
    ("rrdbnet", {"scale": 8}),
    ("msrgan", {"scale": 2, "upsample": "transposed"}),
    ("msrgan", {"scale": 4, "resize_mode": "bilinear", "kernels": [3, 5], "convs_per_block": 2}),
    ("msrgan", {"scale": 8}),
    ("bicubic", {"scale": 3}),
    ("srcnn", {"scale": 2}),
]


@pytest.mark.parametrize(("name", "kwargs"), SCALE_CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("channels", [1, 3])
def test_generator_output_shape_any_input_size(name, kwargs, channels, size=(17, 23)):
    model = _build(name, in_channels=channels, **kwargs)
    s = model.scale
    assert (model.in_channels, model.out_channels) == (channels, channels)
    assert isinstance(model.size_multiple, int) and model.size_multiple >= 1
    x = _input(model, *size)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, channels, s * size[0], s * size[1])
    assert y.dtype == torch.float32 and torch.isfinite(y).all()


@pytest.mark.parametrize("size", [(5, 3), (1, 1), (2, 6)])
def test_padded_models_accept_tiny_inputs(size):
    """x1/x2 rrdbnet and patch_d pad to a multiple (replicate where reflection cannot reach)."""
    for scale in (1, 2):
        model = _build("rrdbnet", scale=scale)
        with torch.no_grad():
            assert model(_input(model, *size)).shape == (2, 3, scale * size[0], scale * size[1])
    model = _build("patch_d")
    with torch.no_grad():
        assert model(_input(model, *size)).shape == (2, 1, *size)


def test_rrdbnet_size_multiple_and_pixel_unshuffle_order_match_basicsr():
    assert [_build("rrdbnet", scale=s).size_multiple for s in (1, 2, 4, 8)] == [4, 2, 1, 1]
    model = _build("rrdbnet", scale=2)
    assert model.conv_first.in_channels == 12
    assert _build("rrdbnet", scale=1).conv_first.in_channels == 48
    seen = []
    model.conv_first.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    x = _input(model, 6, 10, n=1)
    with torch.no_grad():
        model(x)
    # BasicSR's pixel_unshuffle, written out: the channel order its x2 checkpoints were trained with.
    b, c, h, w = x.shape
    ref = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(b, c * 4, h // 2, w // 2)
    torch.testing.assert_close(seen[0], ref, rtol=0, atol=0)


@pytest.mark.parametrize("name", DISCRIMINATORS)
@pytest.mark.parametrize("size", [(17, 23), (96, 96)])
def test_discriminator_output_shape(name, size):
    channels = 1 if name == "mnist_feature_d" else 3
    model = _build(name)
    assert model.in_channels == channels
    with torch.no_grad():
        y = model(_input(model, *size))
    expected = {
        "mnist_feature_d": (2, 64, *size),
        "srgan_d": (2, 1),
        "wgan_critic": (2, 1),
        "patch_d": (2, 1, *size),
    }[name]
    assert y.shape == expected and torch.isfinite(y).all()


@pytest.mark.parametrize("name", DISCRIMINATORS)
def test_discriminator_on_gray_input(name):
    model = _build(name, in_channels=1)
    with torch.no_grad():
        assert torch.isfinite(model(_input(model, 24, 20))).all()


# --------------------------------------------------------------------------- precisions and layouts


def _loose_close(out: torch.Tensor, ref: torch.Tensor) -> None:
    """bf16 keeps ~3 significant digits: allow 5% of the output's range."""
    err = (out.float() - ref).abs().max().item()
    assert err <= 0.05 * ref.abs().max().item() + 1e-3, err


@pytest.mark.parametrize(
    ("name", "overrides"), [(n, {}) for n in NAMES] + [("rrdbnet", {"scale": 2})], ids=lambda v: str(v)
)
def test_bf16_autocast_and_channels_last(name, overrides):
    model = _build(name, **overrides)
    x = _input(model, 17, 23)
    cl = torch.channels_last
    with torch.no_grad():
        ref = model(x)
        # channels_last, fp32: the same numbers up to summation order.
        model_cl = copy.deepcopy(model).to(memory_format=cl)
        torch.testing.assert_close(model_cl(x.to(memory_format=cl)), ref, rtol=1e-4, atol=1e-5)
        # bf16 weights and input (contiguous and channels_last).
        model_bf16 = copy.deepcopy(model).to(torch.bfloat16)
        out = model_bf16(x.to(torch.bfloat16))
        assert out.dtype == torch.bfloat16
        _loose_close(out, ref)
        _loose_close(model_bf16.to(memory_format=cl)(x.to(torch.bfloat16).to(memory_format=cl)), ref)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            _loose_close(model(x), ref)
    # Training step under autocast: every parameter gets a finite, non-zero gradient (none is
    # disconnected from the output).
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(x.to(memory_format=cl)).float().square().mean()
    if name != "bicubic":
        loss.backward()
        for key, p in model.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.any(), key


# --------------------------------------------------------------------------- parameter counts and names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("mnist_sr", 56_547),  # Keras 56,997 minus the 450 BN moving statistics
        ("mnist_feature_d", 18_944),  # Keras 19,072 minus 128
        ("srresnet", 1_549_462),
        ("msrresnet", 1_517_571),  # BasicSR's MSRResNet x4
    ],
)
def test_exact_parameter_counts(name, expected):
    model = models.create(name)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected


def test_mnist_models_match_the_keras_tables_layer_for_layer():
    g = models.create("mnist_sr")
    convs = [m for m in g.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    # Keras: 8 Conv2D (with bias) + 8 BatchNormalization; per-layer parameter counts from the table.
    assert [sum(p.numel() for p in c.parameters()) for c in convs] == [320] + [9248] * 6 + [289]
    assert [b.num_features for b in bns] == [32] * 7 + [1]
    assert sum(b.running_mean.numel() + b.running_var.numel() for b in bns) == 450
    d = models.create("mnist_feature_d")
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [sum(p.numel() for p in c.parameters()) for c in convs] == [320, 18496]
    with torch.no_grad():
        assert g.eval()(torch.rand(4, 1, 7, 7)).shape == (4, 1, 28, 28)


def test_mnist_sr_final_activation():
    x = torch.rand(3, 1, 7, 7)
    with torch.no_grad():
        y = _build("mnist_sr")(x)
        assert ((y > 0) & (y < 1)).all()
        assert (_build("mnist_sr", final_activation="relu")(x) >= 0).all()
        # Training-mode BN centres the last layer's output: without an activation it goes negative.
        assert (_build("mnist_sr", final_activation="none").train()(x) < 0).any()


@pytest.fixture(scope="module")
def full_rrdbnet() -> nn.Module:
    torch.manual_seed(0)
    return models.create("rrdbnet").eval()


def test_full_rrdbnet_parameter_count_names_and_forward(full_rrdbnet):
    assert sum(p.numel() for p in full_rrdbnet.parameters()) == 16_697_987
    expected = {"conv_first", "conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"}
    expected |= {f"body.{i}.rdb{r}.conv{k}" for i in range(23) for r in (1, 2, 3) for k in range(1, 6)}
    keys = set(full_rrdbnet.state_dict())
    assert keys == {f"{e}.{t}" for e in expected for t in ("weight", "bias")}
    assert full_rrdbnet.state_dict()["body.0.rdb1.conv5.weight"].shape == (64, 64 + 4 * 32, 3, 3)
    with torch.no_grad():
        assert full_rrdbnet(torch.rand(1, 3, 5, 6)).shape == (1, 3, 20, 24)
    assert "conv_up3.weight" in _build("rrdbnet", scale=8).state_dict()


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_msrresnet_names_are_basicsr(scale):
    model = _build("msrresnet", scale=scale, num_block=3)
    names = ["conv_first", "upconv1", "conv_hr", "conv_last"] + [
        f"body.{i}.conv{k}" for i in range(3) for k in (1, 2)
    ]
    if scale == 4:
        names.append("upconv2")
    assert set(model.state_dict()) == {f"{n}.{t}" for n in names for t in ("weight", "bias")}
    assert model.upconv1.out_channels == 16 * (scale * scale if scale != 4 else 4)


def test_msrresnet_adds_the_upsampled_input():
    model = _build("msrresnet", scale=2)
    with torch.no_grad():
        model.conv_last.weight.zero_()
        model.conv_last.bias.zero_()
        x = _input(model)
        torch.testing.assert_close(model(x), F.interpolate(x, scale_factor=2, mode="bilinear"))
        bicubic = _build("msrresnet", scale=2, upsample_skip="bicubic")
        bicubic.load_state_dict(model.state_dict())
        torch.testing.assert_close(bicubic(x), F.interpolate(x, scale_factor=2, mode="bicubic"))


def test_msrgan_upsampling_variants():
    resize = _build("msrgan")
    transposed = _build("msrgan", upsample="transposed")
    assert not any(isinstance(m, nn.ConvTranspose2d | nn.PixelShuffle) for m in resize.modules())
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in transposed.modules()) == 2
    assert len(resize.branches) == 4
    assert [b[0].kernel_size for b in resize.branches] == [(3, 3), (5, 5), (7, 7), (9, 9)]
    with torch.no_grad():  # the STL-10 setting: 12x12 -> 48x48
        assert resize(torch.rand(2, 3, 12, 12)).shape == (2, 3, 48, 48)
        assert transposed(torch.rand(2, 3, 12, 12)).shape == (2, 3, 48, 48)


# --------------------------------------------------------------------------- discriminator behaviour


def test_srgan_d_pooling_equals_the_papers_flatten_at_96():
    pooled = _build("srgan_d")
    flat = _build("srgan_d", pool_size=None, input_size=96)
    flat.load_state_dict(pooled.state_dict())
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(flat(x), pooled(x))
        with pytest.raises(ModelError, match="needs 96x96 inputs"):
            flat(torch.rand(1, 3, 64, 64))
    widths = [m.out_channels for m in pooled.modules() if isinstance(m, nn.Conv2d)]
    strides = [m.stride[0] for m in pooled.modules() if isinstance(m, nn.Conv2d)]
    assert widths == [8, 8, 16, 16, 32, 32, 64, 64] and strides == [1, 2] * 4
    assert sum(isinstance(m, nn.BatchNorm2d) for m in pooled.modules()) == 7


def test_wgan_critic_has_no_batchnorm_and_supports_gradient_penalty():
    for norm in ("none", "layer"):
        critic = _build("wgan_critic", norm=norm).train()
        assert not any(isinstance(m, nn.BatchNorm2d) for m in critic.modules())
        assert any(isinstance(m, nn.GroupNorm) for m in critic.modules()) == (norm == "layer")
        x = torch.rand(3, 3, 24, 24, requires_grad=True)
        (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
        penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
        penalty.backward()  # double backward through every layer (biases do not change dD/dx)
        weights = [p for k, p in critic.named_parameters() if k.endswith("weight")]
        assert all(p.grad is not None and torch.isfinite(p.grad).all() and p.grad.any() for p in weights)


def test_patch_d_spectral_norm_keys_and_unit_spectral_norm():
    model = _build("patch_d").train()
    keys = set(model.state_dict())
    assert "conv1.parametrizations.weight.original" in keys and "conv0.weight" in keys
    assert "conv9.weight" in keys and not any(k.startswith("conv1.weight") for k in keys)
    with torch.no_grad():
        for _ in range(30):  # power iterations run in training-mode forwards
            model(torch.rand(1, 3, 16, 16))
        for name in ("conv1", "conv4", "conv8"):
            weight = getattr(model, name).weight.flatten(1)
            assert torch.linalg.matrix_norm(weight, ord=2).item() == pytest.approx(1.0, abs=0.05)


# --------------------------------------------------------------------------- vae_cppn


def test_vae_cppn_renders_any_size_from_the_same_input():
    model = _build("vae_cppn")
    assert model.arbitrary_scale and model.scale == 4
    x = _input(model, 7, 7, n=3)
    with torch.no_grad():
        default = model(x)
        sr28 = model(x, size=(28, 28))
        sr84 = model(x, size=(84, 84))
        sr100 = model(x, size=(100, 100))
        assert model(torch.rand(2, 1, 26, 26), size=(28, 28)).shape == (2, 1, 28, 28)
    assert default.shape == sr28.shape == (3, 1, 28, 28) and sr100.shape == (3, 1, 100, 100)
    torch.testing.assert_close(default, sr28, rtol=0, atol=0)
    assert ((sr100 > 0) & (sr100 < 1)).all()
    # One continuous image: the 84x84 pixel centres 3i+1 are exactly the 28x28 centres.
    torch.testing.assert_close(sr84[..., 1::3, 1::3], sr28, rtol=0, atol=1e-5)
    # Chunking changes how the pixels are batched, not their values.
    chunked = _build("vae_cppn", chunk_size=97)
    chunked.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(chunked(x, size=(28, 28)), sr28, rtol=0, atol=1e-6)
    with pytest.raises(ConfigError, match="size must be"):
        model(x, size=(0, 10))


def test_vae_cppn_latent_reparameterization():
    model = _build("vae_cppn")
    x = _input(model, 7, 7, n=4)
    with torch.no_grad():
        sr, mu, logvar = model(x, return_latent=True)
        assert mu.shape == logvar.shape == (4, 8)
        torch.testing.assert_close(model(x), sr, rtol=0, atol=0)  # eval: z = mu, deterministic
        model.train()
        a = model(x, generator=torch.Generator().manual_seed(3))
        b = model(x, generator=torch.Generator().manual_seed(3))
        c = model(x, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c) and not torch.equal(a, sr)


def test_vae_cppn_1800x1800_render_peak_memory_below_2gb():
    """28x28, 100x100 and 1800x1800 renders of one input in a fresh process, peak RSS < 2 GiB.

    Rendering 1800x1800 in one piece would peak above 3 GiB; chunking keeps it near the cost of
    importing torch. The peak is the child's VmHWM: unlike ``ru_maxrss``, it starts afresh at
    exec, so it does not include the (possibly large) test process the child was forked from.
    """
    script = textwrap.dedent(
        """
        import re
        import torch
        from gansr import models
        torch.manual_seed(0)
        model = models.create("vae_cppn").eval()
        x = torch.rand(1, 1, 7, 7)
        with torch.no_grad():
            sizes = {s: model(x, size=(s, s)) for s in (28, 100, 600, 1800)}
        for s, out in sizes.items():
            assert out.shape == (1, 1, s, s) and bool(((out > 0) & (out < 1)).all()), s
        # the same continuous image: 1800x1800 pixel centres 3i+1 are the 600x600 centres
        assert torch.allclose(sizes[1800][..., 1::3, 1::3], sizes[600], atol=1e-5)
        with open("/proc/self/status") as f:
            print(re.search(r"VmHWM:\\s+(\\d+) kB", f.read()).group(1))
        """
    )
    limit_kib = 2 * 1024 * 1024
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    child_peak = int(done.stdout.split()[-1])
    assert 100 * 1024 < child_peak < limit_kib, f"peak RSS {child_peak / 1024:.0f} MiB"


# --------------------------------------------------------------------------- baselines on real images


def test_bicubic_baseline_equals_imresize_on_set5(set5):
    hr = _load_rgb(set5 / "baby.png")[:, :256, :256]
    lr = imresize(hr, 0.25)
    model = models.create("bicubic", scale=4)
    assert model.config == {"in_channels": 3, "scale": 4} and not list(model.parameters())
    with torch.no_grad():
        out = model(lr.unsqueeze(0))
        assert torch.equal(out[0], imresize(lr, 4))
        out64 = model(lr.double().unsqueeze(0))
    assert out64.dtype == torch.float64 and torch.equal(out64[0], imresize(lr.double(), 4))
    # The result is a real SR baseline: far closer to the HR image than nearest-neighbour.
    nearest = F.interpolate(lr.unsqueeze(0), scale_factor=4, mode="nearest")[0]
    assert (out[0] - hr).abs().mean() < (nearest - hr).abs().mean()


def test_srcnn_refines_the_bicubic_upscale(set14):
    lr = imresize(_load_rgb(set14 / "comic.png")[:, :60, :90], 1 / 3)
    model = _build("srcnn", scale=3)
    seen = []
    model.conv1.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    with torch.no_grad():
        out = model(lr.unsqueeze(0))
    assert out.shape == (1, 3, 60, 90)
    assert torch.equal(seen[0][0], imresize(lr, 3))
    assert [c.kernel_size[0] for c in (model.conv1, model.conv2, model.conv3)] == [9, 1, 5]


def test_vae_cppn_conditioning_is_spatially_aligned(set5):
    """Changing one LR pixel of a real image changes the render most where that pixel lies.

    The CPPN samples LR features at each output pixel's position; a swapped x/y or a misplaced
    coordinate grid would move the response elsewhere.
    """
    lr = imresize(_load_rgb(set5 / "butterfly.png")[:, 64:128, 96:160].mean(0, keepdim=True), 0.25)
    model = _build("vae_cppn")
    row, col = 3, 12  # of the 16x16 LR image: top right
    bumped = lr.clone()
    bumped[0, row, col] = 1.0 - bumped[0, row, col]
    with torch.no_grad():
        delta = (model(bumped.unsqueeze(0)) - model(lr.unsqueeze(0))).abs()[0, 0]
    assert delta.shape == (64, 64)
    weights = delta / delta.sum()
    centre_y = (weights.sum(1) * torch.arange(64)).sum().item()
    centre_x = (weights.sum(0) * torch.arange(64)).sum().item()
    # The LR pixel's centre in output pixels is ((row + 0.5) * 4 - 0.5, (col + 0.5) * 4 - 0.5).
    assert abs(centre_y - 13.5) < 6 and abs(centre_x - 49.5) < 6, (centre_y, centre_x)
