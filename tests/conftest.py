"""Shared fixtures: where the real data lives, and one torch thread per test module.

The real datasets sit in ``shared/data`` beside the repository (``../shared/data`` from the
repository root); ``GANSR_SHARED_DATA`` overrides that. Tests that need them skip with a reason
when the folder is absent, so a bare checkout still runs the rest. Set5 ships in the package
(``gansr/samples/Set5``, the same files), so tests that need only Set5 run everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
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


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch intra-op thread while the module that asks for it runs; restored afterwards.

    Tests check results, not speed: on a shared machine extra threads only spin against the
    other processes' threads. A module opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``;
    module scope, so the module's own module-scoped fixtures are computed on one thread too.
    """
    import torch  # here, so collecting tests that need no torch does not import it

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
