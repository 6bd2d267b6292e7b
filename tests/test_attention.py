"""Windowed self-attention (gansr.models.attention) and the attention options of srresnet / srgan_d."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import gansr
from gansr import models
from gansr.cli import main
from gansr.errors import ConfigError
from gansr.models.attention import WindowAttention
from gansr.train.config import load_config
from gansr.train.logging import read_jsonl
from gansr.train.step import forward_with_features

pytestmark = pytest.mark.usefixtures("one_thread")


def _active(block: WindowAttention, seed: int = 0) -> WindowAttention:
    """The block with a non-zero output projection (it starts at zero: the identity)."""
    torch.nn.init.normal_(block.proj.weight, generator=torch.Generator().manual_seed(seed))
    return block.eval()


def _global_attention(block: WindowAttention, x: torch.Tensor) -> torch.Tensor:
    """Plain multi-head self-attention over every pixel: the reference for one window."""
    n, c, h, w = x.shape
    y = block.norm(x.permute(0, 2, 3, 1)).reshape(n, h * w, c)
    d = c // block.heads
    q, k, v = block.qkv(y).reshape(n, h * w, 3, block.heads, d).permute(2, 0, 3, 1, 4)
    out = torch.softmax(q @ k.transpose(-1, -2) / d**0.5, -1) @ v
    out = block.proj(out.transpose(1, 2).reshape(n, h, w, c))
    return x + out.permute(0, 3, 1, 2)


def test_starts_as_identity_and_is_global_within_a_window() -> None:
    x = torch.randn(2, 16, 10, 12, generator=torch.Generator().manual_seed(0))
    assert torch.equal(WindowAttention(16)(x), x)  # zero output projection
    block = _active(WindowAttention(16, heads=4, window=16))
    with torch.no_grad():
        assert torch.allclose(block(x), _global_attention(block, x), atol=1e-5)


@pytest.mark.parametrize("shift", [False, True])
def test_each_pixel_sees_only_its_window(shift: bool) -> None:
    block = _active(WindowAttention(8, heads=2, window=4, shift=shift))
    x = torch.randn(1, 8, 13, 10, generator=torch.Generator().manual_seed(1))
    offset = 2 if shift else 0  # shifted windows start half a window earlier
    with torch.no_grad():
        base = block(x)
        for y0 in range(13):
            for x0 in range(10):
                poked = x.clone()
                poked[0, :, y0, x0] += torch.arange(8.0) - 3.5  # not a uniform shift: LayerNorm removes those
                changed = (block(poked) - base).abs().sum(1)[0] > 1e-6
                rows = (torch.arange(13) + offset) // 4 == (y0 + offset) // 4
                cols = (torch.arange(10) + offset) // 4 == (x0 + offset) // 4
                assert torch.equal(changed, rows[:, None] & cols[None, :]), (y0, x0)
        # A window cut by the image border (padding) is the attention of its real pixels alone.
        corner = x[..., 12:, 8:] if not shift else x[..., 10:, 6:]
        local = _global_attention(block, corner)
        assert torch.allclose(base[..., -corner.shape[-2] :, -corner.shape[-1] :], local, atol=1e-5)


def test_memory_and_time_are_linear_in_the_image() -> None:
    # Global attention over a 600x600 map would hold 360,000^2 scores (518 GB in float32);
    # in 8x8 windows it is 5,625 windows of 64^2, evaluated a bounded number at a time.
    block = _active(WindowAttention(8, heads=2, window=8, shift=True))
    with torch.no_grad():
        out = block(torch.rand(1, 8, 600, 600))
    assert out.shape == (1, 8, 600, 600) and torch.isfinite(out).all()


def test_generator_and_discriminator_options() -> None:
    torch.manual_seed(0)
    g = models.create("srresnet", num_feat=16, num_block=4, attention=2, attention_heads=2)
    blocks = [type(m).__name__ for m in g.body]
    assert blocks.count("WindowAttention") == 2 and blocks[0] != "WindowAttention"
    assert [m.shift for m in g.body if isinstance(m, WindowAttention)] == [False, True]
    assert g.config["attention"] == 2 and models.create("srresnet", **g.config).config == g.config
    plain = models.create("srresnet", num_feat=16, num_block=4)
    assert plain.config["attention"] == 0 and not any(isinstance(m, WindowAttention) for m in plain.modules())
    assert g.fuse_for_inference() is None and plain.fuse_for_inference() is not None
    # Trainable end to end, and any LR size works (windows clip at small sizes).
    x = torch.rand(2, 3, 11, 9)
    out = g(x)
    assert out.shape == (2, 3, 44, 36)
    out.mean().backward()
    assert all(p.grad is not None for p in g.parameters())
    # The Upscaler runs it unfused (with tiles when asked), the same as the plain forward.
    img = torch.rand(3, 30, 26)
    up = gansr.Upscaler(model=g.eval(), tile=16)
    with torch.no_grad():
        whole = g(img[None])[0].clamp(0, 1)
    assert torch.allclose(gansr.Upscaler(model=g, tile=0).upscale(img), whole, atol=1e-5)
    assert up.upscale(img).shape == (3, 120, 104)

    d = models.create("srgan_d", num_feat=8, dense=16, attention=True, attention_heads=4)
    assert sum(isinstance(m, WindowAttention) for m in d.modules()) == 1
    logits, feats = forward_with_features(d, torch.rand(2, 3, 48, 48), True)
    assert logits.shape == (2, 1) and len(feats) == 9  # the activations feature matching reads
    for kwargs, message in (
        (
            {"num_feat": 16, "attention": 1, "attention_heads": 3},
            "attention_heads \\(3\\) must divide the 16",
        ),
        ({"attention": 1, "attention_window": 1}, "attention_window must be >= 2"),
        ({"attention": -1}, "attention must be >= 0"),
    ):
        with pytest.raises(ConfigError, match=f"model 'srresnet': {message}"):
            models.create("srresnet", **kwargs)
    with pytest.raises(ConfigError, match="model 'srgan_d': attention must be true or false"):
        models.create("srgan_d", attention=2)


def test_attention_preset_and_its_twin_train(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, shared_data: Path
) -> None:
    base = load_config("srgan_x4_attention")
    assert base.model.g.kwargs["attention"] == 2 and base.model.d.kwargs["attention"] is True
    small = [
        f"data.root={shared_data / 'bsds500' / 'train'}", "data.max_images=4", "data.patch_size=32",
        "data.batch_size=2", "data.cache=false", f"data.val_folder={shared_data / 'Set5'}",
        "train.val_max_images=1", "train.sample_images=1", "model.g.kwargs.num_feat=8",
        "model.g.kwargs.num_block=2", "model.d.kwargs.num_feat=8", "model.d.kwargs.dense=16",
        "train.pretrain.iters=1", "train.gan.iters=2", "train.val_every=3", "train.ckpt_every=3",
        "train.log_every=1", "train.plot_every=1000", "device=cpu",
    ]  # fmt: skip
    twin = ["model.g.kwargs.attention=0", "model.d.kwargs.attention=false"]
    for name, extra in (("attention", []), ("twin", twin)):
        out = tmp_path / name
        code = main(["train", "srgan_x4_attention", "--out", str(out), "--quiet", "--set", *small, *extra])
        assert code == 0, capsys.readouterr().err
        (run,) = out.iterdir()
        train = [r for r in read_jsonl(run / "log.jsonl") if r["event"] == "train"]
        assert [r["phase"] for r in train] == ["pretrain", "gan", "gan"]
        assert {"g_feature_matching", "g_ragan", "d_loss"} <= set(train[-1])
        net = models.load(run / "model.safetensors")
        assert net.config["attention"] == (2 if name == "attention" else 0)
