"""DDP on the CPU: two gloo processes launched with ``torch.distributed.run`` stay in lockstep."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gansr.train.logging import read_jsonl

WORKER = """
import os, sys
from pathlib import Path
import torch
from gansr.train import load_config, train

out = Path(sys.argv[1])
result = train(load_config("mnist_x4", sys.argv[2:]), runs_dir=out, quiet=True)
state = {
    "g": {k: v for k, v in result.generator.named_parameters()},
    "d": {k: v for k, v in result.discriminator.named_parameters()},
    "ema": {k: v for k, v in result.ema.named_parameters()},
    "val": result.last_val,
    "run_dir": str(result.run_dir),
}
torch.save(state, out / f"rank{os.environ['RANK']}.pt")
"""


@pytest.mark.slow
def test_two_cpu_processes_keep_identical_weights(tmp_path: Path, shared_data: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / "runs"
    out.mkdir()
    overrides = [
        f"data.root={shared_data / 'mnist'}", "device=cpu", "data.batch_size=8", "model.g.kwargs.num_feat=4",
        "model.d.kwargs.num_feat=4", "train.pretrain.iters=2", "train.gan.iters=3", "train.val_every=5",
        "train.val_max_images=5", "train.log_every=1", "train.ckpt_every=5", "train.plot_every=1000",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd = [*launcher, str(script), str(out), *overrides]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0, rank1 = (torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0["run_dir"] == rank1["run_dir"]  # rank 0 made the folder and told rank 1
    for net in ("g", "d", "ema"):
        assert rank0[net].keys() == rank1[net].keys()
        for name, value in rank0[net].items():
            assert torch.equal(value, rank1[net][name]), f"{net}.{name} differs between the processes"
    # and they trained: the weights moved away from the (seeded) initialisation
    from gansr.train import load_config
    from gansr.train.build import build_generator

    torch.manual_seed(0)
    init = dict(build_generator(load_config("mnist_x4", overrides)).named_parameters())
    assert any(not torch.equal(init[name], value) for name, value in rank0["g"].items())
    # validation sums and counts were all-reduced: both see all 5 images and the same means
    assert rank0["val"] == rank1["val"] and rank0["val"]["val_images"] == 5
    # only rank 0 wrote the run folder
    run_dir = Path(rank0["run_dir"])
    assert [p.name for p in out.iterdir() if p.is_dir()] == [run_dir.name]
    records = read_jsonl(run_dir / "log.jsonl")
    assert [r["it"] for r in records if r["event"] == "train"] == [1, 2, 3, 4, 5]
    assert (run_dir / "model.safetensors").is_file()
