"""The ``compact`` generator (Real-ESRGAN's SRVGGNetCompact) and its released checkpoints.

Weights here are random but laid out exactly as Real-ESRGAN saves them (``{"params": ...}`` with
``body.N`` keys), and every output is checked against a forward pass written out below from the
state dict alone, so neither the loader nor the module is tested against itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

from gansr import models
from gansr.cli import main
from gansr.errors import ModelError
from gansr.models import interop
from gansr.models.checkpoint import read_metadata

State = dict[str, torch.Tensor]


pytestmark = pytest.mark.usefixtures("one_thread")


def realesrgan_state(in_ch: int, num_feat: int, num_conv: int, scale: int, seed: int) -> State:
    """Random weights in SRVGGNetCompact's key order: conv at even ``body.N``, PReLU at odd."""
    g = torch.Generator().manual_seed(seed)
    widths = [in_ch] + [num_feat] * (num_conv + 1) + [in_ch * scale * scale]
    state: State = {}
    for layer in range(num_conv + 2):
        c_in, c_out = widths[layer], widths[layer + 1]
        # He-scaled so activations neither vanish nor explode through 18 layers.
        state[f"body.{2 * layer}.weight"] = (
            torch.randn(c_out, c_in, 3, 3, generator=g) * (2 / (9 * c_in)) ** 0.5
        )
        state[f"body.{2 * layer}.bias"] = torch.randn(c_out, generator=g) * 0.01
        if layer <= num_conv:
            state[f"body.{2 * layer + 1}.weight"] = torch.rand(num_feat, generator=g) * 0.5  # PReLU slopes
    return state


def reference_forward(state: State, x: torch.Tensor, scale: int) -> torch.Tensor:
    """SRVGGNetCompact's forward from its paper/repository description, straight from the weights."""
    last = max(int(k.split(".")[1]) for k in state)
    out = x
    for i in range(0, last + 1, 2):
        out = F.conv2d(out, state[f"body.{i}.weight"], state[f"body.{i}.bias"], padding=1)
        if i < last:
            out = F.prelu(out, state[f"body.{i + 1}.weight"])
    return F.pixel_shuffle(out, scale) + F.interpolate(x, scale_factor=scale, mode="nearest")


def crop(folder: Path, name: str, h: int, w: int, channels: int = 3, top: int = 100) -> torch.Tensor:
    """A real image crop ``(1, C, h, w)`` in [0, 1]."""
    img = Image.open(folder / name).convert("RGB" if channels == 3 else "L")
    arr = np.asarray(img, dtype=np.float32)[top : top + h, top : top + w] / 255.0
    t = torch.from_numpy(arr.copy())
    return (t.permute(2, 0, 1) if t.ndim == 3 else t[None])[None]


def run(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)


