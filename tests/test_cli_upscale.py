"""`gansr upscale`: real-world images of every kind, bad inputs, naming rules, interruption."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from gansr.cli import main
from gansr.data.io import read_image, write_image
from gansr.degrade import imresize

pytestmark = pytest.mark.usefixtures("one_thread")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    args = list(argv)
    if args[:1] == ["upscale"] and "--model" not in args:
        # These tests are about files, formats and naming: the exact, fast bicubic model keeps
        # the expected pixels computable (the default model is tested in test_shipped_models).
        args += ["--model", "bicubic"]
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def leftovers(folder: Path) -> list[str]:
    """Temporary or hidden files anywhere under ``folder`` (a write that did not finish)."""
    return [p.name for p in folder.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


def crop(path: Path, box: tuple[int, int, int, int]) -> Image.Image:
    return Image.open(path).convert("RGB").crop(box)


# --------------------------------------------------------------------------- every kind of image


@pytest.fixture(scope="module")
def zoo(tmp_path_factory, set5: Path) -> dict[str, object]:
    """A folder of real images in every mode a user meets, built from Set5 (shipped in the package)."""
    root = tmp_path_factory.mktemp("zoo")
    facts: dict[str, object] = {"root": root}
    baby = crop(set5 / "baby.png", (200, 150, 296, 230))  # 96 x 80

    # RGBA with a fully transparent region and a soft edge; black hidden under it.
    alpha = np.full((80, 96), 255, np.uint8)
    alpha[:, 60:] = 0
    alpha[:, 50:60] = np.linspace(255, 0, 10).astype(np.uint8)
    rgb = np.asarray(baby).copy()
    rgb[alpha == 0] = 0
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(root / "rgba.png")
    facts["rgba_alpha"] = alpha

    # 16-bit RGBA PNG with real 16-bit content (a float resize of a real image).
    hr = read_image(set5 / "baby.png").pixels[:, 200:328, 200:328]
    pixels16 = imresize(hr.double(), 0.5).clamp(0, 1).float()
    alpha16 = torch.linspace(0.2, 1.0, 64).repeat(64, 1)[None]
    write_image(root / "rgba16.png", pixels16, alpha=alpha16, bit_depth=16)

    crop(set5 / "bird.png", (60, 60, 124, 108)).convert("L").save(root / "gray.png")

    # Gray JPEG stored sideways with EXIF orientation 6 ("rotate 90 degrees clockwise to view").
    upright = crop(set5 / "head.png", (100, 60, 148, 140)).convert("L")  # 48 wide, 80 tall
    exif = Image.Exif()
    exif[0x0112] = 6
    upright.transpose(Image.Transpose.ROTATE_90).save(root / "gray_exif.jpg", exif=exif, quality=95)
    facts["upright"] = upright

    crop(set5 / "butterfly.png", (100, 100, 196, 172)).convert("CMYK").save(root / "cmyk.jpg", quality=95)

    pal = crop(set5 / "bird.png", (50, 50, 114, 114)).convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    indices = np.asarray(pal).copy()
    indices[indices == 0] = 1  # index 0 becomes the transparent one, used only in the corner
    indices[:16, :16] = 0
    transparent = Image.fromarray(indices, "P")
    transparent.putpalette(pal.getpalette())
    transparent.save(root / "palette.png", transparency=0)

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    crop(set5 / "woman.png", (100, 100, 164, 148)).save(root / "icc.png", icc_profile=icc)
    facts["icc"] = icc

    # A 4000x3000 photo (12 MP) from a real image.
    Image.open(set5 / "baby.png").convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC).save(
        root / "photo.jpg", quality=85
    )
    return facts


def test_one_call_handles_every_kind_of_image(capsys, tmp_path: Path, zoo: dict) -> None:
    root: Path = zoo["root"]  # type: ignore[assignment]
    out = tmp_path / "out"
    # --outscale 2 (not the bicubic model's x4) keeps the 4000x3000 photo's output at 48 MP.
    code, _, err = run_cli(capsys, "upscale", str(root), "-o", str(out), "--outscale", "2")
    assert code == 0, err
    assert "8 upscaled, 0 skipped (output exists), 0 failed" in err
    assert "Traceback" not in err

    with Image.open(out / "rgba_x2.png") as im:
        assert (im.mode, im.size) == ("RGBA", (192, 160))
        a = np.asarray(im)[..., 3]
    assert a[:, 124:].max() == 0 and a[:, :96].min() == 255  # transparent stays transparent
    src_alpha = torch.from_numpy(zoo["rgba_alpha"].astype(np.float32) / 255)[None]
    assert np.abs(a / 255 - imresize(src_alpha, 2).clamp(0, 1)[0].numpy()).max() <= 1 / 255

    data = (out / "rgba16_x2.png").read_bytes()
    assert data[24:26] == bytes([16, 6])  # IHDR: 16-bit, colour type 6 (RGBA)
    r16 = read_image(out / "rgba16_x2.png")
    assert r16.bit_depth == 16 and r16.alpha is not None and r16.pixels.shape == (3, 128, 128)
    levels = np.round(r16.pixels.numpy() * 65535).astype(np.int64)
    assert np.mean(levels % 257 != 0) > 0.9  # not 8-bit values padded to 16 bits

    with Image.open(out / "gray_x2.png") as im:
        assert (im.mode, im.size) == ("L", (128, 96))
        gray_out = np.asarray(im, np.float32) / 255
    gray_in = read_image(root / "gray.png").pixels
    assert np.abs(gray_out - imresize(gray_in, 2).clamp(0, 1)[0].numpy()).max() <= 0.5 / 255 + 1e-6

    with Image.open(out / "gray_exif_x2.jpg") as im:
        assert (im.format, im.mode, im.size) == ("JPEG", "L", (96, 160))  # upright: 48x80 doubled
        assert im.getexif().get(0x0112, 1) == 1
        upright = torch.from_numpy(np.asarray(zoo["upright"], np.float32) / 255)[None]
        expected = imresize(upright, 2).clamp(0, 1)[0].numpy()
        err = np.abs(np.asarray(im, np.float32) / 255 - expected).mean()
    assert err < 3 / 255

    with Image.open(out / "cmyk_x2.jpg") as im:
        assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (192, 144))
    with Image.open(out / "palette_x2.png") as im:
        assert (im.mode, im.size) == ("RGBA", (128, 128))
        pa = np.asarray(im)[..., 3]
    assert pa[:28, :28].max() == 0 and pa[40:, 40:].min() == 255
    with Image.open(out / "icc_x2.png") as im:
        assert im.mode == "RGB" and im.info.get("icc_profile") == zoo["icc"]
    with Image.open(out / "photo_x2.jpg") as im:
        assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (8000, 6000))
    assert leftovers(out) == []


# --------------------------------------------------------------------------- bad inputs


def test_bad_inputs_fail_one_line_each_and_the_batch_goes_on(tmp_path: Path, set5: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    crop(set5 / "bird.png", (0, 0, 40, 32)).save(folder / "good1.png")
    crop(set5 / "woman.png", (0, 0, 32, 40)).save(folder / "good2.jpg")
    (folder / "corrupt.png").write_bytes(os.urandom(3000))
    whole = (set5 / "butterfly.png").read_bytes()
    (folder / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "huge.png").write_bytes((set5 / "baby.png").read_bytes())  # 512x512 > --max-pixels
    notes = tmp_path / "notes.jpg"
    notes.write_text("not an image, whatever the name says\n")
    missing = tmp_path / "missing.png"

    # The real executable path: it exits without interpreter teardown (gansr.cli.console), so
    # this also checks that every message and output file is complete when the process ends.
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gansr",
            "upscale",
            str(folder),
            str(notes),
            str(missing),
            "--max-pixels",
            "100000",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("gansr: error:")]
    assert len(errors) == 6, proc.stderr
    for bad in ("corrupt.png", "truncated.png", "empty.png", "huge.png", "notes.jpg", "missing.png"):
        assert sum(bad in line for line in errors) == 1, (bad, errors)
    assert any("huge.png" in e and "limit" in e for e in errors)
    assert "2 upscaled, 0 skipped (output exists), 6 failed" in proc.stderr
    assert sorted(p.name for p in folder.iterdir() if "_x4" in p.name) == ["good1_x4.png", "good2_x4.jpg"]
    with Image.open(folder / "good1_x4.png") as im:
        assert im.size == (160, 128)
    assert leftovers(tmp_path) == []


def test_usage_errors_exit_2(capsys, tmp_path: Path, set5: Path) -> None:
    image = tmp_path / "a.png"
    crop(set5 / "bird.png", (0, 0, 16, 16)).save(image)
    for argv in (
        ["--outscale", "0"],
        ["--size", "axb"],
        ["--outscale", "2", "--size", "10x10"],
        ["--tile", "-1"],
    ):
        with pytest.raises(SystemExit) as exc:
            main(["upscale", str(image), *argv])
        assert exc.value.code == 2
    capsys.readouterr()
    code, _, err = run_cli(capsys, "upscale", str(tmp_path / "nothing-here.png"))
    assert code == 2 and "no such file or folder" in err
    code, _, err = run_cli(capsys, "upscale", str(image), "--model", "no-such-model")
    assert code == 2 and err.count("\n") == 1 and "no-such-model" in err
    code, _, err = run_cli(capsys, "upscale", str(image), "-o", str(image))
    assert code == 2 and "refusing to overwrite" in err
    if not torch.cuda.is_available():
        code, _, err = run_cli(capsys, "upscale", str(image), "--device", "cuda")
        assert code == 2 and "CUDA is not available" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


# --------------------------------------------------------------------------- naming


def test_output_names_never_collide_or_replace_inputs(capsys, tmp_path: Path, set5: Path) -> None:
    folder = tmp_path / "pics"
    folder.mkdir()
    crop(set5 / "bird.png", (0, 0, 12, 10)).save(folder / "a.png")
    crop(set5 / "head.png", (0, 0, 12, 10)).save(folder / "a.jpg")
    code, _, err = run_cli(capsys, "upscale", str(folder), "--ext", "png")
    assert code == 0, err
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["a.jpg", "a.png", "a_jpg_x4.png", "a_x4.png"]
    with Image.open(folder / "a_jpg_x4.png") as im:  # the JPEG's output, not the PNG's
        jpg_out = np.asarray(im, np.float32)
    with Image.open(folder / "a_x4.png") as im:
        png_out = np.asarray(im, np.float32)
    assert np.abs(jpg_out - png_out).mean() > 10

    # Re-run: existing outputs are skipped, and the earlier outputs are not taken as inputs.
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    code, _, err = run_cli(capsys, "upscale", str(folder), "--ext", "png")
    assert code == 0 and "0 upscaled, 2 skipped" in err
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps
    code, _, err = run_cli(capsys, "upscale", str(folder), "--ext", "png", "--overwrite")
    assert code == 0 and "2 upscaled, 0 skipped" in err
    assert sorted(p.name for p in folder.iterdir()) == names

    # An empty suffix with the same format would name the input itself: it gets a new name.
    before = (folder / "a.png").read_bytes()
    code, _, err = run_cli(capsys, "upscale", str(folder / "a.png"), "--suffix", "", "--overwrite")
    assert code == 0, err
    assert (folder / "a.png").read_bytes() == before
    with Image.open(folder / "a_png.png") as im:
        assert im.size == (48, 40)

    # Named explicitly, an earlier output is an input like any other.
    code, _, err = run_cli(capsys, "upscale", str(folder / "a_x4.png"), "--outscale", "0.5")
    assert code == 0 and (folder / "a_x4_x0.5.png").is_file()


def test_output_folder_keeps_subfolders_and_output_file(capsys, tmp_path: Path, set5: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    crop(set5 / "bird.png", (0, 0, 20, 16)).save(src / "top.png")
    crop(set5 / "head.png", (0, 0, 20, 16)).save(src / "sub" / "deep.webp")
    out = src / "out"  # inside the input folder: a re-run must not read its own outputs
    for _ in range(2):
        code, _, err = run_cli(capsys, "upscale", str(src), "-o", str(out), "--size", "50x40")
        assert code == 0, err
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.*")) == [
        "sub/deep_50x40.webp",
        "top_50x40.png",
    ]
    assert "0 upscaled, 2 skipped" in err
    with Image.open(out / "sub" / "deep_50x40.webp") as im:
        assert im.size == (50, 40)

    single = tmp_path / "single.jpg"
    code, _, err = run_cli(capsys, "upscale", str(src / "top.png"), "-o", str(single), "--size", "x32")
    assert code == 0, err
    with Image.open(single) as im:
        assert (im.format, im.size) == ("JPEG", (40, 32))
    code, _, err = run_cli(capsys, "upscale", str(src), "-o", str(tmp_path / "one.png"))
    assert code == 2 and "names one file" in err


def test_tiled_cli_output_equals_untiled(capsys, tmp_path: Path, set5: Path) -> None:
    src = tmp_path / "zebra.png"
    crop(set5 / "butterfly.png", (100, 100, 200, 170)).save(src)
    for tile in ("0", "24"):
        code, _, err = run_cli(
            capsys, "upscale", str(src), "--tile", tile, "--suffix", f"_t{tile}", "--quiet"
        )
        assert code == 0 and err == ""
    with Image.open(tmp_path / "zebra_t0.png") as a, Image.open(tmp_path / "zebra_t24.png") as b:
        diff = np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16))
    assert a.size == (400, 280) and diff.max() <= 1


# --------------------------------------------------------------------------- interruption


def test_ctrl_c_leaves_no_partial_file_and_exits_130(capsys, tmp_path: Path, set5: Path, monkeypatch) -> None:
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        crop(set5 / "bird.png", (i * 10, 0, i * 10 + 16, 16)).save(tmp_path / name)
    real_save = Image.Image.save
    calls = {"n": 0}

    def save_then_interrupt(self, fp, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second output: half of it is written when Ctrl-C arrives
            fp.write(b"\x89PNG partial")
            raise KeyboardInterrupt
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save_then_interrupt)
    code, _, err = run_cli(capsys, "upscale", str(tmp_path))
    assert code == 130
    assert "1 upscaled" in err and "(interrupted)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a_x4.png", "b.png", "c.png"]
    assert leftovers(tmp_path) == []
