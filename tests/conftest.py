"""Shared fixtures: where the real data lives.

The real datasets sit in ``shared/data`` beside the repository (``../shared/data`` from the
repository root); ``GANSR_SHARED_DATA`` overrides that. Tests that need them skip with a reason
when the folder is absent, so a bare checkout still runs the rest. Set5 ships in the package
(``gansr/samples/Set5``, the same files), so tests that need only Set5 run everywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    env = os.environ.get("GANSR_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = _shared_data()
    if not (root / "Set5").is_dir():
        pytest.skip(f"real data not found at {root} (set GANSR_SHARED_DATA)")
    return root


def packaged_set5() -> Path:
    """The Set5 images shipped in the package (``gansr/samples/Set5``)."""
    from importlib.resources import files

    return Path(str(files("gansr") / "samples" / "Set5"))


@pytest.fixture(scope="session")
def set5() -> Path:
    """Set5 from the shared data, else the identical copy shipped in the package."""
    shared = _shared_data() / "Set5"
    return shared if shared.is_dir() else packaged_set5()


@pytest.fixture(scope="session")
def set14(shared_data: Path) -> Path:
    return shared_data / "Set14"
