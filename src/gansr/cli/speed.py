"""``gansr speed``: time and measure memory of inference (fast vs naive path) or of a training step.

Formerly ``gansr bench``, which still works (see :data:`gansr.cli.DEPRECATED_NAMES`)."""

from __future__ import annotations

import argparse
from typing import Any

from gansr.cli.options import Size, non_negative_int, parse_sizes

HELP = "time and measure memory of inference or a training step"

_EPILOG = """\
inference (default): for the model at the input size it reports the work (GFLOP per output
megapixel), the median wall time of --repeat timed calls after --warmup untimed ones, the
achieved GFLOP/s and its ratio to this machine's peak (a 3x3 64->64 convolution on a 256x256
channels-last image, in the same precision, timed in the same run), the peak RSS, and the
speed-up over the naive path (the module's own forward in eager NCHW fp32 under torch.no_grad(),
whole image: what BasicSR and Real-ESRGAN's scripts run), with the largest output difference
from it. All cases are timed round-robin in one run; on a shared machine compare only numbers
from the same run. A bare architecture name runs with seeded random weights.

  gansr speed --model rrdbnet --size 256 --json
  gansr speed --model srresnet --size 512x384 --precision fp32
  gansr speed --model rrdbnet --size 2000 --precision fp32 --tiles auto --no-naive --repeat 1 --warmup 0

--quality also evaluates PSNR/SSIM on a benchmark folder (default: the bundled Set5), naive vs
fast in each precision. --train PRESET times the trainer's GAN step instead (naive NCHW fp32,
channels-last, channels-last + bf16 autocast), optionally with a short fixed-schedule training
per variant (--check-steps) to compare validation PSNR.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "speed",
        description="Time and measure memory of inference (or a training step) against the naive path.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model", default="rrdbnet", help="architecture name, checkpoint or .pth (default: rrdbnet)"
    )
    p.add_argument(
        "--size",
        type=parse_sizes,
        default=(Size(256, 256),),
        metavar="WxH[,WxH]",
        help="LR input sizes, WxH or N (NxN), all timed in one run (default: 256)",
    )
    p.add_argument(
        "--precision",
        type=_list(str),
        metavar="P[,P]",
        help="fp32, bf16, fp16 (default: fp32 plus bf16 where native, plus fp16 on CUDA)",
    )
    p.add_argument(
        "--tiles",
        type=_list(_tile),
        default=("auto", 0),
        metavar="T[,T]",
        help="tile settings of the fast path: auto, 0 (untiled) or a core size (default: auto,0)",
    )
    p.add_argument(
        "--tile-overlap", type=int, default=32, metavar="N", help="tile context per side (default: 32)"
    )
    p.add_argument("--repeat", type=int, default=3, metavar="N", help="timed calls per case (default: 3)")
    p.add_argument(
        "--warmup", type=int, default=1, metavar="N", help="untimed calls per case first (default: 1)"
    )
    naive = p.add_mutually_exclusive_group()
    naive.add_argument(
        "--naive", dest="naive", action="store_true", default=None, help="always time the naive path"
    )
    naive.add_argument("--no-naive", dest="naive", action="store_false", help="skip the naive path")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--threads", type=int, metavar="N", help="torch intra-op threads (default: torch's)")
    p.add_argument(
        "--quality", nargs="?", const="", metavar="DIR", help="also PSNR/SSIM on DIR (default: Set5)"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines on stderr")
    train = p.add_argument_group("training step (--train)")
    train.add_argument("--train", metavar="PRESET", help="time this training preset's GAN step instead")
    train.add_argument("--data", metavar="DIR", help="training images (default: the bundled Set5 samples)")
    train.add_argument("--batch-size", type=int, metavar="N", help="override the preset's batch size")
    train.add_argument("--patch-size", type=int, metavar="N", help="override the preset's HR patch size")
    train.add_argument("--steps", type=int, default=3, metavar="N", help="steps per timed round (default: 3)")
    train.add_argument(
        "--variants",
        type=_list(str),
        metavar="V[,V]",
        help="naive, channels_last, channels_last+bf16, channels_last+bf16_d (train.amp_scope: d, "
        "bf16 for D only); default: the first three",
    )
    train.add_argument(
        "--check-steps", type=int, default=0, metavar="N", help="GAN steps of the quality check"
    )
    train.add_argument(
        "--check-pretrain-steps", type=int, default=0, metavar="N", help="pretrain steps before them"
    )
    train.add_argument("--val-folder", metavar="DIR", help="validation images of the check (default: Set5)")
    train.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="config override"
    )
    p.set_defaults(func=run)


def _tile(text: str) -> str | int:
    """``auto`` or a tile size >= 0 (0: untiled)."""
    if text == "auto":
        return text
    try:
        return non_negative_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"tile settings are auto, 0 or a size, got {text!r}") from None


def _list(item: Any) -> Any:
    def parse(text: str) -> tuple[Any, ...]:
        return tuple(item(part.strip()) for part in text.split(",") if part.strip())

    return parse


def run(args: argparse.Namespace) -> int:
    import json

    from gansr.speed.runner import log_to_stderr

    log = None if args.quiet else log_to_stderr
    if args.train:
        from gansr.speed.training import TrainBenchOptions, run_train_bench

        opts = TrainBenchOptions(
            preset=args.train,
            data=args.data,
            batch_size=args.batch_size,
            patch_size=args.patch_size,
            steps=args.steps,
            repeat=args.repeat,
            warmup=args.warmup,
            device=args.device,
            threads=args.threads,
            check_steps=args.check_steps,
            check_pretrain_steps=args.check_pretrain_steps,
            val_folder=args.val_folder,
            overrides=tuple(args.overrides),
            **({"variants": args.variants} if args.variants else {}),
        )
        report = run_train_bench(opts, log=log)
        print(json.dumps(report, indent=2) if args.json else format_train(report))
        return 0

    from gansr.speed.runner import BenchOptions, run_inference_bench

    opts = BenchOptions(
        model=args.model,
        sizes=tuple(size.hw for size in args.size),  # BenchOptions takes (height, width)
        precisions=args.precision,
        tiles=args.tiles,
        tile_overlap=args.tile_overlap,
        repeat=args.repeat,
        warmup=args.warmup,
        naive=args.naive,
        device=args.device,
        threads=args.threads,
    )
    report = run_inference_bench(opts, log=log)
    if args.quality is not None:
        from gansr import models
        from gansr.engine.device import resolve_device
        from gansr.speed.quality import precision_quality

        report["quality"] = precision_quality(
            models.load(args.model, random_weights=True),
            folder=args.quality or None,
            precisions=tuple(c["precision"] for c in report["cases"] if c["kind"] == "peak"),
            device=resolve_device(args.device),  # "auto" is the CLI's word, not torch's
            model_name=args.model,
            log=log,
        )
    print(json.dumps(report, indent=2) if args.json else format_inference(report))
    return 0


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_inference(report: dict[str, Any]) -> str:
    """The human-readable table of an inference report."""
    m, dev = report["model"], report["device"]
    lines = [
        f"{m['arch']} x{m['scale']} ({m['parameters'] / 1e6:.1f} M parameters), input "
        + ", ".join(f"{i['width']}x{i['height']}" for i in report["inputs"])
        + f"; {m['macs_per_input_pixel'] / 1e6:.2f} M MACs per input pixel, "
        f"{m['gflop_per_output_mpixel']:.1f} GFLOP per output MP",
        f"{dev['name']} ({dev['type']}, {dev['threads']} threads); medians of {report['repeat']} after "
        f"{report['warmup']} warm-up",
        "peak (3x3 conv 64->64, 256x256, channels-last): "
        + ", ".join(f"{p} {v['gflops']:.0f} GFLOP/s" for p, v in report["peak"].items()),
        "",
    ]
    header = (
        f"{'case':<30} {'median s':>9} {'GFLOP/s':>8} {'% peak':>7} {'x naive':>8} {'out MP/s':>9} "
        f"{'peak RSS MB':>11} {'max diff /255':>13}"
    )
    lines += [header, "-" * len(header)]
    for c in report["cases"]:
        if c["kind"] == "peak":
            continue
        ratio = c.get("peak_ratio")
        diff = c.get("vs_naive", {}).get("max_abs_diff_255")
        lines.append(
            f"{c['name']:<30} {c['median_s']:>9.3f} {c['gflops']:>8.0f} "
            f"{_fmt(ratio * 100 if ratio is not None else None, '.0f'):>7} "
            f"{_fmt(c.get('speedup_vs_naive'), '.2f'):>8} {c['output_mpix_per_s']:>9.3f} "
            f"{c['peak_rss_mb']:>11.0f} {_fmt(diff, '.3f'):>13}"
        )
    for c in report["cases"]:
        if isinstance(c.get("tiles"), dict):
            t = c["tiles"]
            lines.append(
                f"  {c['name']}: {t['count']} tiles of {t['tile']} + {t['overlap']} overlap "
                f"({t['overlap_work'] * 100:.1f}% extra work)"
            )
    quality = report.get("quality")
    if quality:
        lines.append("")
        lines.append(
            f"quality on {quality['dataset']} (x{quality['scale']}, {quality['protocol']}; PSNR / SSIM):"
        )
        for name, r in quality["runs"].items():
            lines.append(
                f"  {name:<12} {r['psnr']:.4f} dB ({r['psnr_change_db']:+.4f})  "
                f"SSIM {r['ssim']:.5f} ({r['ssim_change']:+.5f})"
            )
    kernels = dict.fromkeys(c["conv_kernels"] for c in report["cases"] if "conv_kernels" in c)
    lines += [f"convolutions: {k}" for k in kernels]
    if any(k.startswith("Winograd") for k in kernels):
        lines.append(
            "note: Winograd does fewer multiplies than a direct convolution; GFLOP/s and % peak count "
            "the direct convolution's work (so % peak can pass 100)"
        )
    lines += [f"note: {n}" for n in report["notes"]]
    return "\n".join(lines)


def format_train(report: dict[str, Any]) -> str:
    """The human-readable table of a training-step report."""
    lines = [
        f"{report['preset']}: G {report['g']}, D {report['d']}, batch {report['batch_size']} x "
        f"{report['patch_size']}px HR; {report['device']['name']} ({report['device']['threads']} threads)",
        f"{'variant':<22} {'steps/s':>8} {'x naive':>8}",
    ]
    for v in report["variants"]:
        lines.append(
            f"{v['name']:<22} {v['median_steps_per_s']:>8.3f} {_fmt(v.get('speedup_vs_naive'), '.2f'):>8}"
        )
    check = report.get("check")
    if check:
        lines.append(
            f"quality check after {check['pretrain_steps']} pretrain + {check['gan_steps']} GAN steps "
            "(validation PSNR of the EMA generator):"
        )
        for name, r in check["variants"].items():
            change = r.get("psnr_change_db")
            lines.append(f"  {name:<22} {r['val_psnr']:.3f} dB ({_fmt(change, '+.3f')})")
    lines += [f"note: {n}" for n in report["notes"]]
    return "\n".join(lines)
