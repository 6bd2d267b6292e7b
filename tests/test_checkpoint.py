"""gansr checkpoints (save/load/read_metadata) and foreign ESRGAN / Real-ESRGAN / BasicSR .pth files."""

from __future__ import annotations

import json
import os
import stat
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from gansr import models
from gansr.errors import ConfigError, ModelError
from gansr.models import checkpoint
from gansr.models.checkpoint import read_metadata


def _patch(folder: Path, name: str, size: int, channels: int = 3) -> torch.Tensor:
    """A real image crop ``(1, C, size, size)`` in [0, 1] from a benchmark folder."""
    img = Image.open(folder / name).convert("RGB" if channels == 3 else "L")
    arr = np.asarray(img, dtype=np.float32)[:size, :size] / 255.0
    t = torch.from_numpy(arr.copy())
    t = t.permute(2, 0, 1) if t.ndim == 3 else t[None]
    return t[None]


def _run(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)


def _trained_bn(model: torch.nn.Module, x: torch.Tensor) -> torch.nn.Module:
    """Give BatchNorm running statistics non-default values (they must survive the round trip)."""
    model.train()
    with torch.no_grad():
        model(x)
    return model.eval()


# --------------------------------------------------------------------------- gansr checkpoints

ROUND_TRIP = [
    ("rrdbnet", {"num_block": 2}, 3),
    ("rrdbnet", {"num_block": 1, "scale": 2}, 3),
    ("msrresnet", {"num_block": 2}, 3),
    ("srresnet", {"num_block": 2}, 3),
    ("mnist_sr", {}, 1),
    ("patch_d", {"num_feat": 16}, 3),
]


@pytest.mark.parametrize(("arch", "kwargs", "channels"), ROUND_TRIP)
def test_round_trip_gives_identical_outputs(tmp_path, set5, arch, kwargs, channels):
    torch.manual_seed(0)
    x = _patch(set5, "butterfly.png", 20, channels)
    model = _trained_bn(models.create(arch, **kwargs), x)
    path = models.save(model, tmp_path / "ck", metadata={"iteration": 1200, "dataset": "DIV2K"})
    assert path == tmp_path / "ck.safetensors" and path.is_file()

    loaded = models.load(path)
    assert type(loaded) is type(model) and loaded.config == model.config
    assert not loaded.training
    assert torch.equal(_run(loaded, x), _run(model, x))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert loaded.metadata["iteration"] == 1200 and loaded.metadata["dataset"] == "DIV2K"
    assert loaded.metadata["arch"] == arch and loaded.metadata["source"] == str(path)


def test_metadata_header_and_read_metadata(tmp_path):
    model = models.create("msrresnet", num_block=1, scale=2)
    metrics = {"psnr": np.float32(30.25), "ssim": torch.tensor(0.875)}  # NumPy/torch scalars are common
    path = models.save(model, tmp_path / "m.safetensors", metadata={"metrics": metrics, "data": tmp_path})
    meta = read_metadata(path)
    assert meta["format"] == "gansr" and meta["format_version"] == "1"
    assert meta["arch"] == "msrresnet" and meta["config"] == model.config
    assert (meta["scale"], meta["in_channels"], meta["out_channels"], meta["size_multiple"]) == (2, 3, 3, 1)
    assert meta["metrics"] == {"psnr": 30.25, "ssim": 0.875} and meta["data"] == str(tmp_path)
    assert meta["dtype"] == "float32"
    # The header itself holds the documented str -> str entries.
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        header = f.metadata()
    assert json.loads(header["config"]) == model.config and header["arch"] == "msrresnet"


def test_fp16_storage_halves_the_file_and_loads_as_float32(tmp_path, set5):
    torch.manual_seed(1)
    model = models.create("rrdbnet", num_block=2)
    full = models.save(model, tmp_path / "full.safetensors")
    half = models.save(model, tmp_path / "half.safetensors", dtype=torch.float16)
    assert os.path.getsize(half) < 0.55 * os.path.getsize(full)
    assert read_metadata(half)["dtype"] == "float16"
    loaded = models.load(half)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = _patch(set5, "bird.png", 24)
    ref, got = _run(model, x), _run(loaded, x)
    assert not torch.equal(ref, got)  # really stored in half precision
    assert (ref - got).abs().max() < 2e-3


