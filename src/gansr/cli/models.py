"""``gansr models``: every architecture with its parameter and MAC counts, and the shipped models."""

from __future__ import annotations

import argparse
import json
from typing import Any

from gansr.cli.options import Size, parse_size

DEFAULT_SIZE = Size(64, 64)


HELP = "list the architectures (parameters, MACs) and the shipped models"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        description=(
            "List every architecture with its trainable parameters at the default configuration and "
            "its multiply-accumulates (convolution and linear layers) for one input of --size: the LR "
            "input for generators, the judged image for discriminators (a discriminator built for one "
            "fixed size is measured at that size). For generators, GMACs per output megapixel "
            "compare cost independently of the size. Counted exactly on PyTorch's meta device (no "
            "arithmetic), so it is fast even for rrdbnet."
        ),
    )
    p.add_argument("--json", action="store_true", help="print a JSON list of objects instead of a table")
    p.add_argument(
        "--size",
        type=parse_size,
        default=DEFAULT_SIZE,
        metavar="WxH",
        help=f"input size for the MAC counts, WxH or N (default: {DEFAULT_SIZE})",
    )
    p.set_defaults(func=run)


def _profile(name: str, hw: tuple[int, int], default_config: dict[str, Any]) -> dict[str, Any]:
    from gansr.errors import ModelError
    from gansr.models.profile import profile_model

    try:
        return profile_model(name, hw)
    except ModelError:
        # A discriminator tied to one input size (srgan_d with pool_size=None): measure it there.
        side = default_config.get("input_size")
        if not isinstance(side, int):
            raise
        return profile_model(name, (side, side))


def architecture_rows(hw: tuple[int, int]) -> list[dict[str, Any]]:
    """One JSON-able dict per registered architecture, in registry order, at input size ``hw``
    ``(height, width)``."""
    from gansr.models import architectures

    rows = []
    for info in architectures():
        name = getattr(info, "name", str(info))
        prof = _profile(name, hw, dict(getattr(info, "default_config", {}) or {}))
        gmacs = prof["gmacs_per_output_mpixel"]
        rows.append(
            {
                "name": name,
                "kind": getattr(info, "kind", prof["kind"]),
                "description": getattr(info, "description", ""),
                "parameters": prof["parameters"],
                "input_size": prof["input_size"],
                "output_size": prof["output_size"],
                "macs": prof["macs"],
                "gmacs_per_output_mpixel": None if gmacs is None else round(gmacs, 3),
            }
        )
    return rows


def shipped_rows() -> list[dict[str, Any]]:
    """One dict per model shipped in ``gansr/weights`` (read from the file headers only)."""
    from gansr.errors import ModelError
    from gansr.models.checkpoint import read_metadata, shipped_models

    rows = []
    for name, path in shipped_models().items():
        try:
            meta = read_metadata(path)
        except ModelError as exc:
            rows.append({"name": name, "error": str(exc)})
            continue
        rows.append(
            {
                "name": name,
                "arch": meta["arch"],
                "scale": meta.get("scale"),
                "dtype": meta.get("dtype"),
                "description": meta.get("description", ""),
                "bytes": path.stat().st_size,
            }
        )
    return rows


def _table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        out = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _format_macs(macs: int) -> str:
    return f"{macs / 1e9:.3f} G" if macs >= 1e7 else f"{macs / 1e6:.3f} M"


def run(args: argparse.Namespace) -> int:
    archs = architecture_rows(args.size.hw)
    shipped = shipped_rows()
    if args.json:
        out = [dict(row, type="architecture") for row in archs] + [
            dict(row, type="shipped") for row in shipped
        ]
        print(json.dumps(out, indent=2))
        return 0
    body = [
        [
            r["name"],
            r["kind"],
            f"{r['parameters']:,}",
            str(Size(width=r["input_size"][3], height=r["input_size"][2])),
            _format_macs(r["macs"]),
            "-" if r["gmacs_per_output_mpixel"] is None else f"{r['gmacs_per_output_mpixel']:.2f}",
            r["description"],
        ]
        for r in archs
    ]
    headers = ["name", "kind", "params", "input", "MACs", "GMACs/out-MP", "description"]
    print(_table(headers, body, right={2, 3, 4, 5}))
    print()
    if shipped:
        rows = [
            [
                r["name"],
                r.get("arch", "?"),
                str(r.get("scale", "-")),
                r.get("dtype", "-"),
                r.get("description", r.get("error", "")),
            ]
            for r in shipped
        ]
        print("shipped models:")
        print(_table(["name", "arch", "scale", "dtype", "description"], rows, right={2}))
    else:
        print("shipped models: none installed")
    return 0
