"""`gansr eval`: the published bicubic baseline, the JSON shape, and bad input handling."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

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


# ---------------------------------------------------------------- --degradation (realistic LR)

JPEG60_YAML = "- {type: resize, scale: 0.25}\n- {type: jpeg, quality: 60}\n"


def _bicubic_jpeg60_by_hand(hr_path: Path) -> tuple[float, float]:
    """PSNR and grid ratio of bicubic x4 on a MATLAB-bicubic /4 + JPEG 60 LR, computed directly."""
    from gansr.data.io import read_image
    from gansr.degrade import imresize, jpeg_compress, quantize
    from gansr.metrics import grid_ratio, psnr

    hr = read_image(hr_path, channels="rgb").pixels.double()
    hr = hr[:, : hr.shape[1] // 4 * 4, : hr.shape[2] // 4 * 4]
    lr = quantize(jpeg_compress(quantize(imresize(hr, 0.25)), 60)).float()
    sr = quantize(imresize(lr.double(), 4.0))
    return psnr(sr, hr, crop_border=4), grid_ratio(sr, 32)


def test_degradation_yaml_json_fields_and_values(capsys, set5: Path, tmp_path: Path) -> None:
    pipe = tmp_path / "jpeg60.yaml"
    pipe.write_text(JPEG60_YAML)
    code, out, err = run_cli(capsys, "eval", "--data", str(set5), "--degradation", str(pipe), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert set(report) == {"model", "dataset", "scale", "images", "mean", "degradation"}
    deg = report["degradation"]
    assert deg["name"] == str(pipe) and deg["seed"] == 0
    assert [s["type"] for s in deg["steps"]] == ["resize", "jpeg"] and deg["steps"][1]["quality"] == 60
    for img in report["images"]:
        assert set(img) == {"name", "psnr", "ssim", "grid"}
    assert set(report["mean"]) == {"psnr", "ssim", "grid"}
    # JPEG costs PSNR against the clean protocol's 28.42 dB and leaves a visible 32-pixel grid
    # (Set5 mean 26.94 dB, grid 1.216; head 1.504, baby 1.405, butterfly's edges mask it: 0.968).
    assert 26.5 < report["mean"]["psnr"] < 27.5
    assert report["mean"]["grid"] > 1.15
    by_name = {img["name"]: img for img in report["images"]}
    assert by_name["head.png"]["grid"] > 1.4
    # Every number is what the pipeline, done by hand, gives (the model upscales in float32).
    for name in ("bird.png", "head.png"):
        want_psnr, want_grid = _bicubic_jpeg60_by_hand(set5 / name)
        assert by_name[name]["psnr"] == pytest.approx(want_psnr, abs=1e-3)
        assert by_name[name]["grid"] == pytest.approx(want_grid, abs=1e-3)


def test_degradation_presets_and_table(capsys, set5: Path, tmp_path: Path) -> None:
    from gansr.degrade import PRESETS

    assert {"jpeg60_x4", "blurnoise_jpeg70_x4"} <= set(PRESETS)
    pipe = tmp_path / "jpeg60.yaml"
    pipe.write_text(JPEG60_YAML)
    code, out, err = run_cli(capsys, "eval", "--data", str(set5), "--degradation", "jpeg60_x4", "--json")
    assert code == 0, err
    preset = json.loads(out)
    code, out, _ = run_cli(capsys, "eval", "--data", str(set5), "--degradation", str(pipe), "--json")
    assert [i["psnr"] for i in json.loads(out)["images"]] == [i["psnr"] for i in preset["images"]]
    assert preset["degradation"]["name"] == "jpeg60_x4"

    code, out, err = run_cli(capsys, "eval", "--data", str(set5), "--degradation", "blurnoise_jpeg70_x4")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].endswith("LR: blurnoise_jpeg70_x4 (seed 0)")
    assert lines[1].split() == ["image", "PSNR", "SSIM", "grid"]
    mean = lines[-1].split()
    assert mean[0] == "mean" and len(mean) == 4
    # Blur, noise and JPEG 70: below the clean 28.42 dB, and still a grid (Set5: 26.6 dB, 1.17).
    assert float(mean[1]) < 27.5 and float(mean[3]) > 1.1


def test_degradation_noise_is_seeded_per_image(capsys, set5: Path, tmp_path: Path) -> None:
    pipe = tmp_path / "noisy.yaml"
    pipe.write_text("- {type: resize, scale: 0.25}\n- {type: noise, sigma: 10}\n")

    def psnrs(*extra: str) -> list[float]:
        code, out, err = run_cli(
            capsys, "eval", "--data", str(set5), "--degradation", str(pipe), "--json", *extra
        )
        assert code == 0, err
        return [img["psnr"] for img in json.loads(out)["images"]]

    seed0 = psnrs()
    assert psnrs("--seed", "0") == seed0  # reproducible, and 0 is the default
    seed1 = psnrs("--seed", "1")
    assert all(a != b for a, b in zip(seed0, seed1, strict=True))
    assert max(abs(a - b) for a, b in zip(seed0, seed1, strict=True)) < 0.2  # same noise level

    # The stream is keyed by (seed, image index): one copy of bird.png as image 0 of a folder gets
    # image 0's draws, not those bird.png gets as image 1 of Set5.
    from gansr.evaluate import Degradation

    deg = Degradation.resolve(str(pipe), 4, seed=0)
    a, b = (torch.rand(4, generator=deg.generator(i)) for i in (0, 1))
    assert not torch.equal(a, b) and torch.equal(a, torch.rand(4, generator=deg.generator(0)))
    solo = tmp_path / "solo"
    solo.mkdir()
    shutil.copy(set5 / "bird.png", solo / "bird.png")
    code, out, _ = run_cli(capsys, "eval", "--data", str(solo), "--degradation", str(pipe), "--json")
    assert json.loads(out)["images"][0]["psnr"] != seed0[1]


def test_no_degradation_keeps_the_literature_protocol(capsys, set5: Path) -> None:
    code, out, err = run_cli(capsys, "eval", "--data", str(set5), "--seed", "5")
    assert code == 0, err
    assert "grid" not in out and "LR:" not in out
    assert "28.4" in out.splitlines()[-1]


BAD_PIPELINES = {
    "bad.yaml": "- {type: resize\n  scale: [",
    "notsteps.yaml": "type: resize\n",
    "badstep.yaml": "- {type: sharpen, amount: 2}\n",
    "x2.yaml": "- {type: resize, scale: 0.5}\n",
}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("no_such_preset", "unknown degradation 'no_such_preset': not a preset (bicubic_x2, "),
        ("{tmp}/missing.yaml", "missing.yaml: degradation pipeline file not found"),
        ("{tmp}/bad.yaml", "bad.yaml: invalid YAML"),
        ("{tmp}/notsteps.yaml", "notsteps.yaml: expected a list of steps"),
        ("{tmp}/badstep.yaml", "sharpen"),
        ("{tmp}/x2.yaml", "shrinks by x2, but --scale is 4"),
        ("bicubic_x2", "degradation 'bicubic_x2' shrinks by x2, but --scale is 4"),
    ],
)
def test_bad_degradation_is_one_line(capsys, set5: Path, tmp_path: Path, value: str, message: str) -> None:
    for name, text in BAD_PIPELINES.items():
        (tmp_path / name).write_text(text)
    spec = value.format(tmp=tmp_path)
    code, out, err = run_cli(capsys, "eval", "--data", str(set5), "--degradation", spec)
    assert code == 2 and out == ""
    assert err.startswith("gansr: error: ") and err.strip().count("\n") == 0, err
    assert message in err and "Traceback" not in err


def test_degradation_rejects_negative_seed_and_mnist(capsys, set5: Path, shared_data: Path) -> None:
    code, out, err = run_cli(
        capsys, "eval", "--data", str(set5), "--degradation", "jpeg60_x4", "--seed", "-1"
    )
    assert code == 2 and "seed must be a non-negative integer" in err
    code, out, err = run_cli(
        capsys, "eval", "--data", str(shared_data / "mnist"), "--degradation", "jpeg60_x4"
    )
    assert code == 2 and "MNIST has its own" in err and err.strip().count("\n") == 0


def test_design001_mnist_protocol_by_scale(capsys, set5: Path, shared_data: Path) -> None:
    """``--scale 28/26`` on an MNIST folder is design 001's 26 -> 28 protocol (bicubic 27.03 dB on
    all 2,000 held-out digits); photo folders and x4-only models refuse it in one line."""
    mnist = str(shared_data / "mnist")
    code = main(
        ["eval", "--model", "bicubic", "--data", mnist, "--scale", "28/26", "--max-images", "100", "--json"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)
    assert len(report["images"]) == 100 and 24 < report["mean"]["psnr"] < 32  # x4's is ~14 dB
    code = main(
        [
            "eval",
            "--model",
            "mnist-cppn",
            "--data",
            mnist,
            "--scale",
            "28/26",
            "--max-images",
            "100",
            "--json",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["mean"]["psnr"] > report["mean"]["psnr"] + 3
    for argv, message in (
        (["--data", str(set5), "--scale", "28/26"], "photo benchmarks take an integer factor"),
        (["--model", "mnist-x4", "--data", mnist, "--scale", "28/26"], "needs an arbitrary-scale model"),
        (["--data", mnist, "--scale", "3"], "the MNIST protocols are x4"),
    ):
        assert main(["eval", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    with pytest.raises(SystemExit) as exit_info:  # argparse's own usage error
        main(["eval", "--data", mnist, "--scale", "a/b"])
    assert exit_info.value.code == 2 and "expected a number such as 4 or 28/26" in capsys.readouterr().err
