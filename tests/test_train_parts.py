"""The engine's parts: EMA, LR schedule, checkpoints, RNG capture, logs, plots, batch plan, interp."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from gansr.errors import ConfigError, ModelError
from gansr.train.checkpointing import (
    BEST_NAME,
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CheckpointManager,
    capture_rng_states,
    load_checkpoint,
    restore_rng_states,
)
from gansr.train.config import ScheduleConfig
from gansr.train.data import BatchPlan, item_seed
from gansr.train.ema import EMA
from gansr.train.logging import RunLogger, read_jsonl
from gansr.train.optim import lr_factor
from gansr.train.plots import plot_curves, sample_grid, save_sample_grid


# ------------------------------------------------------------------------------------------ EMA
def test_ema_tracks_parameters_and_copies_buffers() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    ema = EMA(model, decay=0.9, warmup=False)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model(torch.randn(4, 1, 5, 5))  # updates the BN running statistics
    ema.update(model)
    for (name, p_ema), (_, p) in zip(ema.module.named_parameters(), model.named_parameters(), strict=True):
        torch.testing.assert_close(p_ema, 0.9 * start[name] + 0.1 * p.detach())
    for (_, b_ema), (_, b) in zip(ema.module.named_buffers(), model.named_buffers(), strict=True):
        assert torch.equal(b_ema, b)  # buffers are copied, not averaged
    assert not any(p.requires_grad for p in ema.module.parameters())
    assert not ema.module.training


def test_ema_warmup_and_state_round_trip() -> None:
    model = nn.Linear(3, 1)
    ema = EMA(model, decay=0.999)
    assert ema.current_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    for _ in range(5):
        ema.update(model)
    assert ema.current_decay() == pytest.approx(6 / 15)
    again = EMA(nn.Linear(3, 1), decay=0.999)
    again.load_state_dict(ema.state_dict())
    assert again.num_updates == 5
    assert torch.equal(again.module.weight, ema.module.weight)
    assert EMA(model, decay=0.0).current_decay() == 0.0


# ------------------------------------------------------------------------------------ schedule
def test_lr_schedules() -> None:
    multistep = ScheduleConfig(type="multistep", milestones=[10, 20], gamma=0.5)
    assert [lr_factor(multistep, s, 30) for s in (0, 9, 10, 19, 20, 29)] == [1, 1, 0.5, 0.5, 0.25, 0.25]
    cosine = ScheduleConfig(type="cosine", min_lr_ratio=0.1)
    assert lr_factor(cosine, 0, 100) == pytest.approx(1.0)
    assert lr_factor(cosine, 50, 100) == pytest.approx(0.55)
    assert lr_factor(cosine, 100, 100) == pytest.approx(0.1)
    warm = ScheduleConfig(type="constant", warmup_iters=4)
    assert [lr_factor(warm, s, 10) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


# --------------------------------------------------------------------------------- checkpoints
def _state(it: int) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "iteration": it,
        "w": torch.full((3,), it),
    }


def test_checkpoints_keep_last_k_plus_best(tmp_path: Path) -> None:
    ckpts = CheckpointManager(tmp_path / "ck", keep_last=2)
    for it in (10, 20, 30):
        ckpts.save(_state(it), it)
        if it == 20:
            ckpts.save_best(_state(it), it)
    names = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert names == [BEST_NAME, "iter_00000020.pt", "iter_00000030.pt"]
    assert load_checkpoint(tmp_path / "ck" / BEST_NAME)["iteration"] == 20
    assert ckpts.latest().name == "iter_00000030.pt"
    # best at an iteration without a periodic checkpoint is written on its own, and is then newest
    ckpts.save_best(_state(35), 35)
    assert ckpts.latest().name == BEST_NAME
    # no temp files are left behind
    assert not list((tmp_path / "ck").glob(".*"))


def test_checkpoint_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpts = CheckpointManager(tmp_path, keep_last=3)
    ckpts.save(_state(1), 1)

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        ckpts.save(_state(2), 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iter_00000001.pt"]
    (tmp_path / ".iter_00000002.pt.123.tmp").write_bytes(b"torn")  # what a SIGKILL leaves
    assert ckpts.latest().name == "iter_00000001.pt"
    ckpts.remove_temporaries()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iter_00000001.pt"]


def test_load_checkpoint_rejects_foreign_files(tmp_path: Path) -> None:
    torch.save({"a": 1}, tmp_path / "x.pt")
    with pytest.raises(ModelError, match="not a gansr training checkpoint"):
        load_checkpoint(tmp_path / "x.pt")
    (tmp_path / "y.pt").write_bytes(b"garbage")
    with pytest.raises(ModelError, match="cannot read training checkpoint"):
        load_checkpoint(tmp_path / "y.pt")


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    np.random.normal()  # leaves a cached gaussian in NumPy's state
    states = capture_rng_states()
    expected = (torch.rand(3), np.random.rand(3), np.random.normal(), random.random())
    torch.save({**_state(0), "rng": states}, tmp_path / "c.pt")
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    restore_rng_states(load_checkpoint(tmp_path / "c.pt")["rng"])
    got = (torch.rand(3), np.random.rand(3), np.random.normal(), random.random())
    assert torch.equal(got[0], expected[0])
    assert np.array_equal(got[1], expected[1])
    assert got[2:] == expected[2:]


# ---------------------------------------------------------------------------------------- logs
def test_logger_writes_jsonl_and_csv_and_truncates_on_resume(tmp_path: Path) -> None:
    log = RunLogger(tmp_path, quiet=True, tensorboard=False)
    log.log({"event": "train", "it": 1, "g_total": 0.5})
    log.log({"event": "val", "it": 1, "val_psnr": 20.0})  # a new column: CSV rewritten
    log.log({"event": "train", "it": 2, "g_total": float("nan")})
    log.note("hello")
    log.close()
    records = read_jsonl(tmp_path / "log.jsonl")
    assert [r["event"] for r in records] == ["train", "val", "train", "note"]
    assert records[2]["g_total"] == "nan"
    csv_lines = (tmp_path / "log.csv").read_text().splitlines()
    assert csv_lines[0] == "event,it,g_total,val_psnr,message"
    assert len(csv_lines) == 5
    # a killed run: a torn last line and records after the checkpoint
    with open(tmp_path / "log.jsonl", "a") as fh:
        fh.write(json.dumps({"event": "train", "it": 3, "g_total": 0.1}) + "\n" + '{"event": "tr')
    again = RunLogger(tmp_path, quiet=True, tensorboard=False)
    again.resume(1)
    assert [r.get("it") for r in read_jsonl(tmp_path / "log.jsonl")] == [1, 1, None]
    assert len((tmp_path / "log.csv").read_text().splitlines()) == 4
    disabled = RunLogger(tmp_path / "other", enabled=False)
    disabled.log({"event": "train", "it": 1})
    assert not (tmp_path / "other").exists()


# --------------------------------------------------------------------------------------- plots
def test_plots_and_sample_grid(tmp_path: Path) -> None:
    records = [
        {"event": "train", "it": i, "g_total": 1 / i, "d_loss": 0.5, "lr_g": 1e-4} for i in range(1, 20)
    ]
    records += [{"event": "val", "it": i, "val_psnr": 20 + i / 10, "bicubic_psnr": 20.0} for i in (5, 10, 15)]
    written = plot_curves(records, tmp_path)
    assert sorted(p.name for p in written) == ["losses.png", "lr.png", "metrics.png"]
    for p in written:
        with Image.open(p) as im:
            assert im.format == "PNG" and im.size[0] > 300
    hr = torch.rand(1, 28, 28)
    lr = hr[:, ::4, ::4]
    grid = sample_grid([(lr, hr, hr, hr), (lr, hr * 0, hr, hr)], gap=4)
    # 28 px panels are enlarged 4x (>= 96 px); two rows of four panels with 4 px gaps
    assert grid.shape == (3, 2 * (112 + 4) + 4, 4 * (112 + 4) + 4)
    # the HR panel of row 0 is the HR image, enlarged with nearest neighbour
    torch.testing.assert_close(grid[0, 4 : 4 + 112 : 4, 4 + 3 * 116 : 4 + 3 * 116 + 112 : 4], hr[0])
    out = save_sample_grid([(lr, hr, hr, hr)], tmp_path / "s" / "grid.png")
    with Image.open(out) as im:
        assert im.size == (4 * 116 + 4, 116 + 4)


# ---------------------------------------------------------------------------------- batch plan
def test_batch_plan_is_a_pure_function_of_the_batch_index() -> None:
    plan = BatchPlan(10, 3, seed=5)
    assert plan.batches_per_epoch == 3
    first = [plan.keys(b) for b in range(7)]
    restarted = BatchPlan(10, 3, seed=5, start=4)
    assert [next(iter(restarted))] == [first[4]]
    epoch0 = [i for keys in first[:3] for _, i in keys]
    assert len(set(epoch0)) == 9  # no repeats within an epoch (drop_last drops one image)
    assert {e for keys in first for e, _ in keys} == {0, 1, 2}
    assert first[0] != first[3]  # a new permutation each epoch
    # two processes: disjoint shards of the same permutation
    a, b = BatchPlan(10, 2, seed=5, rank=0, world_size=2), BatchPlan(10, 2, seed=5, rank=1, world_size=2)
    assert not {i for _, i in a.keys(0) + a.keys(1)} & {i for _, i in b.keys(0) + b.keys(1)}
    assert item_seed(1, 2, 3) == item_seed(1, 2, 3) != item_seed(1, 2, 4)


def test_the_loader_follows_the_batch_plan() -> None:
    from gansr.data.loader import make_loader

    class Keys(torch.utils.data.Dataset):
        def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
            return torch.tensor(key)

        def __len__(self) -> int:
            return 10

    plan = BatchPlan(10, 3, seed=5, start=2)
    batches = iter(make_loader(Keys(), batches=plan, seed=5, pin_memory=False))
    for b in (2, 3, 4):  # epoch 0's last batch, then epoch 1
        assert next(batches).tolist() == [list(key) for key in plan.keys(b)]
    with pytest.raises(ConfigError, match="exactly one of batch_size and batches"):
        make_loader(Keys(), 3, batches=plan)


# -------------------------------------------------------------------------------------- interp
def test_interpolation_follows_esrgan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gansr import models
    from gansr.cli import main
    from gansr.train.interp import interpolate

    torch.manual_seed(0)
    gan, psnr_model = models.create("srcnn", scale=2), models.create("srcnn", scale=2)
    mixed = interpolate(gan, psnr_model, 0.8)
    for key, value in mixed.state_dict().items():
        expected = 0.8 * gan.state_dict()[key].double() + 0.2 * psnr_model.state_dict()[key].double()
        torch.testing.assert_close(value, expected.float())
    assert torch.equal(
        interpolate(gan, psnr_model, 1.0).state_dict()["conv1.weight"], gan.state_dict()["conv1.weight"]
    )

    models.save(gan, tmp_path / "gan.safetensors")
    models.save(psnr_model, tmp_path / "psnr.safetensors")
    models.save(models.create("srcnn", scale=3), tmp_path / "x3.safetensors")
    models.save(models.create("msrresnet", num_block=1, scale=2), tmp_path / "other.safetensors")
    out = tmp_path / "interp.safetensors"
    code = main(
        [
            "interp",
            str(tmp_path / "gan.safetensors"),
            str(tmp_path / "psnr.safetensors"),
            "--alpha",
            "0.8",
            "-o",
            str(out),
        ]
    )
    assert code == 0
    loaded = models.load(out)
    torch.testing.assert_close(loaded.state_dict()["conv1.weight"], mixed.state_dict()["conv1.weight"])
    assert loaded.metadata["interpolation"]["alpha"] == 0.8
    capsys.readouterr()
    for other, message in (("x3", "different configs"), ("other", "different architectures")):
        code = main(
            [
                "interp",
                str(tmp_path / "gan.safetensors"),
                str(tmp_path / f"{other}.safetensors"),
                "-o",
                str(tmp_path / "bad.safetensors"),
            ]
        )
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad.safetensors").exists()
    with pytest.raises(ConfigError, match="alpha"):
        interpolate(gan, psnr_model, 1.5)


# ------------------------------------------------------------------------- train state and step
def _tiny_wgan_gp(set5: Path) -> tuple:
    """A tiny WGAN-GP run (5 critic steps, gradient penalty drawn from the state's noise) on Set5."""
    from gansr.train.build import build_parts
    from gansr.train.config import load_config
    from gansr.train.distributed import DistContext
    from gansr.train.state import TrainState
    from gansr.train.step import TrainStep

    cfg = load_config(
        "msrgan_x4_bsds",
        [f"data.root={set5}", "data.patch_size=32", "data.batch_size=2", "device=cpu", "train.amp=none",
         "model.g.kwargs={num_feat: 8, kernels: [3, 5], num_block: 1, convs_per_block: 2}",
         "model.d.kwargs={num_feat: 8, num_down: 2}", "train.pretrain.iters=1", "train.gan.iters=2"],
    )  # fmt: skip
    ctx = DistContext(0, 1, 0, torch.device("cpu"))
    parts = build_parts(cfg)
    state = TrainState.create(cfg, parts, ctx)
    state.g.train()
    state.d.train()
    return parts, state, TrainStep(state, cfg, ctx), ctx


def _batches(parts, start: int):
    """``next_batch`` over fixed batches of two samples, counting how many were drawn."""
    drawn = []

    def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [parts.samples[(0, (start + len(drawn) * 2 + k) % len(parts.samples))] for k in range(2)]
        drawn.append(1)
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])

    return next_batch, drawn


