"""The ``gansr`` command line.

Each sub-command lives in ``gansr/cli/<name>.py`` and exposes ``HELP`` (its one-line description
in ``gansr --help``) and ``register(subparsers)``, which adds its parser and sets ``func`` to a
``run(args) -> int`` function. Sub-command modules import torch
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

# The commands as `gansr --help` lists them: (heading, names). Each module ``gansr.cli.<name>``
# has ``HELP``, its one-line description.
COMMAND_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("run a model", ("upscale", "serve")),
    ("measure", ("eval", "report", "speed")),
    ("inspect and convert models", ("models", "export", "interp")),
    ("train and make data", ("train", "degrade", "sample")),
)
COMMANDS: tuple[str, ...] = tuple(name for _, names in COMMAND_GROUPS for name in names)

# Former command names: not in the parser (so not in --help or its list of choices); main() runs
# the new command in their place after one line on stderr, so that users' scripts keep working.
DEPRECATED_NAMES: dict[str, str] = {"bench": "speed", "benchmark": "report"}

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """The ``gansr`` parser: every sub-command, grouped in the help (former names: see :func:`main`)."""
    from gansr.version import __version__

    modules = {name: importlib.import_module(f"gansr.cli.{name}") for name in COMMANDS}
    width = max(map(len, COMMANDS)) + 2
    listing = "\n\n".join(
        f"{heading}:\n" + "\n".join(f"  {name:<{width}}{modules[name].HELP}" for name in names)
        for heading, names in COMMAND_GROUPS
    )
    parser = argparse.ArgumentParser(
        prog="gansr",
        usage="gansr [-h] [--version] COMMAND ...",
        description="GAN-based single-image super-resolution toolkit.",
        epilog=f"{listing}\n\n'gansr COMMAND --help' describes a command and its options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gansr {__version__}")
    # The listing above replaces argparse's flat one, which has no headings; hiding that also
    # hides COMMAND from the usage, hence the explicit usage (and prog, which sub-commands prefix).
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", help=argparse.SUPPRESS, prog="gansr")
    for module in modules.values():
        module.register(sub)
    return parser


def error(message: str) -> None:
    """Print a one-line user-facing error to stderr."""
    print(f"gansr: error: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    from gansr.errors import GansrError, Interrupted

    words = list(sys.argv[1:] if argv is None else argv)
    if words and words[0] in DEPRECATED_NAMES:  # top-level options all exit, so words[0] is the command
        new = DEPRECATED_NAMES[words[0]]
        print(f"gansr: warning: gansr {words[0]} is now gansr {new}", file=sys.stderr)
        words[0] = new
    parser = build_parser()
    args = parser.parse_args(words)
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
