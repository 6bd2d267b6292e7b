"""Shared fixtures: where the real data lives.

The real datasets sit in ``shared/data`` beside the repository (``../shared/data`` from the
repository root); ``GANSR_SHARED_DATA`` overrides that. Tests that need them skip with a reason
when the folder is absent, so a bare checkout still runs the rest.
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


@pytest.fixture(scope="session")
def set5(shared_data: Path) -> Path:
    return shared_data / "Set5"


@pytest.fixture(scope="session")
def set14(shared_data: Path) -> Path:
    return shared_data / "Set14"