def test_gan_step_runs_n_critic_d_steps_with_the_gradient_penalty(set5: Path) -> None:
    parts, state, step, _ = _tiny_wgan_gp(set5)
    next_batch, drawn = _batches(parts, 0)
    out = step(state, next_batch, pretrain=False)
    assert len(drawn) == 5 and len(out.d_loss) == len(out.d_gp) == 5  # n_critic: 5 batches, 5 D steps
    values = out.values()
    assert list(values)[:5] == ["d_loss", "d_gp", "d_real", "d_fake", "g_total"]
    assert values["d_gp"] == pytest.approx(sum(gp.item() for gp in out.d_gp) / 5)
    assert {"g_ssim", "g_l1", "g_wgan_gp"} <= set(values) and out.stepped
    assert state.ema.num_updates == 1 and state.optimizers["d"].state and state.optimizers["g_gan"].state


def test_train_state_checkpoint_is_everything_resume_needs(set5: Path, tmp_path: Path) -> None:
    parts, state, step, ctx = _tiny_wgan_gp(set5)
    step(state, _batches(parts, 0)[0], pretrain=True)
    step(state, _batches(parts, 2)[0], pretrain=False)
    state.iteration, state.batch_index, state.best_psnr, state.last_val = 2, 6, 21.5, {"val_psnr": 21.5}
    state.nonfinite_streak, state.nonfinite_total = 1, 3
    state.log_sums, state.log_count = {"g_total": 0.5}, 1
    torch.save(state.state_dict(ctx), tmp_path / "c.pt")
    checkpoint = load_checkpoint(tmp_path / "c.pt")  # weights_only: plain data and tensors
    ahead = step(state, _batches(parts, 4)[0], pretrain=False).values()

    parts2, resumed, step2, _ = _tiny_wgan_gp(set5)  # a fresh run, then the checkpoint
    resumed.load_state_dict(checkpoint, ctx)
    assert (resumed.iteration, resumed.batch_index, resumed.best_psnr) == (2, 6, 21.5)
    assert (resumed.nonfinite_streak, resumed.nonfinite_total, resumed.log_count) == (1, 3, 1)
    assert resumed.log_sums == {"g_total": 0.5} and resumed.last_val == {"val_psnr": 21.5}
    assert resumed.ema.num_updates == 2
    # the same next step: weights, optimizer moments, EMA and the noise of the gradient penalty
    assert step2(resumed, _batches(parts2, 4)[0], pretrain=False).values() == ahead
    for a, b in zip(state.g.state_dict().values(), resumed.g.state_dict().values(), strict=True):
        assert torch.equal(a, b)

    other = EMA(nn.Linear(1, 1), 0.9)
    resumed.ema = other  # a model the checkpoint does not fit
    with pytest.raises(ModelError, match=r"^--resume: x\.pt does not match this config \("):
        resumed.load_state_dict(checkpoint, ctx, source="--resume: x.pt")
