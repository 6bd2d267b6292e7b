"""Exact resume: a run SIGKILLed at an arbitrary moment and resumed logs the same losses.

The CPU run is deterministic (``deterministic: true``) and uses a DataLoader worker, a PSNR
pre-training phase followed by a GAN phase, validation and checkpoints every few iterations;
after ``--resume`` every logged loss must equal the uninterrupted run's exactly.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gansr.cli import main
from gansr.train.logging import read_jsonl

ITERS = 50  # 6 pretrain + 44 GAN


def _args(shared_data: Path) -> list[str]:
    return [
        "train", "mnist_x4", "--quiet", "--set", f"data.root={shared_data / 'mnist'}", "deterministic=true",
        "device=cpu", "data.batch_size=16", "data.workers=1", "model.g.kwargs.num_feat=4",
        "model.d.kwargs.num_feat=4", "train.pretrain.iters=6", "train.gan.iters=44", "train.ckpt_every=5",
        "train.log_every=1", "train.val_every=10", "train.val_max_images=16", "train.sample_images=1",
        "train.plot_every=1000", "train.keep_last=2",
    ]  # fmt: skip


def _losses(run_dir: Path) -> dict[int, dict[str, float]]:
    out = {}
    for r in read_jsonl(run_dir / "log.jsonl"):
        if r["event"] == "train":
            out[r["it"]] = {k: v for k, v in r.items() if k.startswith(("g_", "d_", "lr_"))}
    return out


def _only_run(out: Path) -> Path:
    runs = list(out.iterdir()) if out.is_dir() else []
    return runs[0] if runs else out


def _wait_for(proc: subprocess.Popen, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 300
    while not done():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the run made no progress within 300 s"
        time.sleep(0.005)


@pytest.mark.slow
def test_sigkill_then_resume_reproduces_the_uninterrupted_run(tmp_path: Path, shared_data: Path) -> None:
    # One thread per process: identical arithmetic in all three runs, and no oversubscription
    # slowdown on a loaded machine.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "gansr", *_args(shared_data)]
    reference = subprocess.run(
        [*cmd, "--out", str(tmp_path / "ref")], env=env, capture_output=True, text=True
    )
    assert reference.returncode == 0, reference.stderr

    # Kill at an arbitrary moment: a random iteration after the first checkpoint, plus a random
    # fraction of an iteration (mid-step, mid-validation or mid-checkpoint-write alike).
    target = random.randint(7, ITERS - 10)
    killed_out = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, "--out", str(killed_out)], env=env, stderr=subprocess.PIPE)
    _wait_for(proc, lambda: max(_losses(_only_run(killed_out)), default=0) >= target)
    time.sleep(random.uniform(0.0, 0.05))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (run_dir,) = killed_out.iterdir()
    assert not (run_dir / "model.safetensors").exists(), f"the run finished before it was killed ({target=})"
    done_before_kill = max(_losses(run_dir))

    resume = subprocess.run(
        [*cmd, "--out", str(killed_out), "--resume"], env=env, capture_output=True, text=True
    )
    assert resume.returncode == 0, resume.stderr  # --resume without a folder: the latest run of mnist_x4
    ref_losses = _losses(next((tmp_path / "ref").iterdir()))
    resumed = _losses(run_dir)
    assert sorted(resumed) == list(range(1, ITERS + 1))
    assert resumed == ref_losses, f"{target=}"  # exact float equality, before and after the resume point
    records = read_jsonl(run_dir / "log.jsonl")
    notes = [r["message"] for r in records if r["event"] == "note"]
    resumed_at = int(notes[-1].split(" at iteration ")[1])
    assert resumed_at % 5 == 0 and 5 <= resumed_at <= done_before_kill
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert ckpts[-2:] == [f"iter_{ITERS - 5:08d}.pt", f"iter_{ITERS:08d}.pt"]  # keep_last=2 plus the best
    assert ckpts[0] == "best.pt" and len(ckpts) == 3
    assert [r["it"] for r in records if r["event"] == "val"] == list(range(0, ITERS + 1, 10))


def test_resume_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, shared_data: Path
) -> None:
    assert main([*_args(shared_data), "--out", str(tmp_path), "--resume"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"gansr: error: --resume: no run of 'mnist_x4' with a checkpoint in {tmp_path}"
    )
    (tmp_path / "mnist_x4-20250101-000000").mkdir()
    assert (
        main(
            [
                *_args(shared_data),
                "--out",
                str(tmp_path),
                "--resume",
                str(tmp_path / "mnist_x4-20250101-000000"),
            ]
        )
        == 2
    )
    assert "has no checkpoint yet" in capsys.readouterr().err


def test_resume_with_different_models_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, shared_data: Path
) -> None:
    tiny = [f"data.root={shared_data / 'mnist'}", "device=cpu", "data.batch_size=4",
            "model.g.kwargs.num_feat=4", "model.d.kwargs.num_feat=4", "train.gan.iters=1",
            "train.val_max_images=2", "train.plot_every=100"]  # fmt: skip
    assert main(["train", "mnist_x4", "--quiet", "--out", str(tmp_path), "--set", *tiny]) == 0
    (run_dir,) = tmp_path.iterdir()
    wider = [*tiny, "model.g.kwargs.num_feat=8"]
    assert (
        main(
            [
                "train",
                "mnist_x4",
                "--quiet",
                "--out",
                str(tmp_path),
                "--resume",
                str(run_dir),
                "--set",
                *wider,
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith(f"gansr: error: --resume: {run_dir / 'checkpoints'}")
        and "does not match this config" in err
    )
    assert len(err.splitlines()) == 1


@pytest.mark.slow
def test_ctrl_c_stops_after_a_whole_iteration_with_a_checkpoint_to_resume(
    tmp_path: Path, shared_data: Path
) -> None:
    """SIGINT (Ctrl-C) mid-run: the trainer finishes the iteration, writes a checkpoint of it (not
    only at ``ckpt_every``), exits 130 with one line, and ``--resume`` continues from exactly there."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "gansr", *_args(shared_data)]
    reference = subprocess.run(
        [*cmd, "--out", str(tmp_path / "ref")], env=env, capture_output=True, text=True
    )
    assert reference.returncode == 0, reference.stderr

    out = tmp_path / "stopped"
    proc = subprocess.Popen([*cmd, "--out", str(out)], env=env, stderr=subprocess.PIPE, text=True)
    _wait_for(proc, lambda: max(_losses(_only_run(out)), default=0) >= random.randint(8, ITERS - 15))
    os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    (line,) = stderr.strip().splitlines()
    assert line.startswith("gansr: error: stopped at iteration ") and "--resume" in line
    stopped_at = int(line.split("stopped at iteration ")[1].split()[0])
    (run_dir,) = out.iterdir()
    assert not (run_dir / "model.safetensors").exists()
    assert max(_losses(run_dir)) == stopped_at  # nothing ran past the checkpointed iteration
    assert (run_dir / "checkpoints" / f"iter_{stopped_at:08d}.pt").is_file()

    resume = subprocess.run([*cmd, "--out", str(out), "--resume"], env=env, capture_output=True, text=True)
    assert resume.returncode == 0, resume.stderr
    notes = [r["message"] for r in read_jsonl(run_dir / "log.jsonl") if r["event"] == "note"]
    assert int(notes[-1].split(" at iteration ")[1]) == stopped_at
    assert _losses(run_dir) == _losses(next((tmp_path / "ref").iterdir()))


