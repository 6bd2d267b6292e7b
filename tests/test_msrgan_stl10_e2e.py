"""Design 004 end to end: the msrgan_stl10_x4 preset (12x12 -> 48x48) on STL-10 binary files in
the real release format, written here; and its VGG feature-loss option, used when VGG19 weights
are on disk and announced in the log when they are not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import gansr
from gansr import models
from gansr.cli import main
from gansr.data import STL10Dataset
from gansr.degrade import imresize
from gansr.losses.perceptual import VGG19_FILENAME, VGG19Features
from gansr.train.logging import read_jsonl

SIDE = 96


pytestmark = pytest.mark.usefixtures("one_thread")


def _stl_images(count: int, seed: int) -> np.ndarray:
    """Upright (N, 3, y, x) uint8 photos-like images: smooth gradients, a disc and an edge."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
    out = np.empty((count, 3, SIDE, SIDE), np.uint8)
    for i in range(count):
        cy, cx, r = rng.uniform(25, 70), rng.uniform(25, 70), rng.uniform(10, 25)
        disc = ((y - cy) ** 2 + (x - cx) ** 2 < r * r).astype(np.float32)
        for c in range(3):
            a, b = rng.uniform(-1, 1, 2)
            base = 128 + 60 * np.sin(a * x / 12 + b * y / 15 + c)
            out[i, c] = np.clip(base + rng.uniform(-90, 90) * disc + 40 * (x > 60 + 5 * c), 0, 255)
    return out


def _write_split(folder: Path, split: str, images: np.ndarray, labels: np.ndarray | None) -> None:
    # The release layout (stl10_binary/*.bin): each image 3 x 96 x 96 uint8, channel after
    # channel, each channel column-major (MATLAB order); labels one byte each, 1..10.
    (folder / f"{split}_X.bin").write_bytes(np.ascontiguousarray(images.transpose(0, 1, 3, 2)).tobytes())
    if labels is not None:
        (folder / f"{split}_y.bin").write_bytes(labels.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def stl10(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    root = tmp_path_factory.mktemp("stl10")
    folder = root / "stl10_binary"
    folder.mkdir()
    train, test = _stl_images(6, 0), _stl_images(3, 1)
    _write_split(folder, "train", train, np.array([1, 2, 3, 4, 5, 10]))
    _write_split(folder, "test", test, np.array([10, 1, 7]))
    _write_split(folder, "unlabeled", _stl_images(2, 2), None)
    (folder / "class_names.txt").write_text(
        "airplane\nbird\ncar\ncat\ndeer\ndog\nhorse\nmonkey\nship\ntruck\n"
    )
    return root, test


SMALL = [
    "model.g.kwargs={num_feat: 8, kernels: [3, 5], num_block: 1, convs_per_block: 2}",
    "model.d.kwargs={num_feat: 8, num_down: 2}", "data.batch_size=2", "data.workers=0",
    "train.gan.iters=2", "train.val_every=2", "train.ckpt_every=2", "train.log_every=1",
    "train.val_max_images=3", "train.sample_images=2", "train.plot_every=1000", "device=cpu",
]  # fmt: skip


def _train(capsys: pytest.CaptureFixture[str], root: Path, out: Path, *extra: str) -> tuple[Path, list[dict]]:
    code = main(
        [
            "train",
            "msrgan_stl10_x4",
            "--out",
            str(out),
            "--quiet",
            "--set",
            f"data.root={root}",
            *SMALL,
            *extra,
        ]
    )
    assert code == 0, capsys.readouterr().err
    (run,) = out.iterdir()
    return run, read_jsonl(run / "log.jsonl")


def test_stl10_preset_end_to_end_without_vgg_weights(
    capsys: pytest.CaptureFixture[str],
    stl10: tuple[Path, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("gansr.losses.find_vgg19_weights", lambda: None)
    root, test_images = stl10
    data = STL10Dataset(root, "test")
    assert len(data) == 3 and [data[i]["label"] for i in range(3)] == [9, 0, 6]
    run, records = _train(capsys, root, tmp_path / "runs")
    notes = [r["message"] for r in records if r["event"] == "note"]
    assert len(notes) == 1 and notes[0].startswith("VGG19 weights not found: train.gan.losses")
    assert "in place of vgg" in notes[0] and VGG19_FILENAME in notes[0]
    train = [r for r in records if r["event"] == "train"]
    assert {"g_ssim", "g_wgan_gp", "d_gp"} <= set(train[0]) and "g_vgg" not in train[0]
    val = [r for r in records if r["event"] == "val"][-1]
    assert val["val_images"] == 3 and 10 < val["bicubic_psnr"] < 50

    # The trained model: 12x12 -> 48x48 on the test split's first image, read upright.
    net = models.load(run / "model.safetensors").eval()
    assert net.arch == "msrgan" and net.scale == 4
    hr = torch.from_numpy(test_images[0] / np.float32(255))
    hr48 = (imresize(hr, size=(48, 48)).clamp(0, 1) * 255).round() / 255
    assert torch.allclose(data[0]["hr"], hr48, atol=1e-6)
    lr = data[0]["lr"]
    assert lr.shape == (3, 12, 12)
    sr = gansr.Upscaler(model=net).upscale(lr)
    assert sr.shape == (3, 48, 48) and torch.isfinite(sr).all()


def test_vgg_term_is_used_when_weights_are_on_disk(
    capsys: pytest.CaptureFixture[str],
    stl10: tuple[Path, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A torchvision-format VGG19 file in the gansr cache, holding the layers up to relu2_2 (a
    # random stand-in for the 548 MB ImageNet file, which cannot be downloaded here).
    cache = tmp_path / "cache"
    (cache / "weights").mkdir(parents=True)
    vgg = VGG19Features(["relu2_2"], generator=torch.Generator().manual_seed(0))
    convs = [(i, m) for i, m in enumerate(vgg.features) if isinstance(m, torch.nn.Conv2d)]
    state = {f"features.{i}.{k}": getattr(m, k) for i, m in convs for k in ("weight", "bias")}
    torch.save(state, cache / "weights" / VGG19_FILENAME)
    monkeypatch.setenv("GANSR_CACHE", str(cache))
    root, _ = stl10
    _, records = _train(capsys, root, tmp_path / "runs", "train.gan.losses.2.layers=relu2_2")
    assert not [r for r in records if r["event"] == "note"]
    train = [r for r in records if r["event"] == "train"]
    assert all(np.isfinite(r["g_vgg"]) and r["g_vgg"] > 0 for r in train)
    assert {"g_ssim", "g_wgan_gp"} <= set(train[0])
