"""gansr.metrics.grid_ratio on real Set5 images: clean photos, synthetic block offsets, JPEG'd LR."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gansr.data.io import read_image
from gansr.degrade import imresize, jpeg_compress, quantize
from gansr.evaluate import modcrop
from gansr.metrics import grid_ratio, rgb_to_y

SET5 = ("baby", "bird", "butterfly", "head", "woman")


def load(set5: Path, name: str) -> torch.Tensor:
    """A Set5 image, float64 (3, H, W), cropped to a multiple of 4."""
    return modcrop(read_image(set5 / f"{name}.png", channels="rgb").pixels.double(), 4)


def block_offsets(hr: torch.Tensor, *, levels: int, block: int = 32, shift: int = 0) -> torch.Tensor:
    """``hr`` plus a random offset of up to +-``levels`` 8-bit levels, constant on each block
    (block corners at ``shift + k * block``), quantized."""
    h, w = hr.shape[-2:]
    gen = torch.Generator().manual_seed(0)
    grid = torch.randint(-levels, levels + 1, (h // block + 2, w // block + 2), generator=gen).double() / 255
    field = grid.repeat_interleave(block, 0).repeat_interleave(block, 1)
    start = (block - shift) % block
    return quantize((hr + field[start : start + h, start : start + w]).clamp(0, 1))


def x4_of_lr(hr: torch.Tensor, quality: int | None) -> torch.Tensor:
    """Bicubic x4 of the 8-bit MATLAB-bicubic LR, JPEG-compressed first when ``quality`` is set."""
    lr = quantize(imresize(hr, 0.25))
    if quality is not None:
        lr = jpeg_compress(lr, quality)
    return quantize(imresize(lr, 4.0))


def test_clean_photos_read_about_one(set5: Path) -> None:
    # bird 1.007, head 1.064 (baby's HR itself carries a faint 8x8 JPEG grid: 1.137).
    for name in ("bird", "head"):
        assert grid_ratio(load(set5, name)) == pytest.approx(1.0, abs=0.1), name


def test_block_constant_offsets_raise_the_ratio_only_on_their_grid(set5: Path) -> None:
    hr = load(set5, "bird")
    base = grid_ratio(hr)  # 1.007
    # +-5 levels per 32x32 block: 1.403 on bird.
    assert grid_ratio(block_offsets(hr, levels=5)) > 1.3
    # The same offsets with their block edges halfway between the measured lines read as no grid:
    # their steps land among the reference steps (0.995).
    assert grid_ratio(block_offsets(hr, levels=5, shift=16)) < base


def test_bicubic_x4_of_jpeg_lr_shows_the_grid_and_clean_lr_does_not(set5: Path) -> None:
    bird = load(set5, "bird")
    clean, jpeg30 = grid_ratio(x4_of_lr(bird, None)), grid_ratio(x4_of_lr(bird, 30))
    assert clean < 1.1  # 1.083: bicubic's steps between LR pixels are a little larger
    assert jpeg30 > 1.4  # 1.495
    # Against the LR pixel grid only, clean bicubic reads below 1 (0.945) and JPEG 30 still 1.359.
    assert grid_ratio(x4_of_lr(bird, None), reference="lr_grid") < 1.0
    assert grid_ratio(x4_of_lr(bird, 30), reference="lr_grid") > 1.3
    # On every Set5 image JPEG 30 raises the ratio by 0.2 or more (clean 1.05..1.26, JPEG 1.31..1.81),
    # and more JPEG (quality 30) shows more grid than less (60).
    for name in SET5:
        hr = load(set5, name)
        r_clean, r60, r30 = (grid_ratio(x4_of_lr(hr, q)) for q in (None, 60, 30))
        assert r30 > r_clean + 0.2, (name, r_clean, r30)
        assert r30 > r60 > r_clean, (name, r_clean, r60, r30)


def test_gray_and_rgb_inputs_and_edge_cases(set5: Path) -> None:
    hr = load(set5, "bird")[:, :100, :100]
    # RGB is measured on the Y channel: the same as handing in that channel as a gray image.
    assert grid_ratio(hr) == pytest.approx(grid_ratio(rgb_to_y(hr)), rel=1e-12)
    assert grid_ratio(hr.float()) == pytest.approx(grid_ratio(hr), rel=1e-5)
    assert grid_ratio(torch.full((1, 64, 64), 0.5)) == 1.0  # no steps anywhere
    with pytest.raises(ValueError, match="no 32-pixel block boundary"):
        grid_ratio(hr[:, :32, :32])
    assert grid_ratio(hr[:, :32, :33]) > 0  # one boundary column is enough
    with pytest.raises(ValueError, match="C 1 or 3"):
        grid_ratio(hr[None])
    with pytest.raises(ValueError, match="block"):
        grid_ratio(hr, block=1)
    with pytest.raises(ValueError, match="reference"):
        grid_ratio(hr, reference="elsewhere")
