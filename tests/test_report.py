"""`gansr report`: the report on real images (2 Set5 crops) and MNIST digits, its files and fields."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

from gansr.cli import main
from gansr.data.io import read_image, write_image
from gansr.degrade import imresize
from gansr.errors import ConfigError, DataError
from gansr.models.checkpoint import shipped_models
from gansr.report import BenchmarkConfig, build_report, render_markdown, summary_table, write_report

RESULT_FIELDS = {"model", "arch", "params", "psnr", "ssim", "niqe", "cpu_s_per_mp", "images"}
DATASET_FIELDS = {"name", "path", "kind", "protocol", "images", "crop", "results", "not_applicable"}
TOP_FIELDS = {
    "gansr_version",
    "torch_version",
    "created",
    "cpu",
    "threads",
    "scale",
    "datasets",
    "models",
    "reference",
}
# 112 x 208: after the 4-pixel border crop NIQE still has two whole 96x96 blocks.
CROP_HW = (112, 208)


@pytest.fixture(scope="module")
def tiny(set5: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real Set5 crops (baby, bird), saved as PNGs."""
    folder = tmp_path_factory.mktemp("tiny")
    h, w = CROP_HW
    for name in ("baby.png", "bird.png"):
        hr = read_image(set5 / name, channels="rgb").pixels
        write_image(folder / name, hr[:, 40 : 40 + h, 30 : 30 + w])
    return folder


