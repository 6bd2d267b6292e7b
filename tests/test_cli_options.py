"""The command line as a whole: one meaning of ``--size``, the command names and ``gansr --help``."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from gansr import models
from gansr.cli import COMMANDS, DEPRECATED_NAMES, main
from gansr.cli.options import Size, parse_output_size, parse_size, parse_sizes

# --------------------------------------------------------------------------- the size parser


@pytest.mark.parametrize(
    ("text", "size"),
    [("64x32", (64, 32)), ("64X32", (64, 32)), (" 64 x 32 ", (64, 32)), ("48", (48, 48)), ("1x1", (1, 1))],
)
def test_parse_size_is_width_then_height(text: str, size: tuple[int, int]) -> None:
    parsed = parse_size(text)
    assert parsed == size and (parsed.width, parsed.height) == size
    assert parsed.hw == (size[1], size[0]) and str(parsed) == f"{size[0]}x{size[1]}"


@pytest.mark.parametrize(
    "text", ["12y", "", "x", "64xx", "0x4", "4x0", "-1x3", "64*48", "1920x", "x1080", "1.5x2"]
)
def test_parse_size_rejects_bad_text(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=f"must be WxH or N .*got {re.escape(repr(text))}"):
        parse_size(text)


def test_output_size_may_leave_one_side_out() -> None:
    assert parse_output_size("1920x") == Size(1920, 0) and parse_output_size("x1080") == Size(0, 1080)
    assert parse_output_size("1920x1080") == Size(1920, 1080) and parse_output_size("64") == Size(64, 64)
    assert str(parse_output_size("x1080")) == "x1080"
    for bad in ("x", "0x0", "12y", "axb"):
        with pytest.raises(argparse.ArgumentTypeError, match="must be WxH, N, Wx or xH"):
            parse_output_size(bad)


def test_parse_sizes_is_a_comma_list() -> None:
    assert parse_sizes("64x32, 20") == (Size(64, 32), Size(20, 20))
    for bad in (",", "64x32,12y"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_sizes(bad)


def test_every_size_option_rejects_bad_text_the_same_way(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["upscale", "in.png", "--size", "12y"],
        ["speed", "--size", "12y"],
        ["models", "--size", "12y"],
        ["export", "--model", "srcnn", "-o", "x.onnx", "--size", "12y"],
        ["sample", "-o", "x.png", "--size", "12y"],
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert last.startswith(f"gansr {argv[0]}: error: argument --size: must be WxH") and "'12y'" in last


def test_a_non_square_size_means_width_x_height_in_every_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, set5: Path
) -> None:
    """``--size 64x32`` is 64 pixels wide and 32 high wherever a command takes a size."""
    # upscale: the final image.
    Image.open(set5 / "bird.png").crop((0, 0, 24, 20)).save(tmp_path / "in.png")
    out = tmp_path / "up.png"
    assert (
        main(["upscale", str(tmp_path / "in.png"), "--model", "bicubic", "--size", "64x32", "-o", str(out)])
        == 0
    )
    with Image.open(out) as im:
        assert im.size == (64, 32)  # PIL: (width, height)

    # speed: the LR input tensor (1, C, 32, 64).
    net = models.save(models.create("msrresnet", num_block=1, num_feat=8, scale=2), tmp_path / "tiny")
    argv = ["speed", "--model", str(net), "--size", "64x32", "--precision", "fp32", "--tiles", "0"]
    assert main([*argv, "--no-naive", "--repeat", "1", "--warmup", "0", "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["input"] == {"width": 64, "height": 32} and report["output"] == {"width": 128, "height": 64}

    # models: the profiled input (N, C, H, W) and the table's input column.
    assert main(["models", "--json", "--size", "64x32"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out) if r["type"] == "architecture"}
    assert rows["srcnn"]["input_size"] == [1, 3, 32, 64]
    assert main(["models", "--size", "64x32"]) == 0
    srcnn = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("srcnn "))
    assert " 64x32 " in srcnn

    # export: the traced graph's fixed input (N, C, H, W) with --static.
    onnx = pytest.importorskip("onnx")
    out = tmp_path / "net.onnx"
    assert (
        main(["export", "--model", str(net), "-o", str(out), "--static", "--no-verify", "--size", "64x32"])
        == 0
    )
    capsys.readouterr()
    dims = onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[2:]] == [32, 64]

    # sample: the rendered image.
    assert main(["sample", "-o", str(tmp_path / "s.png"), "--size", "64x32", "--channels", "1"]) == 0
    capsys.readouterr()
    with Image.open(tmp_path / "s.png") as im:
        assert im.size == (64, 32)


# --------------------------------------------------------------------------- names and help


def test_help_lists_every_command_in_groups_and_hides_the_former_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    listed = [
        line.split()[0] for line in text.splitlines() if line.startswith("  ") and not line.startswith("  -")
    ]
    assert listed == list(COMMANDS)
    assert "measure:" in text
    assert "  speed    time and measure memory of inference or a training step" in text
    assert "  report   PSNR/SSIM/NIQE tables and crops over datasets" in text
    for old in DEPRECATED_NAMES:
        assert f" {old} " not in text


@pytest.mark.parametrize(("old", "new"), sorted(DEPRECATED_NAMES.items()))
def test_former_names_still_work_with_one_line_on_stderr(
    capsys: pytest.CaptureFixture[str], old: str, new: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([new, "--help"])
    assert exc.value.code == 0
    new_help = capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main([old, "--help"])
    assert exc.value.code == 0
    old_help = capsys.readouterr()
    assert old_help.out == new_help.out  # the same parser
    assert old_help.err == f"gansr: warning: gansr {old} is now gansr {new}\n"


def test_former_report_name_runs_the_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, set5: Path
) -> None:
    folder = tmp_path / "hr"
    folder.mkdir()
    Image.open(set5 / "bird.png").crop((0, 0, 48, 48)).save(folder / "bird.png")
    argv = ["--models", "bicubic", "--datasets", str(folder), "--out", str(tmp_path / "out"), "--no-niqe"]
    assert main(["benchmark", *argv]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines()[0] == "gansr: warning: gansr benchmark is now gansr report"
    assert (tmp_path / "out" / "benchmark.json").is_file() and "bicubic" in captured.out