def test_directory_with_model_safetensors_loads(tmp_path):
    model = models.create("mnist_sr")
    models.save(model, tmp_path / "run" / "model.safetensors")
    assert models.load(tmp_path / "run").config == model.config
    with pytest.raises(ModelError, match="no model.safetensors"):
        models.load(tmp_path)


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    model = models.create("mnist_sr")
    path = models.save(model, tmp_path / "m.safetensors", metadata={"v": 1})
    before = path.read_bytes()

    def boom(fd):
        raise OSError("disk full")  # the bytes went into the temp file, flushing them to disk fails

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        models.save(model, path, metadata={"v": 2})
    assert path.read_bytes() == before  # the old checkpoint is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def test_save_uses_umask_permissions_and_writes_into_a_folder(tmp_path):
    model = models.create("mnist_sr")
    old = os.umask(0o022)
    try:
        path = models.save(model, tmp_path / "m")
    finally:
        os.umask(old)
    assert path.name == "m.safetensors"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600: others may read a model
    (tmp_path / "run").mkdir()
    inside = models.save(model, tmp_path / "run")  # a folder gets the model.safetensors load() reads
    assert inside == tmp_path / "run" / "model.safetensors"
    assert models.load(tmp_path / "run").config == model.config


def test_save_rejects_bad_metadata_and_foreign_models(tmp_path):
    model = models.create("mnist_sr")
    with pytest.raises(ConfigError, match="JSON"):
        models.save(model, tmp_path / "a", metadata={"x": object()})
    with pytest.raises(ConfigError, match="reserved"):
        models.save(model, tmp_path / "a", metadata={"arch": "other"})
    with pytest.raises(ModelError, match="arch"):
        models.save(torch.nn.Conv2d(1, 1, 3), tmp_path / "a")
    assert list(tmp_path.iterdir()) == []


def test_load_errors_are_one_line_model_errors(tmp_path):
    good = models.save(models.create("msrresnet", num_block=2), tmp_path / "good")
    data = good.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.safetensors").write_bytes(b"this is not a checkpoint at all" * 10)
    (tmp_path / "empty.safetensors").write_bytes(b"")
    cases = {
        tmp_path / "missing.safetensors": "no such checkpoint file",
        tmp_path / "trunc.safetensors": "not a valid .safetensors file",
        tmp_path / "garbage.safetensors": "not a valid .safetensors file",
        tmp_path / "empty.safetensors": "not a valid .safetensors file",
    }
    for path, message in cases.items():
        with pytest.raises(ModelError, match=message) as info:
            models.load(path)
        assert "\n" not in str(info.value)


def test_state_dict_mismatch_and_bad_header(tmp_path):
    model = models.create("msrresnet", num_block=2)
    path = models.save(model, tmp_path / "m")
    raw = _raw_header(path)
    tensors = dict(model.state_dict())

    def write(name, config=None, drop=(), **extra):
        header = {**raw, "config": json.dumps(config or model.config), **extra}
        kept = {k: v.contiguous() for k, v in tensors.items() if k not in drop}
        save_file(kept, tmp_path / name, metadata=header)
        return tmp_path / name

    fewer_blocks = write("blocks.safetensors", config={**model.config, "num_block": 1})
    with pytest.raises(ModelError, match="do not fit msrresnet.*unexpected key"):
        models.load(fewer_blocks)
    missing = write("missing.safetensors", drop=("conv_last.bias",))
    with pytest.raises(ModelError, match=r"1 missing key\(s\), e.g. conv_last.bias"):
        models.load(missing)
    assert models.load(missing, strict=False).arch == "msrresnet"  # tolerated when asked
    wider = write("wide.safetensors", config={**model.config, "num_feat": 32})
    with pytest.raises(ModelError, match="shape mismatch"):
        models.load(wider, strict=False)  # shapes never tolerated
    with pytest.raises(ModelError, match="cannot rebuild 'nosuch'"):
        models.load(write("arch.safetensors", arch="nosuch"))
    with pytest.raises(ModelError, match="format version '9'"):
        models.load(write("v9.safetensors", format_version="9"))


