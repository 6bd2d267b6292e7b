"""``gansr eval``: PSNR/SSIM (and NIQE) of a model on a folder of HR images."""

from __future__ import annotations

import argparse
import json

HELP = "measure a model on a folder of HR images (PSNR/SSIM, Y channel)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        description=(
            "Measure a model with the SR literature's protocol: LR by MATLAB bicubic, "
            "PSNR/SSIM on the Y channel with `scale` pixels cropped at each border. "
            "A folder with MNIST IDX files (t10k-images-idx3-ubyte[.gz]) is evaluated with the MNIST "
            "protocol instead: the held-out last 2,000 digits, LR by 28->7 area average + N(0, 10^2) "
            "noise (fixed seed), full-image gray PSNR/SSIM. "
            "With --degradation, the LR images come from a degradation pipeline instead (a preset such "
            "as jpeg60_x4 or blurnoise_jpeg70_x4, or a YAML file), seeded per image from --seed and the "
            "image's index, and the JPEG-grid ratio of each SR output is reported too (~1.0: no visible "
            "8x8 block grid)."
        ),
    )
    p.add_argument(
        "--model",
        default="bicubic",
        help="'bicubic', a shipped model name, a gansr checkpoint or a peer .pth (default: bicubic)",
    )
    p.add_argument(
        "--data",
        default=None,
        help="folder of HR images or of MNIST IDX files (default: the bundled Set5 samples)",
    )
    p.add_argument(
        "--scale",
        type=_scale,
        default=4,
        help="upscaling factor (default: 4); MNIST folders also take 28/26, design 001's 26 -> 28",
    )
    p.add_argument("--niqe", action="store_true", help="also compute NIQE of the SR images")
    p.add_argument("--rgb", action="store_true", help="measure on RGB instead of the Y channel")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--degradation",
        default=None,
        metavar="NAME_OR_YAML",
        help="make the LR with this degradation preset or YAML pipeline instead of MATLAB bicubic; "
        "its scale must equal --scale (photo folders only)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of the --degradation's random draws, per image with its index (default: 0)",
    )
    p.add_argument(
        "--max-images",
        type=int,
        default=None,
        metavar="N",
        help="MNIST: only the first N held-out digits (default: all 2,000)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gansr import models
    from gansr.cli import error
    from gansr.data import resolve_benchmark
    from gansr.errors import ConfigError
    from gansr.evaluate import (
        Degradation,
        evaluate_folder,
        evaluate_mnist,
        format_table,
        is_mnist_folder,
    )
    from gansr.upscale.progress import Progress

    if args.scale < 1:
        raise ConfigError(f"--scale must be a positive integer, got {args.scale:g}")
    if args.max_images is not None and args.max_images < 1:
        raise ConfigError(f"--max-images must be a positive integer, got {args.max_images}")
    if args.data is not None and is_mnist_folder(args.data):
        if args.degradation is not None:
            raise ConfigError("--degradation applies to photo folders; MNIST has its own fixed protocol")
        if args.niqe:
            raise ConfigError("--niqe needs images of at least 192x96 pixels; MNIST digits are 28x28")
        # A non-integer scale (28/26) is checked against the model by evaluate_mnist.
        scale = args.scale if isinstance(args.scale, int) else None
        model = models.require_generator(models.load(args.model, scale=scale))
        total = min(args.max_images or MNIST_HELD_OUT, MNIST_HELD_OUT)
        with Progress("eval", total, unit="digits") as bar:
            result = evaluate_mnist(
                model,
                args.data,
                model_name=args.model,
                scale=args.scale,
                max_images=args.max_images,
                on_batch=bar.update,
            )
        print(json.dumps(result.to_json(), indent=2) if args.json else format_table(result))
        return 0
    if not isinstance(args.scale, int):
        raise ConfigError(
            f"--scale {args.scale:g}: photo benchmarks take an integer factor (28/26 is for MNIST)"
        )
    if args.data is None:
        from importlib.resources import files

        folder, dataset = Path(str(files("gansr") / "samples" / "Set5")), "Set5 (bundled)"
    else:
        folder, dataset = resolve_benchmark(Path(args.data))
    degradation = None
    if args.degradation is not None:
        degradation = Degradation.resolve(args.degradation, args.scale, seed=args.seed)
    model = models.require_generator(models.load(args.model, scale=args.scale))

    with Progress("eval", _count_images(folder), unit="images") as bar:

        def on_image(name: str) -> None:  # called as each image starts
            if bar.item:
                bar.update()
            bar.set_item(name)

        result = evaluate_folder(
            model,
            folder,
            args.scale,
            model_name=args.model,
            dataset_name=dataset,
            with_niqe=args.niqe,
            y_channel=not args.rgb,
            on_image=on_image,
            degradation=degradation,
        )
        bar.update(bar.total - bar.done)  # the last image
    for line in result.errors:
        error(line)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    elif result.images:
        print(format_table(result))
    if not result.images:
        error(f"{folder}: none of the {len(result.errors)} images could be measured")
        return 2
    return 1 if result.errors else 0


MNIST_HELD_OUT = 2000  # the digits gansr.evaluate.evaluate_mnist measures at most


def _count_images(folder) -> int:  # noqa: ANN001 (a Path; imported lazily)
    """How many images ``gansr eval`` will measure in ``folder`` (0 when it cannot tell)."""
    from gansr.data.io import list_images
    from gansr.errors import DataError

    try:
        return len(list_images(folder))
    except DataError:
        return 0


def _scale(text: str) -> int | float:
    """``--scale``: an integer, or a fraction such as ``28/26`` (design 001's MNIST protocol)."""
    from gansr.errors import ConfigError
    from gansr.train.config import parse_scale

    try:
        return parse_scale(text if "/" in text else float(text), "--scale")
    except (ConfigError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a number such as 4 or 28/26, got {text!r}") from None
