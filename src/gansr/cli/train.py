"""``gansr train``: train a generator (and discriminator) from a preset or a YAML config."""

from __future__ import annotations

import argparse


def _preset_names() -> list[str]:
    # Read from the package folder here, not via gansr.train.preset_names: that import pulls in
    # torch, and `gansr --help` must stay fast. A hard-coded list went stale as presets were added.
    from importlib.resources import files

    folder = files("gansr") / "presets"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


HELP = "train an SR generator (PSNR pre-training and/or GAN) from a preset or YAML config"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        description=(
            f"Train from CONFIG, a YAML file or a preset name ({', '.join(_preset_names())}). "
            "The run goes to RUNS_DIR/<name>-<timestamp>/ with config.yaml, "
            "log.jsonl, log.csv, checkpoints/, samples/, plots/ and the final EMA generator "
            "model.safetensors. "
            "For several processes use torchrun: torchrun --nproc_per_node N -m gansr train CONFIG."
        ),
    )
    p.add_argument("config", metavar="CONFIG", help="YAML config file or preset name")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        nargs="+",
        help="override a config value by dotted key, value parsed as YAML (e.g. train.gan.iters=100 "
        "data.root=/data/mnist); repeatable",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        default=None,
        metavar="RUN_DIR",
        help="continue a run from its newest checkpoint (no RUN_DIR: the latest run of CONFIG in RUNS_DIR)",
    )
    p.add_argument(
        "--out", default="runs", metavar="RUNS_DIR", help="folder for run folders (default: ./runs)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or notes on the terminal (CI)")
    p.add_argument("--check", action="store_true", help="validate the config and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os
    import sys

    from gansr.engine.device import resolve_device
    from gansr.train import build_parts, load_config, train

    overrides = [item for group in args.overrides for item in group]
    cfg = load_config(args.config, overrides)
    if args.check:
        parts = build_parts(cfg, resolve_device(cfg.device))
        for note in parts.notes:
            print(f"gansr: {note}", file=sys.stderr)
        print(f"{args.config}: config OK ({cfg.total_iters} iterations)")
        return 0
    result = train(cfg, runs_dir=args.out, resume=args.resume, quiet=args.quiet)
    if not args.quiet and os.environ.get("RANK", "0") == "0":  # one summary under torchrun
        val = result.last_val or {}
        summary = f", val PSNR {val['val_psnr']:.2f} dB (bicubic {val['bicubic_psnr']:.2f})" if val else ""
        print(f"{result.run_dir}: {result.iterations} iterations{summary}")
    return 0