@pytest.fixture(scope="module")
def photo_report(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("bench")
    models = ["bicubic", "mnist-x4"] if "mnist-x4" in shipped_models() else ["bicubic"]
    cfg = BenchmarkConfig(models=models, datasets=[tiny], out=out, crop_size=64)
    report, crops = build_report(cfg)
    write_report(report, crops, out)
    return report, out


def _y(img: torch.Tensor) -> np.ndarray:
    """MATLAB rgb2ycbcr Y in [0, 1] (BT.601 studio range), written out here as a cross-check."""
    r, g, b = img.double().numpy()
    return (16 + 65.481 * r + 128.553 * g + 24.966 * b) / 255


def test_report_files_and_documented_fields(photo_report: tuple[dict, Path]) -> None:
    report, out = photo_report
    crop = report["datasets"][0]["crop"]
    assert {p.name for p in out.iterdir()} == {"README.md", "benchmark.json", crop}
    on_disk = json.loads((out / "benchmark.json").read_text())
    assert on_disk == json.loads(json.dumps(report))
    assert TOP_FIELDS <= set(on_disk)
    (ds,) = on_disk["datasets"]
    assert set(ds) == DATASET_FIELDS
    assert ds["kind"] == "images" and ds["images"] == 2
    (row,) = [r for r in ds["results"] if r["model"] == "bicubic"]
    assert set(row) == RESULT_FIELDS
    assert row["params"] == 0 and row["images"] == 2 and row["cpu_s_per_mp"] > 0
    assert 1.0 < row["niqe"] < 30.0  # a real NIQE value, not the NaN of too-small images
    # A gray digits model is listed as not applicable to photos, with its reason, and not run.
    if "mnist-x4" in [m["model"] for m in on_disk["models"]]:
        assert [n["model"] for n in ds["not_applicable"]] == ["mnist-x4"]
        assert all(r["model"] != "mnist-x4" for r in ds["results"])
    assert [r["method"] for r in on_disk["reference"]["rows"]] == ["bicubic", "SRCNN", "VDSR", "SRResNet"]


def test_bicubic_psnr_matches_an_independent_computation(tiny: Path, photo_report: tuple[dict, Path]) -> None:
    report, _ = photo_report
    (row,) = [r for r in report["datasets"][0]["results"] if r["model"] == "bicubic"]
    values = []
    for name in ("baby.png", "bird.png"):
        hr = read_image(tiny / name, channels="rgb").pixels.double()
        lr = (imresize(hr, 0.25).clamp(0, 1) * 255).round() / 255
        sr = (imresize(lr, 4.0).clamp(0, 1) * 255).round() / 255
        c = 4
        values.append(peak_signal_noise_ratio(_y(hr)[c:-c, c:-c], _y(sr)[c:-c, c:-c], data_range=1.0))
    assert row["psnr"] == pytest.approx(float(np.mean(values)), abs=1e-3)


def test_markdown_tables_and_crop_png(tiny: Path, photo_report: tuple[dict, Path]) -> None:
    report, out = photo_report
    md = (out / "README.md").read_text()
    ds = report["datasets"][0]
    (row,) = [r for r in ds["results"] if r["model"] == "bicubic"]
    assert "| model | arch | params | PSNR (dB) | SSIM | NIQE | CPU s/MP |" in md
    assert f"| bicubic | bicubic | 0 | {row['psnr']:.2f} | {row['ssim']:.4f} | {row['niqe']:.3f} |" in md
    assert f"![{ds['name']}: bicubic | models | HR]({ds['crop']})" in md
    assert "| SRResNet | 32.05 | 28.49 |" in md
    assert md == render_markdown(report)
    assert summary_table(report).splitlines()[2].startswith("| bicubic | 0 | ")

    png = Image.open(out / ds["crop"])
    assert png.format == "PNG" and png.mode == "RGB"
    arr = np.asarray(png)
    # bicubic | HR: two 64-pixel panels, a 4-pixel gap, a 14-pixel label strip on top.
    assert arr.shape == (14 + 64, 64 + 4 + 64, 3)
    hr = read_image(sorted(tiny.iterdir())[0], channels="rgb").pixels
    top, left = (CROP_HW[0] - 64) // 2, (CROP_HW[1] - 64) // 2
    want = (hr[:, top : top + 64, left : left + 64].permute(1, 2, 0).numpy() * 255).round()
    assert np.array_equal(arr[14:, 68:], want.astype(np.uint8))  # the right panel is the HR crop
    assert not np.array_equal(arr[14:, :64], arr[14:, 68:])  # and bicubic differs from it


def test_mnist_dataset_runs_digit_models(shared_data: Path, tmp_path: Path) -> None:
    if "mnist-x4" not in shipped_models():
        pytest.skip("mnist-x4 weights are not shipped in this checkout")
    cfg = BenchmarkConfig(
        models=["bicubic", "mnist-x4"], datasets=[shared_data / "mnist"], out=tmp_path, mnist_max_images=40
    )
    report, crops = build_report(cfg)
    (ds,) = report["datasets"]
    assert ds["kind"] == "mnist" and ds["images"] == 40 and ds["not_applicable"] == []
    rows = {r["model"]: r for r in ds["results"]}
    assert rows["bicubic"]["niqe"] is None  # NIQE is undefined on 28x28 digits
    assert rows["mnist-x4"]["psnr"] > rows["bicubic"]["psnr"] + 3
    crop = crops[ds["crop"]]
    assert crop.shape == (3, 14 + 8 * 28 * 3, 3 * 28 * 3 + 2 * 4)  # bicubic | mnist-x4 | HR, 8 digits


def test_cli_writes_report_and_rejects_bad_input(tiny: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "report"
    code = main(["report", "--models", "bicubic", "--datasets", str(tiny), "--out", str(out), "--no-niqe"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert "| bicubic | 0 |" in stdout
    data = json.loads((out / "benchmark.json").read_text())
    assert data["datasets"][0]["results"][0]["niqe"] is None
    assert (out / data["datasets"][0]["crop"]).is_file()

    code = main(["report", "--datasets", str(tmp_path / "missing"), "--out", str(out)])
    assert code == 2 and "no such folder" in capsys.readouterr().err
    code = main(["report", "--models", "no-such-model", "--datasets", str(tiny), "--out", str(out)])
    assert code == 2 and "gansr: error:" in capsys.readouterr().err


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="at least one dataset"):
        BenchmarkConfig(datasets=[])
    with pytest.raises(ConfigError, match="scale"):
        BenchmarkConfig(datasets=[Path(".")], scale=0)
    with pytest.raises(ConfigError, match="mnist_max_images"):
        BenchmarkConfig(datasets=[Path(".")], mnist_max_images=0)
    with pytest.raises(DataError, match="no such folder"):
        build_report(BenchmarkConfig(models=["bicubic"], datasets=[Path("/nonexistent/x")]))


# ---------------------------------------------------------------- --degradation (realistic LR)

JPEG30_YAML = "- {type: resize, scale: 0.25}\n- {type: jpeg, quality: 30}\n"


@pytest.fixture(scope="module")
def degraded_report(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, Path]:
    folder = tmp_path_factory.mktemp("degraded")
    pipe = folder / "jpeg30.yaml"
    pipe.write_text(JPEG30_YAML)
    cfg = BenchmarkConfig(
        models=["bicubic"],
        datasets=[tiny],
        out=folder / "out",
        crop_size=64,
        niqe=False,
        degradation=str(pipe),
    )
    report, crops = build_report(cfg)
    write_report(report, crops, cfg.out)
    return report, crops, pipe


def test_default_report_names_no_degradation(photo_report: tuple[dict, Path]) -> None:
    report, out = photo_report
    assert "degradation" not in report
    assert all("grid" not in r for r in report["datasets"][0]["results"])
    assert "grid" not in (out / "README.md").read_text()


def test_degraded_report_fields_and_grid(tiny: Path, degraded_report: tuple[dict, dict, Path]) -> None:
    from gansr.degrade import jpeg_compress
    from gansr.metrics import grid_ratio

    report, _, pipe = degraded_report
    assert report["degradation"]["name"] == str(pipe) and report["degradation"]["seed"] == 0
    assert [s["type"] for s in report["degradation"]["steps"]] == ["resize", "jpeg"]
    (ds,) = report["datasets"]
    assert set(ds) == DATASET_FIELDS and "jpeg30.yaml" in ds["protocol"] and "grid" in ds["protocol"]
    (row,) = ds["results"]
    assert set(row) == RESULT_FIELDS | {"grid"} and row["images"] == 2 and row["niqe"] is None
    # The same numbers by hand: MATLAB bicubic /4, 8 bits, JPEG 30, bicubic x4.
    psnrs, grids = [], []
    for name in ("baby.png", "bird.png"):
        hr = read_image(tiny / name, channels="rgb").pixels.double()
        lr = jpeg_compress((imresize(hr, 0.25).clamp(0, 1) * 255).round() / 255, 30)
        sr = (imresize(lr, 4.0).clamp(0, 1) * 255).round() / 255
        c = 4
        psnrs.append(peak_signal_noise_ratio(_y(hr)[c:-c, c:-c], _y(sr)[c:-c, c:-c], data_range=1.0))
        grids.append(grid_ratio(sr, 32))
    assert row["psnr"] == pytest.approx(float(np.mean(psnrs)), abs=1e-3)
    assert row["grid"] == pytest.approx(float(np.mean(grids)), abs=1e-3)
    assert row["grid"] > 1.2  # the JPEG grid shows through bicubic (measured: 1.396)


def test_degraded_markdown_and_crops(tiny: Path, degraded_report: tuple[dict, dict, Path]) -> None:
    from gansr.degrade import jpeg_compress

    report, crops, pipe = degraded_report
    (ds,) = report["datasets"]
    (row,) = ds["results"]
    md = render_markdown(report)
    assert f"degradation `{pipe}` (seed 0" in md
    assert "| model | arch | params | PSNR (dB) | SSIM | NIQE | grid | CPU s/MP |" in md
    assert f"| bicubic | bicubic | 0 | {row['psnr']:.2f} | {row['ssim']:.4f} | - | {row['grid']:.3f} |" in md
    assert f"![{ds['name']}: input | bicubic | models | HR]({ds['crop']})" in md
    assert "Published x4 reference numbers" not in md  # they are for clean bicubic LR
    assert summary_table(report).splitlines()[0].endswith(" PSNR / SSIM / grid |")
    assert summary_table(report).splitlines()[2].endswith(f" / {row['grid']:.3f} |")

    # input | bicubic | HR: three 64-pixel panels; the input is the degraded LR, nearest-upscaled.
    crop = crops[ds["crop"]]
    assert crop.shape == (3, 14 + 64, 3 * 64 + 2 * 4)
    hr = read_image(tiny / "baby.png", channels="rgb").pixels.double()
    lr = jpeg_compress((imresize(hr, 0.25).clamp(0, 1) * 255).round() / 255, 30)
    top, left = (CROP_HW[0] - 64) // 2, (CROP_HW[1] - 64) // 2
    want = lr.repeat_interleave(4, 1).repeat_interleave(4, 2)[:, top : top + 64, left : left + 64]
    assert torch.allclose(crop[:, 14:, :64].double(), want, atol=1e-6)
    assert torch.allclose(crop[:, 14:, -64:].double(), hr[:, top : top + 64, left : left + 64], atol=1e-6)


def test_degradation_leaves_mnist_protocol_alone(shared_data: Path, tmp_path: Path) -> None:
    cfg = BenchmarkConfig(
        models=["bicubic"],
        datasets=[shared_data / "mnist"],
        out=tmp_path,
        mnist_max_images=8,
        degradation="jpeg60_x4",
    )
    report, crops = build_report(cfg)
    (ds,) = report["datasets"]
    assert ds["protocol"].startswith("MNIST:") and report["degradation"]["name"] == "jpeg60_x4"
    assert set(ds["results"][0]) == RESULT_FIELDS  # no grid: the MNIST LR is not JPEG'd
    assert crops[ds["crop"]].shape[-1] == 2 * 28 * 3 + 4  # bicubic | HR, no input panel


def test_cli_degradation_and_its_errors(tiny: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "realworld"
    argv = ["report", "--models", "bicubic", "--datasets", str(tiny), "--out", str(out), "--no-niqe"]
    code = main([*argv, "--degradation", "blurnoise_jpeg70_x4", "--seed", "7"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert "PSNR / SSIM / grid" in stdout
    data = json.loads((out / "benchmark.json").read_text())
    assert data["degradation"]["name"] == "blurnoise_jpeg70_x4" and data["degradation"]["seed"] == 7
    assert [s["type"] for s in data["degradation"]["steps"]] == ["gaussian_blur", "resize", "noise", "jpeg"]
    assert data["datasets"][0]["results"][0]["grid"] > 1.0  # JPEG 70 after blur and noise: 1.096

    for bad, message in [("no_such_preset", "unknown degradation"), ("bicubic_x2", "shrinks by x2")]:
        code = main([*argv, "--degradation", bad])
        stdout, err = capsys.readouterr()
        assert code == 2 and stdout == "" and message in err
        assert err.startswith("gansr: error: ") and err.strip().count("\n") == 0
    with pytest.raises(ConfigError, match="seed"):
        BenchmarkConfig(datasets=[tiny], degradation="jpeg60_x4", seed=-1)
