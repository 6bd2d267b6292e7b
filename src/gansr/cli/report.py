"""``gansr report``: PSNR/SSIM/NIQE tables and crops of shipped models and bicubic over datasets.

Formerly ``gansr benchmark``, which still works (see :data:`gansr.cli.DEPRECATED_NAMES`)."""

from __future__ import annotations

import argparse

HELP = "PSNR/SSIM/NIQE tables and crops over datasets"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        description=(
            "Evaluate models (default: bicubic and every shipped model) on each dataset folder and write "
            "OUT/benchmark.json, OUT/README.md (PSNR, SSIM, NIQE, parameters, CPU time per megapixel) "
            "and OUT/<dataset>.png (side-by-side crops: bicubic | each model | HR). HR image folders use "
            "the SR literature's protocol; a folder of MNIST IDX files uses the MNIST protocol "
            "(held-out last 2,000 digits). Each model runs only where it applies (gray digit models on "
            "MNIST, RGB models on photos). "
            "With --degradation, photo datasets get their LR from a degradation pipeline instead (a preset "
            "such as jpeg60_x4 or blurnoise_jpeg70_x4, or a YAML file; seeded per image from --seed), the "
            "tables get the JPEG-grid ratio of the SR outputs, and the crops show the degraded input "
            "first: input | bicubic | each model | HR. MNIST keeps its protocol."
        ),
    )
    p.add_argument(
        "--models",
        nargs="+",
        default=None,
        metavar="MODEL",
        help="'bicubic', shipped model names or checkpoint paths (default: bicubic + all shipped models)",
    )
    p.add_argument(
        "--datasets",
        nargs="+",
        default=None,
        metavar="DIR",
        help="HR image folders or MNIST IDX folders (default: the bundled Set5 samples)",
    )
    p.add_argument("--out", default="docs/benchmarks", help="output folder (default: docs/benchmarks)")
    p.add_argument("--scale", type=int, default=4, help="upscaling factor for photo datasets (default: 4)")
    p.add_argument("--no-niqe", action="store_true", help="skip NIQE (faster)")
    p.add_argument(
        "--mnist-max-images",
        type=int,
        default=None,
        metavar="N",
        help="MNIST: only the first N held-out digits (default: all 2,000)",
    )
    p.add_argument(
        "--degradation",
        default=None,
        metavar="NAME_OR_YAML",
        help="make the photo LR with this degradation preset or YAML pipeline instead of MATLAB bicubic; "
        "its scale must equal --scale",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of the --degradation's random draws, per image with its index (default: 0)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from importlib.resources import files
    from pathlib import Path

    from gansr.report import BenchmarkConfig, run_benchmark, summary_table

    datasets = args.datasets or [str(files("gansr") / "samples" / "Set5")]
    cfg = BenchmarkConfig(
        models=list(args.models or []),
        datasets=[Path(d) for d in datasets],
        out=Path(args.out),
        scale=args.scale,
        niqe=not args.no_niqe,
        mnist_max_images=args.mnist_max_images,
        degradation=args.degradation,
        seed=args.seed,
    )

    def on_step(text: str) -> None:
        print(f"gansr report: {text}", file=sys.stderr)

    report = run_benchmark(cfg, on_step=on_step)
    print(summary_table(report))
    print(f"\nwrote {cfg.out}/README.md, benchmark.json and {len(report['datasets'])} crop PNG(s)")
    return 0
