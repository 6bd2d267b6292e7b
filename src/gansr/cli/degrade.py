"""``gansr degrade``: look at a degradation pipeline, as a grid of HR patches and their LR versions."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from gansr.cli.options import non_negative_int, positive_int

if TYPE_CHECKING:
    from pathlib import Path

    import torch

    from gansr.degrade import Pipeline

_EPILOG = """\
PIPELINE: a degradation preset (bicubic_x4, srgan_x4, blind_x4, realworld_x4, ...), a YAML file
holding a list of steps (or a mapping with a `steps` list), or a training config (a YAML file or
a training preset name such as realsrnet_x4) whose data.degradation is shown exactly as training
builds it.

The grid has one row per image: a random --patch crop of the HR image (seeded by --seed), then
--samples degraded versions, each LR enlarged back to the patch size with nearest-neighbour
interpolation so that blocks, ringing and noise stay visible pixel for pixel. Column j is the same
random draw for every row, so a column compares one set of degradation parameters across images.
"""

#: Width of the white lines between cells, in pixels.
SEPARATOR = 2


HELP = "show what a degradation pipeline does (grid of HR patches and LR samples)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "degrade",
        description="Write a PNG grid of HR patches and degraded versions of them, one row per image.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "pipeline", metavar="PIPELINE", help="degradation preset, YAML pipeline or training config"
    )
    p.add_argument(
        "images",
        nargs="*",
        metavar="IMAGE",
        help="image files or folders (default: the bundled Set5 samples)",
    )
    p.add_argument("-o", "--output", required=True, metavar="GRID", help="output image (PNG recommended)")
    p.add_argument(
        "--samples", type=positive_int, default=8, metavar="N", help="degraded versions per row (default: 8)"
    )
    p.add_argument("--seed", type=non_negative_int, default=0, metavar="N", help="random seed (default: 0)")
    p.add_argument(
        "--patch", type=positive_int, default=128, metavar="PX", help="HR crop size in pixels (default: 128)"
    )
    p.add_argument(
        "--max-images", type=positive_int, default=8, metavar="N", help="rows at most (default: 8)"
    )
    p.set_defaults(func=run)


def load_pipeline(spec: str) -> Pipeline:
    """The pipeline ``spec`` names: a degradation preset, a YAML pipeline (a list of steps or a
    mapping with ``steps``), or a training config (file or preset) whose ``data.degradation`` is
    built exactly as training builds it.

    Raises:
        ConfigError: none of those, or an invalid pipeline/config (one line).
    """
    from pathlib import Path

    from gansr.degrade import PRESETS, Pipeline
    from gansr.errors import ConfigError
    from gansr.train.config import parse_yaml, preset_names, read_config_source

    if spec in PRESETS:
        return Pipeline.preset(spec)
    path = Path(spec)
    if path.suffix.lower() in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"{path}: file not found")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read ({exc})") from None
        # The training configs' YAML reading (1e-4 is a float there), for both kinds of file.
        data = parse_yaml(text, source=str(path))
        if isinstance(data, dict) and "data" in data:
            return _training_pipeline(data, str(path))
        if isinstance(data, dict) and set(data) == {"steps"}:
            data = data["steps"]
        if not isinstance(data, list):
            raise ConfigError(
                f"{path}: expected a list of degradation steps, a mapping with 'steps', "
                "or a training config with data.degradation"
            )
        try:
            return Pipeline(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    if spec in preset_names():
        raw, label = read_config_source(spec)
        return _training_pipeline(raw, label)
    raise ConfigError(
        f"unknown pipeline {spec!r}: not a degradation preset ({', '.join(PRESETS)}), "
        "a YAML file or a training preset"
    )


def _training_pipeline(raw: dict[str, Any], label: str) -> Pipeline:
    """``data.degradation`` of a raw training config, built by :func:`gansr.train.data.build_pipeline`
    (so ``null`` gives the dataset's default); only the ``data`` section has to be valid."""
    from types import SimpleNamespace

    from gansr.errors import ConfigError
    from gansr.train.config import DataConfig, from_dict
    from gansr.train.data import build_pipeline

    try:
        return build_pipeline(SimpleNamespace(data=from_dict(DataConfig, raw["data"], "data")))
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc}") from None


