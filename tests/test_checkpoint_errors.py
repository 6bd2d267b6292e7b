"""Checkpoint load errors are one gansr line (never torch's text or its weights_only advice), real
pickles holding Python objects are named as such under torch 2.13, and --resume falls back from a
damaged newest checkpoint to the newest intact one (issue 19)."""

from __future__ import annotations

import fractions
import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from gansr import models
from gansr.cli import main
from gansr.errors import ModelError
from gansr.train.checkpointing import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CheckpointManager,
    load_checkpoint,
)


class RunsCode:
    """What an attacker's pickle holds: unpickling it would call os.system."""

    def __reduce__(self):
        return (os.system, ("echo unpickled",))


def _state(it: int) -> dict:
    return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "iteration": it, "w": torch.zeros(3)}


def _refusal(exc: pytest.ExceptionInfo, name: str, file: Path) -> None:
    text = str(exc.value)
    assert text.startswith(f"refusing to unpickle {file}: it holds Python objects ({name})"), text
    assert "\n" not in text and "weights_only=False" not in text


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_real_pickles_with_python_objects_are_refused_by_name(tmp_path: Path, protocol: int) -> None:
    state = models.create("msrresnet", num_feat=4, num_block=1).state_dict()
    evil = tmp_path / "evil.pth"
    torch.save({"params": state, "payload": RunsCode()}, evil, pickle_protocol=protocol)
    with pytest.raises(ModelError) as info:
        models.load(evil)
    _refusal(info, "posix.system" if os.name == "posix" else "nt.system", evil)
    frac = tmp_path / "fraction.pth"
    torch.save({"params": state, "lr": fractions.Fraction(1, 3)}, frac, pickle_protocol=protocol)
    with pytest.raises(ModelError) as info:
        models.load(frac)
    _refusal(info, "fractions.Fraction", frac)


def test_plain_and_legacy_pickles_with_python_objects_are_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain.pth"
    plain.write_bytes(pickle.dumps({"lr": fractions.Fraction(1, 3)}, protocol=4))
    legacy = tmp_path / "legacy.pth"
    torch.save(
        {"x": torch.zeros(2), "lr": fractions.Fraction(1, 3)}, legacy, _use_new_zipfile_serialization=False
    )
    for file in (plain, legacy):
        with pytest.raises(ModelError) as info:
            models.load(file)
        _refusal(info, "fractions.Fraction", file)


def test_training_checkpoint_errors_are_one_gansr_line(tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    torch.save(_state(1), good)
    data = good.read_bytes()
    cases = {
        "truncated.pt": data[: len(data) // 2],
        "empty.pt": b"",
        "garbage.pt": b"not a checkpoint" * 10,
    }
    for name, payload in cases.items():
        (tmp_path / name).write_bytes(payload)
        with pytest.raises(ModelError) as info:
            load_checkpoint(tmp_path / name)
        text = str(info.value)
        assert text.startswith(f"{tmp_path / name}: cannot read training checkpoint ("), text
        assert "\n" not in text and "weights_only" not in text and len(text) < 250, text
    torch.save({**_state(1), "extra": RunsCode()}, tmp_path / "evil.pt")
    with pytest.raises(ModelError) as info:
        load_checkpoint(tmp_path / "evil.pt")
    _refusal(info, "posix.system" if os.name == "posix" else "nt.system", tmp_path / "evil.pt")


def test_newest_intact_checkpoint_is_used_when_the_newest_is_damaged(tmp_path: Path) -> None:
    from gansr.train.checkpointing import load_newest_intact

    ckpts = CheckpointManager(tmp_path, keep_last=3)
    for it in (10, 20, 30):
        ckpts.save(_state(it), it)
    newest = ckpts.path_for(30)
    newest.write_bytes(newest.read_bytes()[:100])  # a copy cut short / a full disk
    warnings: list[str] = []
    path, state = load_newest_intact(tmp_path, on_damaged=warnings.append)
    assert path == ckpts.path_for(20) and state["iteration"] == 20
    (line,) = warnings
    assert line.startswith(f"{newest}: cannot read training checkpoint") and "trying iter_00000020.pt" in line
    for it in (10, 20):
        ckpts.path_for(it).write_bytes(b"")
    with pytest.raises(ModelError, match="no intact training checkpoint"):
        load_newest_intact(tmp_path, on_damaged=warnings.append)


TINY = [
    "device=cpu", "model.g.kwargs.num_feat=4", "model.g.kwargs.num_block=1", "data.patch_size=32",
    "data.batch_size=2", "train.ckpt_every=2", "train.keep_last=3", "train.val_every=1000",
    "train.sample_images=1", "train.plot_every=1000", "train.amp=none",
    "train.pretrain.schedule.warmup_iters=0",
]  # fmt: skip


def test_resume_falls_back_from_a_truncated_newest_checkpoint(capsys, tmp_path: Path, set5: Path) -> None:
    """End to end on the packaged Set5: train 4 iterations, cut the newest checkpoint in half,
    resume to 6 iterations: one warning line, then it continues from iteration 2."""
    head = ["train", "srresnet_x4", "--quiet", "--out", str(tmp_path)]
    tiny = ["--set", f"data.root={set5}", *TINY]
    assert main([*head, *tiny, "train.pretrain.iters=4"]) == 0
    (run,) = tmp_path.iterdir()
    newest = run / "checkpoints" / "iter_00000004.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    capsys.readouterr()
    assert main([*head, "--resume", str(run), *tiny, "train.pretrain.iters=6"]) == 0
    err = capsys.readouterr().err
    (warning,) = [line for line in err.splitlines() if "warning" in line]
    assert warning.startswith(f"gansr: warning: {newest}: cannot read training checkpoint (")
    assert warning.endswith("; trying iter_00000002.pt instead") and "Traceback" not in err
    notes = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert any(r.get("message") == "resumed from iter_00000002.pt at iteration 2" for r in notes)
    assert (run / "checkpoints" / "iter_00000006.pt").is_file()
