"""``gansr sample``: draw images from a random latent with a CPPN, at any size.

Reference design 001 renders gray and colour 1800x1800 pictures from a random vector alone. With
``--model random`` (the default) that is an untrained CPPN with unit-variance weights
(:func:`gansr.models.vae_cppn.random_cppn`); with a trained ``vae_cppn`` of the ``latent`` form
(the design's f(z, x, y, r)) or one trained with ``cond_dropout`` (the shipped
``mnist-cppn``), ``z`` is drawn from the VAE's N(0, I) prior and decoded to a digit.
"""

from __future__ import annotations

import argparse

from gansr.cli.options import Size, non_negative_int, parse_size, positive_int

_EPILOG = """\
examples:
  gansr sample -o art.png                          # colour, 1800x1800, seed 0
  gansr sample --channels 1 --seed 7 -o gray.png   # gray
  gansr sample --model mnist-cppn --num 4 --size 100x100 -o digit.png
      (a vae_cppn of the latent form or trained with cond_dropout: digit-0.png .. digit-3.png)

Super-resolving a given LR digit at any size is `gansr upscale --model mnist-cppn --size 1800x1800`.
"""

MAX_PIXELS = 89_478_485  # Pillow's decompression-bomb limit: the largest image gansr reads back


HELP = "draw images from a random latent with a CPPN (any size)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        description=(
            "Render images from latents alone: a random CPPN (abstract gray or colour pictures, as "
            "reference design 001 draws them) or a trained vae_cppn sampled from its prior (mnist-cppn)."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, ...)")
    p.add_argument(
        "--model",
        default="random",
        help="'random' (an untrained CPPN, default) or a vae_cppn that draws from a latent (mnist-cppn)",
    )
    p.add_argument(
        "--size",
        type=parse_size,
        default=Size(1800, 1800),
        metavar="WxH",
        help="image size, WxH or N (default: 1800x1800)",
    )
    p.add_argument("--num", type=positive_int, default=1, metavar="N", help="images to draw (default: 1)")
    p.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the latents (and random weights)"
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


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from gansr.data.io import write_image
    from gansr.errors import ConfigError
    from gansr.models import load
    from gansr.models.vae_cppn import VAECPPN, random_cppn

    if args.size.width * args.size.height > MAX_PIXELS:
        raise ConfigError(f"--size {args.size} is over {MAX_PIXELS:,} pixels")
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
    latents = model.sample(args.num, args.size.hw, generator=torch.Generator().manual_seed(args.seed))
    output = Path(args.output)
    paths = [output] if args.num == 1 else [output.with_stem(f"{output.stem}-{i}") for i in range(args.num)]
    for path, image in zip(paths, latents, strict=True):
        print(write_image(path, image))
    return 0