def _raw_header(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        return f.metadata()


def test_names_resolve_to_shipped_models_or_explain(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="it is an architecture, not trained weights"):
        models.load("rrdbnet")
    with pytest.raises(
        ModelError, match=r"unknown model 'nope': not a file, not a shipped model \(available:"
    ):
        models.load("nope")
    shipped = models.save(models.create("mnist_sr"), tmp_path / "mnist_x4")
    monkeypatch.setattr(checkpoint, "shipped_models", lambda: {"mnist_x4": shipped})
    assert models.load("mnist_x4").arch == "mnist_sr"
    with pytest.raises(ModelError, match=r"available: mnist_x4\)"):
        models.load("nope")


def test_architecture_names_need_random_weights_which_are_seeded():
    with pytest.raises(ModelError, match=r"not trained weights \(random weights .*random_weights=True"):
        models.load("msrresnet")
    state = torch.get_rng_state()
    a = models.load("msrresnet", random_weights=True, scale=2)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random stream is left alone
    again = models.load("msrresnet", random_weights=True, scale=2)
    other = models.load("msrresnet", random_weights=True, scale=2, seed=1)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in a.state_dict().items())
    assert not torch.equal(a.state_dict()["conv_first.weight"], other.state_dict()["conv_first.weight"])
    assert a.scale == 2 and not a.training
    assert a.metadata["format"] == "random" and a.metadata["seed"] == 0 and a.metadata["config"]["scale"] == 2
    # A weightless architecture needs no option; a discriminator loads, but is no generator.
    bicubic = models.load("bicubic", scale=3)
    assert bicubic.scale == 3 and bicubic.metadata["format"] == "weightless"
    critic = models.load("patch_d", random_weights=True)
    with pytest.raises(ModelError, match="'patch_d' is not an SR generator"):
        models.require_generator(critic)
    assert models.require_generator(bicubic) is bicubic


def test_a_requested_scale_must_match_a_trained_model(tmp_path):
    path = models.save(models.create("msrresnet", num_block=1, scale=2), tmp_path / "x2")
    assert models.load(path, scale=2).scale == 2
    with pytest.raises(ConfigError, match="scale 4 does not match the checkpoint's scale 2"):
        models.load(path, scale=4)
    with pytest.raises(ConfigError, match="unknown option 'scale' for model 'patch_d'"):
        models.load("patch_d", scale=2, random_weights=True)


def test_shipped_models_lists_package_weights():
    found = checkpoint.shipped_models()
    assert all(path.suffix == ".safetensors" and path.is_file() for path in found.values())
    for name, path in found.items():
        assert path.stem == name
        assert read_metadata(path)["format"] == "gansr"


# --------------------------------------------------------------------------- foreign checkpoints


def _basicsr_state(model: torch.nn.Module) -> OrderedDict[str, torch.Tensor]:
    return OrderedDict((k, v.clone()) for k, v in model.state_dict().items())


def _by_hand(arch: str, state: dict[str, torch.Tensor], **kwargs) -> torch.nn.Module:
    """What a user would do without gansr's loader: build the module and load_state_dict."""
    model = models.create(arch, **kwargs)
    model.load_state_dict(state)
    return model.eval()


def test_real_esrgan_params_ema_layout_loads_without_options(tmp_path, set5):
    torch.manual_seed(2)
    ema = _basicsr_state(models.create("rrdbnet", num_block=3, num_grow_ch=16))
    raw = {k: torch.randn_like(v) for k, v in ema.items()}  # BasicSR also keeps the raw weights
    torch.save({"params_ema": ema, "params": raw}, tmp_path / "RealESRGAN_x4plus.pth")

    model = models.load(tmp_path / "RealESRGAN_x4plus.pth")
    assert model.arch == "rrdbnet" and model.config["num_block"] == 3 and model.config["num_grow_ch"] == 16
    assert model.scale == 4 and not model.training
    assert model.metadata["format"] == "basicsr-rrdbnet" and model.metadata["wrapper"] == "params_ema"
    x = _patch(set5, "baby.png", 16)
    assert torch.equal(_run(model, x), _run(_by_hand("rrdbnet", ema, num_block=3, num_grow_ch=16), x))


