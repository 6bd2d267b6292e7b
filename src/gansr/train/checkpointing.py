"""Atomic training checkpoints: keep the last K plus the best, find the one to resume from.

A training checkpoint (``checkpoints/iter_00001000.pt``) is one ``torch.save`` dict holding
everything needed to continue bit-exactly: G, D, EMA, optimizers, the GradScaler, loss states,
the iteration, the data position and every RNG state. It is written to a temporary file in the
same folder, fsynced and renamed, so a run killed at any moment leaves either the old or the new
file, never a torn one. Only plain containers, numbers, strings and tensors are stored, so it
loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gansr.data.io import atomic_write
from gansr.errors import ModelError
from gansr.models.checkpoint import TRAIN_FORMAT

CHECKPOINT_FORMAT = TRAIN_FORMAT  # models.load recognises it by this
CHECKPOINT_VERSION = 1
BEST_NAME = "best.pt"
_ITER_RE = re.compile(r"^iter_(\d+)\.pt$")


def atomic_torch_save(obj: Any, path: Path) -> Path:
    """``torch.save`` to a temp file beside ``path``, fsync, then rename into place."""
    path = Path(path)
    with atomic_write(path) as fh:
        torch.save(obj, fh)
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible on every platform (e.g. Windows), hence best-effort.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class CheckpointManager:
    """Writes ``iter_XXXXXXXX.pt`` files into ``folder``, keeps the newest ``keep_last`` and ``best.pt``."""

    def __init__(self, folder: Path, keep_last: int) -> None:
        if keep_last < 1:
            raise ValueError(f"keep_last must be >= 1, got {keep_last}")
        self.folder = Path(folder)
        self.keep_last = keep_last

    def path_for(self, iteration: int) -> Path:
        """The file name of the checkpoint taken after ``iteration`` iterations."""
        return self.folder / f"iter_{iteration:08d}.pt"

    def save(self, state: dict[str, Any], iteration: int) -> Path:
        """Write the checkpoint after ``iteration`` iterations and prune older ones."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = atomic_torch_save(state, self.path_for(iteration))
        for old in self.iteration_checkpoints()[: -self.keep_last]:
            old.unlink(missing_ok=True)
        return path

    def save_best(self, state: dict[str, Any], iteration: int) -> Path:
        """Make ``best.pt`` the checkpoint of ``iteration`` (a hard link when it was just saved)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        best = self.folder / BEST_NAME
        source = self.path_for(iteration)
        if source.is_file():
            tmp = best.with_name(f".{BEST_NAME}.{os.getpid()}.tmp")
            tmp.unlink(missing_ok=True)
            try:
                os.link(source, tmp)  # same bytes, no second write of a large file
                os.replace(tmp, best)
                _fsync_dir(self.folder)
                return best
            except OSError:
                tmp.unlink(missing_ok=True)
        return atomic_torch_save(state, best)

    def iteration_checkpoints(self) -> list[Path]:
        """``iter_*.pt`` files, oldest first."""
        if not self.folder.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if (m := _ITER_RE.match(p.name))]
        return [p for _, p in sorted(found)]

    def latest(self) -> Path | None:
        """The newest checkpoint (by iteration, ``best.pt`` included), or None."""
        candidates = self.iteration_checkpoints()
        newest = candidates[-1] if candidates else None
        best = self.folder / BEST_NAME
        if best.is_file():
            best_iter = peek_iteration(best)
            if newest is None or best_iter > int(_ITER_RE.match(newest.name).group(1)):  # type: ignore[union-attr]
                newest = best
        return newest

    def remove_temporaries(self) -> None:
        """Delete temp files a killed run left behind."""
        if self.folder.is_dir():
            for p in self.folder.glob(".*.tmp"):
                p.unlink(missing_ok=True)


def load_checkpoint(
    path: Path, map_location: str | torch.device = "cpu", *, mmap: bool = False
) -> dict[str, Any]:
    """Load a training checkpoint (``weights_only``), checking its format.

    Raises:
        ModelError: the file is not a gansr training checkpoint or cannot be read.
    """
    from gansr.models.checkpoint import torch_load

    state = torch_load(
        path, unreadable="cannot read training checkpoint", map_location=map_location, mmap=mmap
    )
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(f"{path}: not a gansr training checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise ModelError(f"{path}: training checkpoint version {state.get('version')} is not supported")
    return state


def load_newest_intact(
    folder: Path, map_location: str | torch.device = "cpu", *, on_damaged: Callable[[str], None]
) -> tuple[Path, dict[str, Any]]:
    """The newest checkpoint in ``folder`` that loads, and its state, for resuming.

    Candidates are the ``iter_*.pt`` files and ``best.pt``, newest iteration first. One that does
    not load (a file truncated by a full disk or a copy cut short) is reported to ``on_damaged``
    as one line and the next older one is tried.

    Raises:
        ModelError: no checkpoint in ``folder`` loads (the message names the newest's problem).
    """
    candidates = [
        (int(match.group(1)), path)
        for path in CheckpointManager(folder, 1).iteration_checkpoints()
        if (match := _ITER_RE.match(path.name))
    ]
    best = Path(folder) / BEST_NAME
    if best.is_file():
        candidates.append((peek_iteration(best), best))
    # Newest first; at equal iterations the periodic checkpoint before best.pt (they are the same).
    candidates.sort(key=lambda item: (item[0], item[1].name != BEST_NAME), reverse=True)
    first_error: ModelError | None = None
    for index, (_, path) in enumerate(candidates):
        try:
            state = load_checkpoint(path, map_location)
        except ModelError as exc:
            first_error = first_error or exc
            older = candidates[index + 1][1].name if index + 1 < len(candidates) else None
            what = f"trying {older} instead" if older else "no older checkpoint to fall back on"
            on_damaged(f"{exc}; {what}")
            continue
        return path, state
    if first_error is None:
        raise ModelError(f"{folder}: no training checkpoint to resume from")
    raise ModelError(f"{folder}: no intact training checkpoint to resume from ({first_error})")


def peek_iteration(path: Path) -> int:
    """The iteration stored in a checkpoint (-1 when unreadable)."""
    try:
        return int(load_checkpoint(path, mmap=True)["iteration"])  # mmap: tensors are not read
    except ModelError:
        return -1


# --------------------------------------------------------------------------------------------
# RNG states: the global generators are captured too because third-party code (models sampling
# noise, torch internals) may use them even though gansr itself passes explicit generators.
def capture_rng_states() -> dict[str, Any]:
    """Torch CPU/CUDA, NumPy and Python ``random`` states as weights-only-loadable data."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }


def restore_rng_states(states: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_states`."""
    torch.set_rng_state(states["torch"].cpu())
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in states["cuda"]])
    n = states["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
