"""``gansr sample``: draw images from a random latent with a CPPN, at any size.

Reference design 001 renders gray and colour 1800x1800 pictures from a random vector alone. With
``--model random`` (the default) that is an untrained CPPN with unit-variance weights
(:func:`gansr.models.vae_cppn.random_cppn`); with a trained ``vae_cppn`` of the ``latent`` form
(the design's f(z, x, y, r)), ``z`` is drawn from the VAE's N(0, I) prior and decoded to a digit.
"""

from __future__ import annotations

import argparse
import re

_EPILOG = """\
examples:
  gansr sample -o art.png                          # colour, 1800x1800, seed 0
  gansr sample --channels 1 --seed 7 -o gray.png   # gray
  gansr sample --model RUN/model.safetensors --num 4 --size 100x100 -o digit.png
      (a vae_cppn trained with model.g.kwargs.form=latent: digit-0.png .. digit-3.png)

Super-resolving a given LR digit at any size is `gansr upscale --model mnist-cppn --size 1800x1800`.
"""

MAX_PIXELS = 89_478_485  # Pillow's decompression-bomb limit: the largest image gansr reads back


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="draw images from a random latent with a CPPN (any size)",
        description=(
            "Render images from latents alone: a random CPPN (abstract gray or colour pictures, as "
            "reference design 001 draws them) or a trained latent-form vae_cppn sampled from its prior."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, ...)")
    p.add_argument(
        "--model",
        default="random",
        help="'random' (an untrained CPPN, default) or a vae_cppn model of the latent form",
    )
    p.add_argument(
        "--size", type=_parse_size, default=(1800, 1800), metavar="WxH", help="(default: 1800x1800)"
    )
    p.add_argument("--num", type=_positive_int, default=1, metavar="N", help="images to draw (default: 1)")
    p.add_argument(
        "--seed", type=_non_negative_int, default=0, help="seed of the latents (and random weights)"
    )
    p.add_argument(
        "--channels", type=int, choices=(1, 3), default=None, help="random model: 1 gray, 3 colour (default)"
    )
    p.add_argument(
        "--coord-scale",
        type=float,
        default=None,
        metavar="F",
        help="random model: coordinate factor, more and finer shapes as it grows (default: 8)",
    )
    p.set_defaults(func=run)


def _parse_size(text: str) -> tuple[int, int]:
    """``WxH`` or ``N`` (square) -> ``(height, width)``."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", text)
    if not match or int(match[1]) < 1 or (match[2] is not None and int(match[2]) < 1):
        raise argparse.ArgumentTypeError(f"expected WxH like 1800x1800 (or one side, N), got {text!r}")
    width = int(match[1])
    height = int(match[2]) if match[2] is not None else width
    return height, width


def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _non_negative_int(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from gansr.data.io import write_image
    from gansr.errors import ConfigError
    from gansr.models import load
    from gansr.models.vae_cppn import VAECPPN, random_cppn

    height, width = args.size
    if height * width > MAX_PIXELS:
        raise ConfigError(f"--size {width}x{height} is over {MAX_PIXELS:,} pixels")
    if args.model == "random":
        coord_scale = 8.0 if args.coord_scale is None else args.coord_scale
        model = random_cppn(
            3 if args.channels is None else args.channels, coord_scale=coord_scale, seed=args.seed
        )
    else:
        if args.channels is not None or args.coord_scale is not None:
            raise ConfigError("--channels and --coord-scale apply to --model random only")
        model = load(args.model)
        if not isinstance(model, VAECPPN):
            arch = getattr(model, "arch", type(model).__name__)
            raise ConfigError(f"--model {args.model}: a {arch} model has no latent to sample; use a vae_cppn")
        model.eval()
    latents = model.sample(args.num, (height, width), generator=torch.Generator().manual_seed(args.seed))
    output = Path(args.output)
    paths = [output] if args.num == 1 else [output.with_stem(f"{output.stem}-{i}") for i in range(args.num)]
    for path, image in zip(paths, latents, strict=True):
        print(write_image(path, image))
    return 0
