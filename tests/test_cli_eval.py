"""`gansr eval`: the published bicubic baseline, the JSON shape, and bad input handling."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gansr.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_bicubic_set5_x4_reproduces_published_baseline(capsys, set5: Path) -> None:
    code, out, err = run_cli(
        capsys, "eval", "--model", "bicubic", "--data", str(set5), "--scale", "4", "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert set(report) == {"model", "dataset", "scale", "images", "mean"}
    assert report["model"] == "bicubic" and report["scale"] == 4 and report["dataset"] == "Set5"
    assert [img["name"] for img in report["images"]] == [
        "baby.png",
        "bird.png",
        "butterfly.png",
        "head.png",
        "woman.png",
    ]
    for img in report["images"]:
        assert set(img) == {"name", "psnr", "ssim"}
    # Published (MATLAB) bicubic x4 on Set5: 28.42 dB / 0.8104.
    assert report["mean"]["psnr"] == pytest.approx(28.42, abs=0.03)
    assert report["mean"]["ssim"] == pytest.approx(0.8104, abs=0.002)


def test_default_data_is_the_bundled_set5(capsys) -> None:
    code, out, err = run_cli(capsys, "eval", "--scale", "4")
    assert code == 0, err
    assert "Set5 (bundled)" in out and "mean" in out


def test_missing_and_empty_folders_fail_with_one_line(capsys, tmp_path: Path) -> None:
    code, out, err = run_cli(capsys, "eval", "--data", str(tmp_path / "nope"))
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and "no such folder" in err

    code, out, err = run_cli(capsys, "eval", "--data", str(tmp_path))
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and "no images" in err


def test_bad_files_among_good_ones_are_reported_and_skipped(capsys, tmp_path: Path, set5: Path) -> None:
    shutil.copy(set5 / "bird.png", tmp_path / "bird.png")
    (tmp_path / "corrupt.png").write_bytes((set5 / "baby.png").read_bytes()[:2000])  # truncated PNG
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("this is not an image\n")
    code, out, err = run_cli(capsys, "eval", "--data", str(tmp_path), "--json")
    report = json.loads(out)
    assert [img["name"] for img in report["images"]] == ["bird.png"]
    lines = err.strip().splitlines()
    assert len(lines) == 3, err
    assert all(line.startswith("gansr: error: ") for line in lines)
    assert any("corrupt.png" in line for line in lines)
    assert any("empty.png" in line for line in lines)
    assert any("notes.jpg" in line for line in lines)
    assert "Traceback" not in err
    assert code == 1  # something could not be measured


def test_nothing_measurable_exits_nonzero(capsys, tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    code, out, err = run_cli(capsys, "eval", "--data", str(tmp_path))
    assert code == 2
    assert "a.png" in err and "Traceback" not in err


def test_unknown_model_is_one_line(capsys, set5: Path) -> None:
    code, out, err = run_cli(capsys, "eval", "--model", "no-such-model", "--data", str(set5))
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and "no-such-model" in err
