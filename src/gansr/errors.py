"""User-facing errors.

Anything a user can cause (a missing folder, a corrupt image, a bad config key) raises a
:class:`GansrError` subclass with a one-line message. The CLI prints it as
``gansr: error: <message>`` and exits non-zero, without a traceback. Programming errors stay
ordinary exceptions so they keep their tracebacks.

An optional dependency that is missing is a user error too; :func:`install_hint` says how to add
the gansr extra (``serve``, ``onnx``, ``video``) that provides it, for the way this gansr was
installed. ``pip install 'gansr[serve]'`` is right only for gansr installed from a package index:
from a git clone (``pip install -e .``) it would fetch whatever an index has under that name
instead of adding the extra's packages to this install. PEP 610's ``direct_url.json`` in the
installed distribution says whether it came from a local folder (editable or not), a VCS URL or an
archive.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path
from urllib.parse import unquote, urlparse

DIST = "gansr"


class GansrError(Exception):
    """Base class of errors whose message is meant for the user (one line, no traceback)."""


class ConfigError(GansrError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


class DataError(GansrError):
    """An input file or dataset folder cannot be used (missing, empty, corrupt, too large)."""


class ModelError(GansrError):
    """A model name, checkpoint or state dict cannot be resolved or loaded."""


class DownloadError(GansrError):
    """A file could not be downloaded or failed its checksum."""


class Interrupted(GansrError):
    """The user stopped long work (Ctrl-C / SIGTERM) and it stopped cleanly; the message says
    what was kept (e.g. the checkpoint to resume from). The CLI exits 130."""


def install_hint(extra: str) -> str:
    """``install it with: <command>``, plus the extra's packages for installing them by hand."""
    packages = extra_packages(extra)
    alternative = f" (or: pip install {' '.join(packages)})" if packages else ""
    return f"install it with: {install_command(extra)}{alternative}"


def install_command(extra: str) -> str:
    """The ``pip install`` command that adds ``extra`` to this gansr, e.g. ``pip install -e '.[serve]'``."""
    origin = _origin()
    if origin is None:
        return f"pip install {shlex.quote(f'{DIST}[{extra}]')}"
    kind, where = origin
    if kind == "vcs":
        return f"pip install {shlex.quote(f'{DIST}[{extra}] @ {where}')}"
    target = f"{_shown_folder(Path(where))}[{extra}]"
    return f"pip install {'-e ' if kind == 'editable' else ''}{shlex.quote(target)}"


def extra_packages(extra: str) -> list[str]:
    """The package names ``extra`` pulls in, from the installed metadata (empty when unknown)."""
    from importlib import metadata

    try:
        requires = metadata.distribution(DIST).requires or []
    except metadata.PackageNotFoundError:
        return []
    names = []
    for requirement in requires:
        spec, _, marker = requirement.partition(";")
        if re.search(rf"""extra\s*==\s*["']{re.escape(extra)}["']""", marker):
            names.append(re.split(r"[\s<>=!~\[(;]", spec.strip(), maxsplit=1)[0])
    return names


def _origin() -> tuple[str, str] | None:
    """``("editable" | "folder", path)``, ``("vcs", url)``, or None for an index install (or unknown).

    A gansr imported from a source tree that pip never installed counts as an editable install
    of that tree, when the tree has a ``pyproject.toml``.
    """
    from importlib import metadata

    try:
        dist = metadata.distribution(DIST)
    except metadata.PackageNotFoundError:
        root = Path(__file__).resolve().parents[2]  # src/gansr/errors.py -> the repository
        return ("editable", str(root)) if (root / "pyproject.toml").is_file() else None
    try:
        info = json.loads(dist.read_text("direct_url.json") or "null")
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not isinstance(info.get("url"), str):
        return None
    url = info["url"]
    if isinstance(info.get("vcs_info"), dict):
        vcs = info["vcs_info"].get("vcs", "git")
        commit = info["vcs_info"].get("requested_revision")
        return "vcs", f"{vcs}+{url}" + (f"@{commit}" if commit else "")
    parsed = urlparse(url)
    if parsed.scheme != "file" or "archive_info" in info:
        return None  # a wheel or sdist file: the index name is the best guess
    editable = bool((info.get("dir_info") or {}).get("editable"))
    return ("editable" if editable else "folder"), unquote(parsed.path)


def _shown_folder(folder: Path) -> str:
    """``.`` when the shell is in ``folder``, else the folder's path (relative when shorter)."""
    try:
        if folder.resolve() == Path.cwd().resolve():
            return "."
        relative = os.path.relpath(folder, Path.cwd())
    except (OSError, ValueError):  # no current folder, or another drive (Windows)
        return str(folder)
    if not relative.startswith(".."):
        relative = os.path.join(".", relative)  # pip takes "./x[extra]" as a folder, never a name
    return relative if len(relative) < len(str(folder)) else str(folder)