def test_a_training_checkpoint_loads_as_its_ema_generator(tmp_path: Path, shared_data: Path) -> None:
    # gansr eval/upscale/export take a mid-run checkpoint; the last one is the run's model.safetensors.
    import torch

    from gansr import models
    from gansr.errors import ModelError

    args = [a for a in _args(shared_data) if not a.startswith(("train.gan.iters", "data.workers"))]
    assert main([*args, "train.gan.iters=4", "data.workers=0", "--out", str(tmp_path)]) == 0
    (run_dir,) = tmp_path.iterdir()
    final = models.load(run_dir / "model.safetensors")
    ckpt = models.load(run_dir / "checkpoints" / "iter_00000010.pt")
    mid = models.load(run_dir / "checkpoints" / "iter_00000005.pt")
    assert ckpt.metadata["format"] == "gansr-train" and ckpt.metadata["iterations"] == 10
    assert (ckpt.arch, ckpt.scale) == (final.arch, 4)
    x = torch.rand(1, 1, 7, 7)
    with torch.no_grad():
        assert torch.equal(ckpt(x), final(x))
        assert not torch.equal(mid(x), final(x))

    # One written before checkpoints named their generator: a one-line way out, not a KeyError.
    old = torch.load(run_dir / "checkpoints" / "iter_00000010.pt", weights_only=True)
    del old["generator"]
    torch.save(old, tmp_path / "old.pt")
    with pytest.raises(ModelError, match="resume the run"):
        models.load(tmp_path / "old.pt")
