"""Parameter/MAC profiling and the ``gansr models`` / ``gansr export`` commands."""

from __future__ import annotations

import json
import math

import onnx
import pytest
import torch
from torch import nn

from gansr import models
from gansr.cli import main
from gansr.models import checkpoint
from gansr.models.profile import count_macs, count_parameters, profile_model

# --------------------------------------------------------------------------- profiling


def test_count_macs_matches_the_layer_formulas():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=4),
        nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 5),
    )
    n, h, w = 2, 10, 12
    expected = (
        n * 8 * h * w * 3 * 9  # conv: every output element sums in_channels * kernel products
        + n * 8 * (h // 2) * (w // 2) * (8 // 4) * 9  # grouped, strided
        + n * 8 * (h // 2) * (w // 2) * 4 * 16  # transposed: every input element hits out_ch * kernel
        + n * 5 * 4  # linear
    )
    assert count_macs(net, (n, 3, h, w)) == expected
    assert count_parameters(net) == sum(p.numel() for p in net.parameters())
    net[0].weight.requires_grad_(False)
    assert count_parameters(net) == count_parameters(net, trainable_only=False) - 8 * 3 * 9


def test_meta_device_count_equals_a_real_forward_pass():
    torch.manual_seed(0)
    real = models.create("msrresnet", num_block=2, scale=2)
    on_meta = profile_model("msrresnet", (24, 20), num_block=2, scale=2)
    assert on_meta["device"] == "meta"
    assert on_meta["macs"] == count_macs(real, (1, 3, 24, 20))
    assert on_meta["parameters"] == count_parameters(real)
    assert on_meta["output_size"] == [1, 3, 48, 40]
    assert real.training  # counting switched to eval and back


def test_profile_model_reports_per_output_megapixel_cost():
    small = profile_model("rrdbnet", (32, 32))
    large = profile_model("rrdbnet", (64, 48))
    assert small["parameters"] == large["parameters"] == 16_697_987
    assert large["macs"] == small["macs"] * (64 * 48) // (32 * 32)  # fully convolutional at x4
    assert math.isclose(small["gmacs_per_output_mpixel"], large["gmacs_per_output_mpixel"])
    assert math.isclose(large["gmacs_per_output_mpixel"], large["macs"] / (256 * 192) / 1e3)
    d = profile_model("patch_d", (64, 64))
    assert d["kind"] == "discriminator" and d["gmacs_per_output_mpixel"] is None


# --------------------------------------------------------------------------- gansr models


def _models_json(capsys, *extra: str) -> dict[str, dict]:
    assert main(["models", "--json", *extra]) == 0
    rows = json.loads(capsys.readouterr().out)
    return {row["name"]: row for row in rows if row["type"] == "architecture"}


def test_models_json_lists_every_architecture_with_exact_counts(capsys):
    rows = _models_json(capsys)
    assert set(rows) == {a.name for a in models.architectures()}
    assert rows["mnist_sr"]["parameters"] == 56_547
    assert rows["mnist_feature_d"]["parameters"] == 18_944
    assert rows["rrdbnet"]["parameters"] == 16_697_987
    for name, row in rows.items():
        assert row["kind"] in {"generator", "discriminator", "baseline"} and row["description"]
        assert row["input_size"][2:] == [64, 64]
        if name != "bicubic":
            assert row["macs"] > 0, name
        if row["kind"] == "discriminator":
            assert row["gmacs_per_output_mpixel"] is None
        else:
            out_pixels = row["output_size"][2] * row["output_size"][3]
            assert row["gmacs_per_output_mpixel"] == round(row["macs"] / out_pixels / 1e3, 3)
    # The same arithmetic as a real forward pass on the CPU.
    assert rows["mnist_sr"]["macs"] == count_macs(models.create("mnist_sr"), (1, 1, 64, 64))


def test_models_size_option_and_table(capsys):
    rows = _models_json(capsys, "--size", "48x32")  # width x height
    full = profile_model("rrdbnet", (64, 64))
    assert rows["rrdbnet"]["input_size"] == [1, 3, 32, 48]
    assert rows["rrdbnet"]["macs"] == full["macs"] * (32 * 48) // (64 * 64)

    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0]
    assert header.split()[:6] == ["name", "kind", "params", "input", "MACs", "GMACs/out-MP"]
    rrdb = next(line for line in lines if line.startswith("rrdbnet "))
    assert "16,697,987" in rrdb
    # Right-aligned numeric columns end where their header ends.
    assert rrdb.index("16,697,987") + len("16,697,987") == header.index("params") + len("params")
    assert any(line.startswith("shipped models") for line in lines)


def test_models_rejects_a_bad_size(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["models", "--size", "64xx"])
    assert exc.value.code == 2
    assert "gansr models: error: argument --size: must be WxH or N" in capsys.readouterr().err


def test_models_lists_shipped_models(capsys, tmp_path, monkeypatch):
    path = models.save(models.create("mnist_sr"), tmp_path / "mnist_x4", metadata={"description": "MNIST 4x"})
    monkeypatch.setattr(checkpoint, "shipped_models", lambda: {"mnist_x4": path})
    assert main(["models", "--json"]) == 0
    shipped = [row for row in json.loads(capsys.readouterr().out) if row["type"] == "shipped"]
    assert shipped == [
        {
            "name": "mnist_x4",
            "arch": "mnist_sr",
            "scale": 4,
            "dtype": "float32",
            "description": "MNIST 4x",
            "bytes": path.stat().st_size,
            "type": "shipped",
        }
    ]


# --------------------------------------------------------------------------- gansr export


def test_export_command_from_arch_name(capsys, tmp_path):
    out = tmp_path / "msr.onnx"
    assert main(["export", "--model", "msrresnet", "--scale", "2", "-o", str(out), "--size", "20x24"]) == 0
    text = capsys.readouterr().out
    # Checked at another size than the example (dynamic axes): 20 // 2 + 5 wide, 24 // 2 + 3 high.
    assert f"wrote {out}" in text and "onnxruntime vs PyTorch at 15x15: max abs diff" in text
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props["arch"] == "msrresnet" and props["scale"] == "2"


def test_export_command_from_checkpoint(capsys, tmp_path):
    torch.manual_seed(1)
    model = models.create("rrdbnet", num_block=1)
    torch.save({"params_ema": model.state_dict()}, tmp_path / "net.pth")
    out = tmp_path / "net.onnx"
    assert main(["export", "--model", str(tmp_path / "net.pth"), "-o", str(out), "--size", "16x16"]) == 0
    diff = float(capsys.readouterr().out.rsplit("max abs diff", 1)[1])
    assert diff <= 1e-4
    assert main(["export", "--model", str(tmp_path / "net.pth"), "--scale", "2", "-o", str(out)]) == 2
    assert "does not match the checkpoint's scale 4" in capsys.readouterr().err


def test_export_command_errors_are_one_line(capsys, tmp_path):
    assert main(["export", "--model", "nope", "-o", str(tmp_path / "x.onnx")]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    # A graph that only works at the traced size is not written, with a pointer to --static, and
    # a file the user already had at that path is left alone.
    (tmp_path / "b.onnx").write_bytes(b"previous export")
    assert main(["export", "--model", "bicubic", "-o", str(tmp_path / "b.onnx"), "--size", "16x16"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "(try --static)" in err
    assert (tmp_path / "b.onnx").read_bytes() == b"previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.onnx"]  # no staging file left
    assert (
        main(["export", "--model", "bicubic", "--static", "-o", str(tmp_path / "b.onnx"), "--size", "16x16"])
        == 0
    )
    assert (tmp_path / "b.onnx").is_file()


def test_export_command_validates_options(capsys, tmp_path):
    argv = ["export", "--model", "msrresnet", "-o", str(tmp_path / "x.onnx")]
    assert main([*argv, "--opset", "3"]) == 2
    assert capsys.readouterr().err.startswith("gansr: error:")
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--size", "0x4"])
    assert exc.value.code == 2 and "argument --size: must be WxH or N" in capsys.readouterr().err
