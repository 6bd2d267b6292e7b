"""Paired random crops, flips and 90-degree rotations for SR training.

All functions work on ``(..., H, W)`` tensors and draw their randomness only from the
``torch.Generator`` passed in (a fresh OS-seeded one when ``None``), never from the global RNG.
"""

from __future__ import annotations

import torch

from gansr.errors import ConfigError, DataError

__all__ = ["augment", "paired_random_crop", "random_crop"]


def _fresh(generator: torch.Generator | None) -> torch.Generator:
    if generator is not None:
        return generator
    gen = torch.Generator()
    gen.seed()
    return gen


def _randint(high: int, generator: torch.Generator) -> int:
    """Uniform integer in ``0..high`` (inclusive)."""
    return int(torch.randint(high + 1, (1,), generator=generator))


def _patch_hw(patch_size: int | tuple[int, int]) -> tuple[int, int]:
    ph, pw = (patch_size, patch_size) if isinstance(patch_size, int) else patch_size
    if ph < 1 or pw < 1:
        raise ConfigError(f"patch size must be positive, got {patch_size}")
    return int(ph), int(pw)


def random_crop(
    img: torch.Tensor, patch_size: int | tuple[int, int], generator: torch.Generator | None = None
) -> torch.Tensor:
    """A random ``patch_size`` crop of ``img`` (``(..., H, W)``).

    Raises:
        DataError: the image is smaller than the patch.
    """
    ph, pw = _patch_hw(patch_size)
    h, w = img.shape[-2:]
    if h < ph or w < pw:
        raise DataError(f"image {w}x{h} is smaller than the {pw}x{ph} patch")
    gen = _fresh(generator)
    top, left = _randint(h - ph, gen), _randint(w - pw, gen)
    return img[..., top : top + ph, left : left + pw]


def paired_random_crop(
    lr: torch.Tensor,
    hr: torch.Tensor,
    patch_size: int | tuple[int, int],
    scale: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop the same region from an LR/HR pair.

    Args:
        lr: ``(..., h, w)``.
        hr: ``(..., H, W)`` with ``H >= h * scale`` and ``W >= w * scale`` (extra HR rows/columns
            beyond ``h * scale`` are never used, as in a mod-crop).
        patch_size: the HR patch size, a multiple of ``scale``; the LR patch is
            ``patch_size // scale``.
        scale: the SR factor.
        generator: randomness for the crop position (aligned to the LR pixel grid).

    Returns:
        ``(lr_patch, hr_patch)``.

    Raises:
        ConfigError: ``patch_size`` is not a multiple of ``scale``.
        DataError: the pair does not match in size or is smaller than the patch.
    """
    ph, pw = _patch_hw(patch_size)
    if ph % scale or pw % scale:
        raise ConfigError(f"patch size {patch_size} must be a multiple of the scale {scale}")
    lh, lw = lr.shape[-2:]
    hh, hw = hr.shape[-2:]
    if hh < lh * scale or hw < lw * scale:
        raise DataError(f"HR {hw}x{hh} is smaller than {scale} x LR {lw}x{lh}")
    lph, lpw = ph // scale, pw // scale
    if lh < lph or lw < lpw:
        raise DataError(f"LR {lw}x{lh} is smaller than the {lpw}x{lph} LR patch")
    gen = _fresh(generator)
    top, left = _randint(lh - lph, gen), _randint(lw - lpw, gen)
    lr_patch = lr[..., top : top + lph, left : left + lpw]
    hr_patch = hr[..., top * scale : top * scale + ph, left * scale : left * scale + pw]
    return lr_patch, hr_patch


def augment(
    *tensors: torch.Tensor,
    hflip: bool = True,
    vflip: bool = True,
    rot90: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, ...]:
    """Apply one random flip/rotation to all ``tensors`` (``(..., H, W)`` each) alike.

    Horizontal flip, vertical flip and a transpose of H and W each happen with probability 1/2,
    which with all three enabled picks each of the 8 symmetries of the square equally often
    (a transpose after a flip is a 90-degree rotation). Three numbers are drawn from the
    generator whatever is enabled, so enabling an option does not shift later draws.

    Returns:
        The transformed tensors, in order (a tuple even for one tensor).
    """
    gen = _fresh(generator)
    draws = torch.rand(3, generator=gen) < 0.5
    do_h, do_v, do_t = hflip and bool(draws[0]), vflip and bool(draws[1]), rot90 and bool(draws[2])
    out = []
    for t in tensors:
        if do_h:
            t = t.flip(-1)
        if do_v:
            t = t.flip(-2)
        if do_t:
            t = t.transpose(-2, -1)
        out.append(t)
    return tuple(out)
