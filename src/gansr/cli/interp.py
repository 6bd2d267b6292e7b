"""``gansr interp``: ESRGAN network interpolation between a GAN model and a PSNR model."""

from __future__ import annotations

import argparse

HELP = "blend two models of the same architecture (ESRGAN network interpolation)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "interp",
        description=(
            "Write alpha * A + (1 - alpha) * B, parameter by parameter. As in ESRGAN, alpha weights the "
            "GAN-trained model: pass the GAN model as A and the PSNR-oriented model as B (alpha 1 = A, "
            "alpha 0 = B; ESRGAN suggests 0.8). Both must have the same architecture and config."
        ),
    )
    p.add_argument("a", metavar="A", help="the GAN model (weighted by alpha): a gansr checkpoint or .pth")
    p.add_argument("b", metavar="B", help="the PSNR model (weighted by 1 - alpha)")
    p.add_argument("--alpha", type=float, default=0.8, help="weight of A in [0, 1] (default: 0.8)")
    p.add_argument("-o", "--output", required=True, help="output .safetensors path")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gansr.train.interp import interpolate_files

    path = interpolate_files(args.a, args.b, args.alpha, args.output)
    print(path)
    return 0
