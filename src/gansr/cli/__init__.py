"""The ``gansr`` command line.

Each sub-command lives in ``gansr/cli/<name>.py`` and exposes ``register(subparsers)``, which adds
its parser and sets ``func`` to a ``run(args) -> int`` function. Sub-command modules import torch
and other heavy packages inside ``run`` only, so ``gansr --help`` and start-up stay fast.

Errors the user can cause are :class:`gansr.errors.GansrError`; they are printed as one line and
turned into exit code 2. Nothing the user can cause should print a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

# Order here is the order in `gansr --help`.
COMMANDS: tuple[str, ...] = (
    "upscale",
    "eval",
    "benchmark",
    "bench",
    "models",
    "export",
    "train",
    "degrade",
    "interp",
    "sample",
    "serve",
)

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    from gansr import __version__

    parser = argparse.ArgumentParser(
        prog="gansr", description="GAN-based single-image super-resolution toolkit."
    )
    parser.add_argument("--version", action="version", version=f"gansr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"gansr.cli.{name}").register(sub)
    return parser


def error(message: str) -> None:
    """Print a one-line user-facing error to stderr."""
    print(f"gansr: error: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    from gansr.errors import GansrError, Interrupted

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return int(args.func(args) or 0)
    except Interrupted as exc:
        error(str(exc))
        return EXIT_INTERRUPTED
    except GansrError as exc:
        error(str(exc))
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        error("interrupted")
        return EXIT_INTERRUPTED
    except OSError as exc:  # disk full, permission denied, ... : the user's environment, not a bug
        error(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
        return EXIT_USER_ERROR


# Commands whose process has nothing left to do once ``main`` returns: every file they write is
# closed and renamed into place, and they start no helper processes. Python's teardown with
# torch loaded (module finalizers) takes ~0.4 s, a fifth of a small upscale's wall time, so the
# executable skips it for them.
EXIT_AT_ONCE = frozenset({"upscale"})


def console() -> NoReturn:
    """The ``gansr`` executable: :func:`main` on ``sys.argv``, then exit with its code."""
    code = main()
    if sys.argv[1:2] and sys.argv[1] in EXIT_AT_ONCE:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: nothing more to deliver
                pass
        os._exit(code)
    sys.exit(code)