def _collect_images(inputs: list[str]) -> list[Path]:
    """Image files of ``inputs`` (files or folders, in order; folders sorted, recursively)."""
    from importlib.resources import files
    from pathlib import Path

    from gansr.data.io import list_images
    from gansr.errors import DataError

    if not inputs:
        inputs = [str(files("gansr") / "samples" / "Set5")]
    paths: list[Path] = []
    for item in inputs:
        if not Path(item).exists():
            raise DataError(f"{item}: no such file or folder")
        found = list_images(item)
        if not found:
            raise DataError(f"{item}: no images found")
        paths.extend(found)
    return paths


def _random_crop(img: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    import torch

    top = int(torch.randint(0, img.shape[-2] - size + 1, (), generator=generator))
    left = int(torch.randint(0, img.shape[-1] - size + 1, (), generator=generator))
    return img[..., top : top + size, left : left + size]


def _seeded(*parts: int) -> torch.Generator:
    """A generator seeded from a well-mixed hash of ``parts`` (nearby seeds give unrelated streams)."""
    import numpy as np
    import torch

    state = np.random.SeedSequence(list(parts)).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state >> 1))


def degrade_grid(
    pipeline: Pipeline, hr_images: list[torch.Tensor], *, samples: int, seed: int, patch: int
) -> torch.Tensor:
    """The grid of :func:`run`: ``(3, rows * patch + gaps, (samples + 1) * patch + gaps)`` in ``[0, 1]``.

    ``hr_images`` are RGB ``(3, H, W)``, each at least ``patch`` on both sides.
    """
    import torch
    import torch.nn.functional as F

    from gansr.degrade import quantize

    step = patch + SEPARATOR
    grid = torch.ones(3, len(hr_images) * step - SEPARATOR, (samples + 1) * step - SEPARATOR)
    for row, image in enumerate(hr_images):
        hr = _random_crop(image, patch, _seeded(seed, 0, row)).contiguous()
        top = row * step
        grid[:, top : top + patch, :patch] = hr
        for j in range(samples):
            # The same seed for column j in every row: one parameter draw, shown on every image.
            lr = quantize(pipeline(hr, generator=_seeded(seed, 1, j)))  # what a saved LR would hold
            big = F.interpolate(lr[None], size=(patch, patch), mode="nearest-exact")[0]
            left = (j + 1) * step
            grid[:, top : top + patch, left : left + patch] = big
    return grid


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gansr.data.io import IMAGE_SUFFIXES, read_image, write_image
    from gansr.errors import ConfigError, DataError

    output = Path(args.output)
    if output.suffix.lower() not in IMAGE_SUFFIXES:  # say so before the work, not after
        raise ConfigError(f"-o {output}: not an image file name (use .png)")
    pipeline = load_pipeline(args.pipeline)
    scale = pipeline.scale
    if float(scale).is_integer() and args.patch % int(scale):
        raise ConfigError(f"--patch {args.patch} is not a multiple of the pipeline's scale {scale:g}")
    paths = _collect_images(args.images)[: args.max_images]
    images = []
    for path in paths:
        pixels = read_image(path, channels="rgb").pixels
        if min(pixels.shape[-2:]) < args.patch:
            h, w = pixels.shape[-2:]
            raise DataError(f"{path}: {w}x{h} is smaller than --patch {args.patch}")
        images.append(pixels)
    grid = degrade_grid(pipeline, images, samples=args.samples, seed=args.seed, patch=args.patch)
    output.parent.mkdir(parents=True, exist_ok=True)
    print(write_image(output, grid))
    return 0