def test_full_size_rrdbnet_pth(tmp_path, set5):
    """The released ESRGAN/Real-ESRGAN size: 23 blocks, 16,697,987 parameters."""
    torch.manual_seed(3)
    reference = models.create("rrdbnet")
    torch.save({"params_ema": reference.state_dict()}, tmp_path / "x4.pth")
    model = models.load(tmp_path / "x4.pth")
    assert model.config == {"in_channels": 3, "num_feat": 64, "num_block": 23, "num_grow_ch": 32, "scale": 4}
    assert sum(p.numel() for p in model.parameters()) == 16_697_987
    x = _patch(set5, "head.png", 12)
    out = _run(model, x)
    assert out.shape == (1, 3, 48, 48)
    assert torch.equal(out, _run(reference, x))


@pytest.mark.parametrize(("scale", "first_in"), [(2, 12), (1, 48)])
def test_pixel_unshuffle_scales_are_inferred(tmp_path, set5, scale, first_in):
    torch.manual_seed(4)
    reference = models.create("rrdbnet", num_block=1, scale=scale)
    state = {f"module.{k}": v for k, v in reference.state_dict().items()}  # a DataParallel save
    assert state["module.conv_first.weight"].shape[1] == first_in
    torch.save({"params_ema": state}, tmp_path / "x.pth")
    model = models.load(tmp_path / "x.pth")
    assert model.scale == scale and model.in_channels == 3
    x = _patch(set5, "woman.png", 18)
    assert torch.equal(_run(model, x), _run(reference, x))


def _to_esrgan_oldarch(state: dict[str, torch.Tensor], num_block: int, n_up: int) -> dict[str, torch.Tensor]:
    """BasicSR names -> the original ESRGAN ``RRDB_Net`` sequential names (per its architecture.py).

    ``model.0`` conv, ``model.1`` the shortcut trunk, then per 2x an (upsample, conv, act) triple,
    then HR conv + act and the last conv: x4 -> model.3, model.6, model.8, model.10.
    """
    out = {}
    fixed = {"conv_first": "model.0", "conv_body": f"model.1.sub.{num_block}"}
    fixed.update({f"conv_up{i}": f"model.{3 * i}" for i in range(1, n_up + 1)})
    fixed.update({"conv_hr": f"model.{3 * n_up + 2}", "conv_last": f"model.{3 * n_up + 4}"})
    for key, value in state.items():
        module, _, param = key.rpartition(".")
        if module.startswith("body."):
            _, block, rdb, conv = module.split(".")
            out[f"model.1.sub.{block}.RDB{rdb[-1]}.{conv}.0.{param}"] = value
        else:
            out[f"{fixed[module]}.{param}"] = value
    return out


@pytest.mark.parametrize("scale", [4, 8])
def test_original_esrgan_oldarch_layout(tmp_path, set5, scale):
    torch.manual_seed(5)
    reference = models.create("rrdbnet", num_block=2, scale=scale)
    old = _to_esrgan_oldarch(reference.state_dict(), 2, n_up=3 if scale == 8 else 2)
    if scale == 4:  # the released RRDB_ESRGAN_x4.pth (old arch) key names
        assert {"model.1.sub.0.RDB1.conv1.0.weight", "model.1.sub.2.weight", "model.10.bias"} <= set(old)
    torch.save(old, tmp_path / "RRDB_ESRGAN_old_arch.pth")
    model = models.load(tmp_path / "RRDB_ESRGAN_old_arch.pth")
    assert model.metadata["format"] == "esrgan-oldarch" and model.metadata["wrapper"] is None
    assert model.config["num_block"] == 2 and model.scale == scale
    x = _patch(set5, "bird.png", 12)
    assert torch.equal(_run(model, x), _run(reference, x))


