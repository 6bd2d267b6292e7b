"""``gansr export``: a model (architecture name or checkpoint) to ONNX, checked with onnxruntime."""

from __future__ import annotations

import argparse

from gansr.cli.options import Size, parse_size

TOLERANCE = 1e-4  # max abs difference ONNX vs PyTorch on [0, 1] inputs accepted as a correct export


HELP = "export a model to ONNX (dynamic batch/height/width)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        description=(
            "Export a model to ONNX with dynamic batch, height and width axes, then run it with "
            "onnxruntime at a size different from the export example and compare with PyTorch. "
            "--model takes a checkpoint (gansr .safetensors or a peer .pth), a shipped model name, "
            "or an architecture name (random weights: for testing a deployment pipeline)."
        ),
    )
    p.add_argument(
        "--model", required=True, metavar="NAME|PATH", help="checkpoint, shipped model or architecture"
    )
    p.add_argument("--format", default="onnx", choices=["onnx"], help="export format (default: onnx)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="file to write (e.g. model.onnx)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version (default: 17)")
    p.add_argument("--scale", type=int, default=None, help="upscaling factor, for an architecture name only")
    p.add_argument(
        "--size",
        type=parse_size,
        default=Size(64, 64),
        metavar="WxH",
        help="example input size the graph is traced at, WxH or N (default: 64x64)",
    )
    p.add_argument(
        "--static", action="store_true", help="fix height and width to --size (batch stays dynamic)"
    )
    p.add_argument("--no-verify", action="store_true", help="skip the onnxruntime comparison")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from gansr import models
    from gansr.cli import error
    from gansr.cli.extras import has_module
    from gansr.errors import ConfigError, ModelError, install_hint

    for package in ("onnx", "onnxruntime"):  # checked first: the hint depends on how gansr was installed
        if not has_module(package):
            raise ConfigError(
                f"ONNX export needs the '{package}' package, from the onnx extra: {install_hint('onnx')}"
            )
    from gansr.models.export import export_onnx, verify_onnx

    if not 7 <= args.opset <= 21:
        raise ConfigError(f"--opset must be between 7 and 21, got {args.opset}")
    hw = args.size.hw
    # Architecture names export with seeded random weights: enough to test a deployment pipeline.
    model = models.load(args.model, scale=args.scale, random_weights=True)
    target = Path(args.output)
    if target.is_dir():
        raise ConfigError(f"-o {target}: is a folder; name the .onnx file to write")
    if args.no_verify:
        path = export_onnx(model, target, opset=args.opset, dynamic_hw=not args.static, example_hw=hw)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, opset {args.opset}; not verified)")
        return 0
    # Export beside the target and move it into place only once verified, so a failed export
    # never replaces (or deletes) a good file the user already has at that path.
    staging = target.with_name(f".{target.name}.unverified")
    try:
        export_onnx(model, staging, opset=args.opset, dynamic_hw=not args.static, example_hw=hw)
        check = args.size if args.static else Size(args.size.width // 2 + 5, args.size.height // 2 + 3)
        check_hw = check.hw  # unless --static, not the example size
        try:
            diff = verify_onnx(model, staging, input_hw=check_hw)
        except ModelError as exc:
            hint = " (try --static)" if not args.static else ""
            raise ModelError(f"{exc}; nothing written to {target}{hint}") from None
        report = f"onnxruntime vs PyTorch at {check}: max abs diff {diff:.2e}"
        if diff > TOLERANCE:
            print(report)
            error(
                f"the ONNX model differs from PyTorch by more than {TOLERANCE:g}; nothing written to {target}"
            )
            return 1
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB, opset {args.opset})")
    print(report)
    return 0
