"""Issue 16's import rules: arrows only downward between the parts of gansr, and no import cycle.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``: the layers, no import of the root
package from inside it, no cycle between sibling packages or modules). The tests run them on the
installed package, show on broken copies of it that they fail and name the offending import, and
check with grimp that no module (file) reaches a module it imports back through any chain.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "pyproject.toml"
PACKAGE = REPO / "src" / "gansr"


def python(code: str, *args: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code args`` finding gansr in ``pythonpath`` first (default: the installed one).

    A subprocess, so a broken copy is checked without shadowing the real package in this process.
    """
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=pythonpath or REPO,
        timeout=120,
    )


def lint(pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the contracts in pyproject.toml (no cache written)."""
    command = "import sys; from importlinter.cli import lint_imports_command as main; sys.exit(main())"
    return python(command, "--no-cache", "--no-logo", str(CONFIG), pythonpath=pythonpath)


def module_cycles(package: str = "gansr") -> list[str]:
    """Every import cycle between modules of ``package``, one line each: ``a -> b -> ... -> a``.

    For each direct import ``a -> b`` it looks for a chain back from ``b`` to ``a``; a cycle of
    length k is found from each of its k imports, so it is reported once, from its smallest module.
    """
    graph = grimp.build_graph(package, cache_dir=None)
    cycles = set()
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:
                loop = [importer, *back]  # back runs from `imported` to `importer`
                start = loop.index(min(loop[:-1]))
                cycles.add(" -> ".join(loop[start:-1] + loop[:start] + [loop[start]]))
    return sorted(cycles)


def _is_source(path: Path) -> bool:
    return path.suffix == ".py" or (path.is_dir() and path.name != "__pycache__")


def broken_copy(tmp_path: Path, module: str, line: str) -> Path:
    """A copy of gansr's Python files under ``tmp_path`` with ``line`` appended to ``module``'s file
    (created if it does not exist)."""
    shutil.copytree(
        PACKAGE,
        tmp_path / "gansr",
        ignore=lambda folder, names: [name for name in names if not _is_source(Path(folder) / name)],
    )
    path = tmp_path.joinpath(*module.split(".")).with_suffix(".py")
    path.write_text((path.read_text() if path.exists() else "") + f"\n{line}\n")
    return tmp_path


def test_the_import_contracts_are_kept():
    result = lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


def test_no_import_cycle_between_modules():
    cycles = module_cycles()
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize(
    ("module", "line", "expected"),
    [
        # An upward import: models sits below cli.
        (
            "gansr.models.registry",
            "import gansr.cli",
            [
                r"gansr\.models is not allowed to import gansr\.cli:",
                r"- gansr\.models\.registry -> gansr\.cli \(l\.",
            ],
        ),
        # Siblings on one line are independent: not even one of them may import another.
        (
            "gansr.video.pipeline",
            "import gansr.serve.app",
            [
                r"gansr\.video is not allowed to import gansr\.serve:",
                r"- gansr\.video\.pipeline -> gansr\.serve\.app",
            ],
        ),
        # Every top-level module must be given a layer.
        ("gansr.helpers", "import gansr.errors", [r"not listed as layers:\n\n- gansr\.helpers\n"]),
        # The root package sits above every layer.
        (
            "gansr.data.download",
            "from gansr import __version__",
            [r"imports the root package .*BROKEN", r"- gansr\.data\.download -> gansr \(l\."],
        ),
        # A cycle inside one layer (the registry imports the loss modules): either import may be
        # named as the one to remove.
        (
            "gansr.losses.pixel",
            "from gansr.losses import registry",
            [r"No cycles are allowed in gansr\.losses\.", r"- \.(pixel -> \.registry|registry -> \.pixel) "],
        ),
    ],
    ids=["upward", "siblings", "unlayered", "root", "cycle"],
)
def test_the_contracts_fail_on_a_bad_import(tmp_path, module, line, expected):
    result = lint(broken_copy(tmp_path, module, line))
    assert result.returncode == 1, result.stdout + result.stderr
    for pattern in expected:
        assert re.search(pattern, result.stdout), result.stdout


@pytest.mark.parametrize(
    ("line", "cycle"),
    [
        (
            "from gansr.losses import registry",
            "gansr.losses.pixel -> gansr.losses.registry -> gansr.losses.pixel",
        ),
        # A package's __init__ and one of its modules: not siblings, so only this check sees it.
        ("from gansr.losses import Loss", "gansr.losses -> gansr.losses.pixel -> gansr.losses"),
    ],
    ids=["siblings", "package"],
)
def test_the_cycle_check_finds_a_cycle_between_modules(tmp_path, line, cycle):
    root = broken_copy(tmp_path, "gansr.losses.pixel", line)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from test_layers import module_cycles; "
        "print(*module_cycles(), sep='\\n')"
    )
    out = python(code, str(Path(__file__).resolve().parent), pythonpath=root)
    assert out.returncode == 0, out.stderr
    assert cycle in out.stdout.splitlines(), out.stdout