def test_esrgan_repository_rrdbnet_layout(tmp_path, set5):
    torch.manual_seed(6)
    reference = models.create("rrdbnet", num_block=2)
    renamed = {}
    for key, value in reference.state_dict().items():
        key = key.replace("conv_body", "trunk_conv").replace("conv_up", "upconv").replace("conv_hr", "HRconv")
        if key.startswith("body."):
            _, block, rdb, rest = key.split(".", 3)
            key = f"RRDB_trunk.{block}.RDB{rdb[-1]}.{rest}"
        renamed[key] = value
    torch.save(renamed, tmp_path / "RRDB_ESRGAN_x4.pth")
    model = models.load(tmp_path / "RRDB_ESRGAN_x4.pth")
    assert model.metadata["format"] == "esrgan-rrdbnet"
    x = _patch(set5, "baby.png", 16)
    assert torch.equal(_run(model, x), _run(reference, x))


@pytest.mark.parametrize("scale", [4, 2, 3])
def test_basicsr_msrresnet_params_layout(tmp_path, set5, scale):
    torch.manual_seed(7)
    reference = models.create("msrresnet", num_block=3, num_feat=32, scale=scale)
    torch.save({"params": reference.state_dict()}, tmp_path / "MSRResNet.pth")
    model = models.load(tmp_path / "MSRResNet.pth")
    assert model.arch == "msrresnet" and model.metadata["wrapper"] == "params"
    assert model.config == reference.config
    x = _patch(set5, "butterfly.png", 15)
    assert torch.equal(_run(model, x), _run(reference, x))


def test_foreign_layout_as_safetensors(tmp_path):
    reference = models.create("rrdbnet", num_block=1)
    save_file(
        {k: v.contiguous() for k, v in reference.state_dict().items()}, tmp_path / "community.safetensors"
    )
    model = models.load(tmp_path / "community.safetensors")
    assert model.metadata["format"] == "basicsr-rrdbnet" and model.config == reference.config
    save_file({"weight": torch.zeros(3)}, tmp_path / "other.safetensors")
    with pytest.raises(ModelError, match="not a gansr checkpoint"):
        models.load(tmp_path / "other.safetensors")
    with pytest.raises(ModelError, match="not a gansr checkpoint"):
        read_metadata(tmp_path / "community.safetensors")


@dataclass
class Payload:
    """Any class: pickles that hold one must never be unpickled."""

    note: str


def test_pickle_with_python_objects_is_refused(tmp_path):
    state = models.create("msrresnet", num_block=1).state_dict()
    torch.save({"params": state, "opt": Payload("arbitrary object")}, tmp_path / "evil.pth")
    with pytest.raises(ModelError, match="refusing to unpickle .*evil.pth"):
        models.load(tmp_path / "evil.pth")
    torch.save(models.create("msrresnet", num_block=1), tmp_path / "whole_module.pth")
    with pytest.raises(ModelError, match="refusing to unpickle"):
        models.load(tmp_path / "whole_module.pth")


def test_corrupt_and_unknown_pth_files(tmp_path):
    good = tmp_path / "good.pth"
    torch.save({"params": models.create("msrresnet", num_block=1).state_dict()}, good)
    data = good.read_bytes()
    (tmp_path / "trunc.pth").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.pth").write_bytes(b"definitely not a pickle" * 20)
    (tmp_path / "empty.pth").write_bytes(b"")
    for name in ("trunc.pth", "garbage.pth", "empty.pth"):
        with pytest.raises(ModelError, match="not a readable PyTorch checkpoint") as info:
            models.load(tmp_path / name)
        assert "\n" not in str(info.value)
    # SwinIR (BasicSR's params layout): a real layout gansr does not implement. (SRVGGNetCompact,
    # once the example here, loads now: tests/test_compact.py.)
    swinir = {
        "conv_first.weight": torch.zeros(180, 3, 3, 3),
        "layers.0.residual_group.blocks.0.attn.qkv.weight": torch.zeros(540, 180),
    }
    torch.save({"params": swinir}, good)
    with pytest.raises(
        ModelError, match="unrecognised checkpoint layout .*supported: BasicSR/Real-ESRGAN RRDBNet"
    ):
        models.load(good)
    torch.save({"params": {"step": 3}}, good)
    with pytest.raises(ModelError, match="no tensors found"):
        models.load(good)