# --------------------------------------------------------------------------- the module


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("channels", [1, 3])
def test_forward_matches_the_reference(set5, scale, channels):
    state = realesrgan_state(channels, num_feat=16, num_conv=3, scale=scale, seed=scale + channels)
    model = models.create("compact", in_channels=channels, num_feat=16, num_conv=3, scale=scale)
    assert list(model.state_dict()) == list(state)  # Real-ESRGAN's names, in its order
    model.load_state_dict(state)
    x = torch.cat([crop(set5, "bird.png", 19, 23, channels), crop(set5, "woman.png", 19, 23, channels)])
    out = run(model, x)
    assert out.shape == (2, channels, 19 * scale, 23 * scale)
    torch.testing.assert_close(out, reference_forward(state, x, scale), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- Real-ESRGAN checkpoints


@pytest.mark.parametrize(
    ("wrapper", "num_feat", "num_conv", "scale"),
    [("params", 32, 4, 2), ("params_ema", 64, 16, 4)],  # the latter is realesr-animevideov3's shape
)
def test_realesrgan_pth_loads_without_options(tmp_path, set5, wrapper, num_feat, num_conv, scale):
    state = realesrgan_state(3, num_feat, num_conv, scale, seed=num_conv)
    path = tmp_path / "realesr-animevideov3.pth"
    torch.save({wrapper: state}, path)
    model = models.load(path)
    assert model.arch == "compact" and not model.training
    assert model.config == {
        "in_channels": 3,
        "num_feat": num_feat,
        "num_conv": num_conv,
        "scale": scale,
        "upsample_skip": "nearest",  # Real-ESRGAN's skip
    }
    assert model.metadata["format"] == "realesrgan-compact" and model.metadata["wrapper"] == wrapper
    x = crop(set5, "baby.png", 20, 20)
    torch.testing.assert_close(run(model, x), reference_forward(state, x, scale), rtol=1e-5, atol=1e-5)


def test_compact_as_community_safetensors(tmp_path, set5):
    state = realesrgan_state(1, 16, 2, 3, seed=9)
    save_file(state, tmp_path / "gray_x3.safetensors")
    model = models.load(tmp_path / "gray_x3.safetensors")
    assert model.config == {
        "in_channels": 1,
        "num_feat": 16,
        "num_conv": 2,
        "scale": 3,
        "upsample_skip": "nearest",
    }
    x = crop(set5, "head.png", 15, 17, channels=1)
    torch.testing.assert_close(run(model, x), reference_forward(state, x, 3), rtol=1e-5, atol=1e-5)


def test_detection_does_not_misfire_on_other_layouts():
    compact = models.create("compact", num_feat=8, num_conv=1).state_dict()
    assert interop.recognises(compact) and interop.recognises(list(compact))
    msr = models.create("msrresnet", num_block=1).state_dict()  # body.0.conv1.weight
    rrdb = models.create("rrdbnet", num_block=1).state_dict()  # body.0.rdb1.conv1.weight
    assert interop.convert(msr).arch == "msrresnet" and interop.convert(rrdb).arch == "rrdbnet"
    # Plain body.N conv stacks without a PReLU at body.1 are not compact models.
    for arch in ("wgan_critic", "mnist_feature_d"):
        state = models.create(arch).state_dict()
        assert not interop.recognises(state)
        with pytest.raises(ModelError, match="unrecognised checkpoint layout"):
            interop.convert(state)


def _broken(state: State, changes: dict[str, torch.Tensor | None]) -> State:
    """``state`` with the keys in ``changes`` replaced, or removed where the value is None."""
    out = dict(state)
    for key, value in changes.items():
        if value is None:
            del out[key]
        else:
            out[key] = value
    return out


def test_malformed_compact_dicts_are_one_line_errors(tmp_path):
    good = realesrgan_state(3, 8, 2, 4, seed=1)  # layers body.0 .. body.6, the last with 48 outputs
    cases: list[tuple[dict[str, torch.Tensor | None], str]] = [
        (
            {"body.6.weight": torch.zeros(40, 8, 3, 3), "body.6.bias": torch.zeros(40)},
            r"last conv \(body\.6\) has 40 output channels",
        ),
        ({"body.3.weight": None}, r"layer body\.3 is missing"),
        ({"body.4.weight": None}, r"body\.4\.weight is missing"),
        ({"body.6.weight": None, "body.6.bias": None}, r"ends with a PReLU \(body\.5\)"),
        ({"body.2.bias": None}, r"do not fit compact: 1 missing key\(s\), e.g. body\.2\.bias"),
        ({"body.3.weight": torch.zeros(6)}, r"shape mismatch.*body\.3\.weight"),
        ({"body.3.weight": torch.zeros(8, 8, 3, 3)}, r"body\.3\.weight is not a PReLU weight"),
        ({"body.2.weight": torch.zeros(8)}, r"body\.2\.weight is not a convolution weight"),
        # One input channel and 48 outputs: a 1 -> 3 channel model, which compact cannot be.
        ({"body.0.weight": torch.zeros(8, 1, 3, 3)}, r"48 output channels, which is not 1 input"),
    ]
    for i, (changes, problem) in enumerate(cases):
        path = tmp_path / f"broken{i}.pth"
        torch.save({"params": _broken(good, changes)}, path)
        with pytest.raises(ModelError, match=problem) as info:
            models.load(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)


# --------------------------------------------------------------------------- CLI, ONNX, gansr format


def test_cli_upscale_with_a_compact_pth(capsys, tmp_path, set5):
    state = realesrgan_state(3, 64, 6, 4, seed=5)  # 64 wide: the fused kernels' real widths
    torch.save({"params": state}, tmp_path / "realesr-general-x4v3.pth")
    x = crop(set5, "butterfly.png", 24, 32)
    Image.fromarray((x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(tmp_path / "img.png")
    out = tmp_path / "out"
    argv = ["upscale", str(tmp_path / "img.png"), "--model", str(tmp_path / "realesr-general-x4v3.pth")]
    assert main([*argv, "-o", str(out)]) == 0, capsys.readouterr().err
    with Image.open(out / "img_x4.png") as im:
        assert im.size == (128, 96) and im.mode == "RGB"
        got = np.asarray(im, dtype=np.int16)
    want = reference_forward(state, x, 4)[0].clamp(0, 1).permute(1, 2, 0).numpy()
    assert np.abs(got - np.round(want * 255)).max() <= 1  # the CPU path runs a fused, re-ordered form


def test_onnx_export_has_dynamic_size_and_matches_torch(capsys, tmp_path, set5):
    torch.save({"params": realesrgan_state(3, 16, 3, 4, seed=6)}, tmp_path / "c.pth")
    onnx_path = tmp_path / "c.onnx"
    argv = ["export", "--model", str(tmp_path / "c.pth"), "--format", "onnx", "-o", str(onnx_path)]
    assert main([*argv, "--size", "32x32"]) == 0, capsys.readouterr().err
    props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert props["arch"] == "compact" and props["scale"] == "4"
    model = models.load(tmp_path / "c.pth")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for h, w in [(21, 35), (40, 18)]:  # neither the 32x32 export example nor square
        x = torch.cat([crop(set5, "bird.png", h, w), crop(set5, "head.png", h, w)])
        (got,) = session.run(None, {"input": x.numpy()})
        want = run(model, x).numpy()
        assert got.shape == want.shape == (2, 3, 4 * h, 4 * w)
        assert np.abs(got - want).max() <= 1e-4


def test_gansr_safetensors_round_trip(tmp_path, set5):
    torch.save({"params_ema": realesrgan_state(3, 16, 2, 2, seed=7)}, tmp_path / "c.pth")
    model = models.load(tmp_path / "c.pth")
    path = models.save(model, tmp_path / "c", metadata={"source_pth": "c.pth"})
    assert path.name == "c.safetensors"
    meta = read_metadata(path)
    assert meta["arch"] == "compact" and meta["config"] == model.config and meta["scale"] == 2
    again = models.load(path)
    assert again.config == model.config and again.metadata["source_pth"] == "c.pth"
    x = crop(set5, "woman.png", 17, 13)
    assert torch.equal(run(again, x), run(model, x))
    gray = models.create("compact", in_channels=1, num_feat=8, num_conv=1, scale=3)
    back = models.load(models.save(gray, tmp_path / "gray", dtype=torch.float16))
    assert back.config == gray.config and next(back.parameters()).dtype == torch.float32


def test_a_fresh_model_keeps_its_activations_alive_and_starts_as_its_skip(set5: Path) -> None:
    # torch's default init shrank the features ~10x per few layers of this plain stack, so the
    # residual started at ~1e-3 and did not grow in 3,500 training steps: Kaiming init keeps them
    # at the input's scale, and a 0.1-scaled last conv keeps a fresh model's residual well below
    # the image's own contrast (bird crop: 0.042 against 0.152).
    from gansr.data.io import read_image

    torch.manual_seed(0)
    model = models.create("compact", num_feat=64, num_conv=16, upsample_skip="bicubic").eval()
    x = read_image(set5 / "bird.png").pixels[None, :, :48, :48]
    h, stds = x, []
    with torch.no_grad():
        for conv, act in model.convs()[:-1]:
            h = act(conv(h))
            stds.append(h.std().item())
        residual = model(x) - F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    assert min(stds) > 0.3 * x.std().item(), stds
    assert 1e-2 < residual.std().item() < 0.5 * x.std().item()
