"""BSD300 / BSD100 (/ BSD200) folder layouts: recognized by name and reported so by ``gansr eval``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gansr.cli import main
from gansr.data import benchmark_info, resolve_benchmark, write_image


def _images(folder: Path, names: list[str], seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    for name in names:
        write_image(folder / name, torch.rand(3, 24, 32, generator=gen))


@pytest.fixture
def bsds300(tmp_path: Path) -> Path:
    """The BSDS300 release layout: images/train (BSD200) + images/test (BSD100), tiny stand-ins."""
    root = tmp_path / "BSDS300"
    _images(root / "images" / "train", ["2092.png", "8049.png"], 0)
    _images(root / "images" / "test", ["3096.png", "8023.png", "14037.png"], 1)
    return root


def test_bsds300_release_and_its_splits(bsds300: Path) -> None:
    info = benchmark_info(bsds300)
    assert info is not None and info.name == "BSD300" and info.hr_dir == bsds300 / "images"
    assert resolve_benchmark(bsds300) == (bsds300 / "images", "BSD300")
    assert resolve_benchmark(bsds300 / "images") == (bsds300 / "images", "BSD300")  # the HR folder itself
    assert resolve_benchmark(bsds300 / "images" / "test") == (bsds300 / "images" / "test", "BSD100")
    assert resolve_benchmark(bsds300 / "images" / "train") == (bsds300 / "images" / "train", "BSD200")


def test_other_bsd_layouts(tmp_path: Path) -> None:
    cases = {
        "BSD300": "BSD300",  # flat: 300 images in one folder
        "bsd100": "BSD100",
        "B100": "BSD100",
        "unpacked/BSDS300/test": "BSD100",  # BSDS300 without its images/ level
        "BSR/BSDS500/data/images/val": "BSD100",  # BSDS500's val split is BSDS300's test set
        "benchmark/BSD300/HR": "BSD300",
    }
    for rel, name in cases.items():
        _images(tmp_path / rel, ["a.png"])
        assert resolve_benchmark(tmp_path / rel) == (tmp_path / rel, name), rel
    # Not Berkeley: a plain test/ folder, BSDS500's own test split, and train/ under anything else.
    for rel, shown in {"photos/test": "photos/test", "BSDS500/test": "BSDS500/test"}.items():
        _images(tmp_path / rel, ["a.png"])
        assert resolve_benchmark(tmp_path / rel) == (tmp_path / rel, shown), rel


def _eval(capsys: pytest.CaptureFixture[str], folder: Path) -> dict:
    code = main(["eval", "--model", "bicubic", "--data", str(folder), "--scale", "4", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_gansr_eval_reports_bsd300_and_bsd100(capsys: pytest.CaptureFixture[str], bsds300: Path) -> None:
    whole = _eval(capsys, bsds300)
    assert whole["dataset"] == "BSD300"
    assert [r["name"] for r in whole["images"]] == [
        "test/14037.png",
        "test/3096.png",
        "test/8023.png",
        "train/2092.png",
        "train/8049.png",
    ]
    test = _eval(capsys, bsds300 / "images" / "test")
    assert test["dataset"] == "BSD100" and len(test["images"]) == 3
    # The same images measure the same inside either set.
    by_name = {r["name"]: r["psnr"] for r in whole["images"]}
    assert all(by_name[f"test/{r['name']}"] == pytest.approx(r["psnr"]) for r in test["images"])
    code = main(["eval", "--model", "bicubic", "--data", str(bsds300 / "images" / "test"), "--scale", "4"])
    assert code == 0 and "bicubic on BSD100, x4" in capsys.readouterr().out
