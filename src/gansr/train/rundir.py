"""Run folders: ``RUNS_DIR/<name>-<YYYYmmdd-HHMMSS>/`` and finding the one to resume.

A run folder holds ``config.yaml`` (the resolved config), ``log.jsonl``, ``log.csv``,
``checkpoints/``, ``samples/``, ``plots/`` and, at the end, ``model.safetensors`` (the EMA
generator, loadable with :func:`gansr.models.load`).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from gansr.errors import ConfigError
from gansr.train.checkpointing import CheckpointManager

CHECKPOINTS = "checkpoints"
SAMPLES = "samples"
PLOTS = "plots"
CONFIG_NAME = "config.yaml"
MODEL_NAME = "model.safetensors"


def _run_re(name: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(name)}-(\d{{8}}-\d{{6}})(?:-(\d+))?$")


def new_run_dir(runs_dir: Path, name: str) -> Path:
    """Create and return a fresh ``<runs_dir>/<name>-<timestamp>[-N]`` folder."""
    runs_dir = Path(runs_dir).expanduser()
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        candidate = runs_dir / (f"{name}-{stamp}" if n == 0 else f"{name}-{stamp}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        for sub in (CHECKPOINTS, SAMPLES, PLOTS):
            (candidate / sub).mkdir()
        return candidate
    raise ConfigError(f"--out: cannot create a new run folder in {runs_dir}")  # pragma: no cover


def runs_of(runs_dir: Path, name: str) -> list[Path]:
    """Run folders of config ``name`` in ``runs_dir``, oldest first."""
    runs_dir = Path(runs_dir).expanduser()
    if not runs_dir.is_dir():
        return []
    pattern = _run_re(name)
    found = []
    for p in runs_dir.iterdir():
        m = pattern.match(p.name)
        if m and p.is_dir():
            found.append(((m.group(1), int(m.group(2) or 0)), p))
    return [p for _, p in sorted(found)]


def find_resume_point(runs_dir: Path, name: str, resume: str | Path) -> tuple[Path, Path]:
    """``(run folder, checkpoint)`` for ``--resume``: a run folder, or "latest" for ``name``'s newest.

    Raises:
        ConfigError: no such run, or the run has no checkpoint yet.
    """
    if str(resume) == "latest":
        runs = [r for r in runs_of(runs_dir, name) if CheckpointManager(r / CHECKPOINTS, 1).latest()]
        if not runs:
            raise ConfigError(
                f"--resume: no run of '{name}' with a checkpoint in {Path(runs_dir).expanduser()}"
            )
        run = runs[-1]
    else:
        run = Path(resume).expanduser()
        if not run.is_dir():
            raise ConfigError(f"--resume: run folder not found: {run}")
    ckpt = CheckpointManager(run / CHECKPOINTS, 1).latest()
    if ckpt is None:
        raise ConfigError(
            f"--resume: {run} has no checkpoint yet (it stopped before train.ckpt_every iterations)"
        )
    return run, ckpt
