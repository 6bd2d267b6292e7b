"""gansr.data datasets, transforms, loaders and benchmark names, on real data and on small files
written in the real formats (IDX per its spec, STL-10 binary per its docs, CelebA's layout)."""

from __future__ import annotations

import gzip
import hashlib
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gansr.data import (
    CelebADataset,
    HRFolderDataset,
    MNISTDataset,
    PairedFolderDataset,
    STL10Dataset,
    augment,
    benchmark_info,
    make_loader,
    pair_key,
    paired_random_crop,
    random_crop,
    read_idx,
    read_image,
    resolve_benchmark,
    set_epoch,
    write_image,
)
from gansr.errors import ConfigError, DataError

# --------------------------------------------------------------------------- transforms


def test_paired_random_crop_is_aligned_and_seeded() -> None:
    hr = torch.rand(3, 40, 36)
    lr = hr[..., ::4, ::4]  # nearest "downscale": LR pixel (i, j) is HR pixel (4i, 4j)
    positions = set()
    for seed in range(30):
        lr_p, hr_p = paired_random_crop(lr, hr, 16, 4, torch.Generator().manual_seed(seed))
        assert lr_p.shape == (3, 4, 4) and hr_p.shape == (3, 16, 16)
        assert torch.equal(lr_p, hr_p[..., ::4, ::4])
        positions.add(tuple(hr_p[0, 0, :2].tolist()))
        again = paired_random_crop(lr, hr, 16, 4, torch.Generator().manual_seed(seed))
        assert torch.equal(again[1], hr_p)
    assert len(positions) > 10  # the position really varies
    with pytest.raises(ConfigError, match="multiple of the scale"):
        paired_random_crop(lr, hr, 18, 4)
    with pytest.raises(DataError, match="smaller than"):
        paired_random_crop(lr, hr, 48, 4)
    with pytest.raises(DataError, match="smaller than"):
        random_crop(hr, 41)


def test_augment_same_transform_all_eight_and_no_global_rng() -> None:
    base = torch.arange(12.0).reshape(1, 3, 4)
    square = torch.arange(16.0).reshape(1, 4, 4)
    state = torch.get_rng_state()
    seen: dict[tuple[float, ...], int] = {}
    for seed in range(400):
        a, b = augment(square, square * 2, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(b, a * 2)  # one transform for both
        key = tuple(a.flatten().tolist())
        seen[key] = seen.get(key, 0) + 1
    assert len(seen) == 8 and min(seen.values()) > 25  # the 8 symmetries, each ~50 times
    assert torch.equal(torch.get_rng_state(), state)
    (same,) = augment(base, hflip=False, vflip=False, rot90=False, generator=torch.Generator().manual_seed(1))
    assert torch.equal(same, base)
    (t,) = augment(base, hflip=False, vflip=False, generator=torch.Generator().manual_seed(3))
    assert t.shape in ((1, 3, 4), (1, 4, 3))


# --------------------------------------------------------------------------- HR folder


def _bicubic_lr(hr: torch.Tensor, scale: int) -> torch.Tensor:
    from gansr.degrade import imresize

    return (imresize(hr, 1 / scale) * 255).round().clamp(0, 255) / 255


def test_hr_folder_eval_mode_on_real_set5(set5: Path) -> None:
    ds = HRFolderDataset(set5, 4)
    assert len(ds) == 5
    item = ds[4]  # woman.png, 228x344: cropped to 228x344 (already a multiple of 4)
    assert item["name"] == "woman"
    hr = read_image(set5 / "woman.png").pixels
    assert torch.equal(item["hr"], hr[..., :344, :228])
    assert item["lr"].shape == (3, 86, 57)
    assert torch.allclose(item["lr"], _bicubic_lr(item["hr"], 4), atol=1e-6)
    assert HRFolderDataset(set5, 3)[4]["hr"].shape == (3, 342, 228)  # 344 -> multiple of 3


def test_hr_folder_training_crops_are_reproducible(set5: Path) -> None:
    ds = HRFolderDataset(set5, 4, patch_size=32, seed=7)
    a = ds[2]
    assert a["hr"].shape == (3, 32, 32) and a["lr"].shape == (3, 8, 8)
    assert torch.allclose(a["lr"], _bicubic_lr(a["hr"], 4), atol=1e-6)
    assert torch.equal(a["hr"], HRFolderDataset(set5, 4, patch_size=32, seed=7)[2]["hr"])  # same seed
    assert not torch.equal(a["hr"], HRFolderDataset(set5, 4, patch_size=32, seed=8)[2]["hr"])
    ds.set_epoch(1)
    assert not torch.equal(a["hr"], ds[2]["hr"])  # fresh crops each epoch
    ds.set_epoch(0)
    assert torch.equal(a["hr"], ds[2]["hr"])  # independent of what was read in between
    fixed = HRFolderDataset(set5, 4, patch_size=32, seed=7, per_epoch=False)
    first = fixed[2]["hr"]
    fixed.set_epoch(5)
    assert torch.equal(first, fixed[2]["hr"])
    cached = HRFolderDataset(set5, 4, patch_size=32, seed=7, cache=True)
    assert torch.equal(cached[2]["hr"], a["hr"]) and torch.equal(cached[2]["lr"], a["lr"])


def test_hr_folder_skips_small_and_broken_images(tmp_path: Path, set5: Path) -> None:
    for name in ("bird.png", "head.png"):
        (tmp_path / name).symlink_to(set5 / name)
    write_image(tmp_path / "tiny.png", torch.rand(3, 20, 30))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg at all")
    with pytest.warns(UserWarning, match=r"skipped 2 image\(s\).*tiny.png is 30x20"):
        ds = HRFolderDataset(tmp_path, 4, patch_size=64)
    assert [p.name for p in ds.files] == ["bird.png", "head.png"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="none of the 4 images is at least 400x400"):
            HRFolderDataset(tmp_path, 4, patch_size=400)
    with pytest.raises(DataError, match="no such folder"):
        HRFolderDataset(tmp_path / "missing", 4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found"):
        HRFolderDataset(tmp_path / "empty", 4)
    with pytest.raises(ConfigError, match="multiple of the scale"):
        HRFolderDataset(set5, 4, patch_size=30)


def test_hr_folder_degradation_specs(set5: Path) -> None:
    preset = HRFolderDataset(set5, 4, patch_size=32, degradation="bicubic_x4")[0]
    default = HRFolderDataset(set5, 4, patch_size=32)[0]
    assert torch.equal(preset["lr"], default["lr"])
    steps = [{"type": "area_downsample", "scale": 2}]
    area = HRFolderDataset(set5, 2, degradation=steps)[1]
    assert torch.allclose(area["lr"], torch.nn.functional.avg_pool2d(area["hr"][None], 2)[0], atol=1e-6)
    with pytest.raises(ConfigError, match="shrinks by x4 but the dataset scale is x2"):
        HRFolderDataset(set5, 2, degradation="bicubic_x4")

    def noisy(hr: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return hr[..., ::4, ::4] + torch.rand(1, generator=generator)

    a = HRFolderDataset(set5, 4, patch_size=32, degradation=noisy, augment=False)
    assert torch.equal(a[0]["lr"], a[0]["lr"])  # the callable gets the item's seeded generator


# --------------------------------------------------------------------------- paired folders


def test_pair_key_suffixes() -> None:
    for lr, hr in [
        ("baby_LRBI_x4", "baby"),
        ("babyx4", "baby"),
        ("0001x4", "0001"),
        ("img_001_SRF_4_LR", "img_001_SRF_4"),
        ("baby", "baby"),
    ]:
        assert pair_key(lr, 4) == pair_key(hr, 4) == hr
    assert pair_key("img_001_SRF_4_HR", 4) == "img_001_SRF_4"
    assert pair_key("x4", 4) == "x4"  # never reduced to nothing
    assert pair_key("photo_x2", 4) == "photo_x2"  # another scale's tag is part of the name


def _box(hr: torch.Tensor, scale: int) -> torch.Tensor:
    return torch.nn.functional.avg_pool2d(hr[None], scale)[0]


def _basicsr_layout(tmp_path: Path, set5: Path, scale: int) -> tuple[Path, Path]:
    """Set5/GTmod12 + Set5/LRbicx{scale} with the common LR name styles; LR is the s x s box
    average of HR (which commutes with flips and rotations), so paired crops can be checked."""
    gt, lr = tmp_path / "Set5" / "GTmod12", tmp_path / "Set5" / f"LRbicx{scale}"
    names = {"baby": "baby_LRBI_x4", "bird": "birdx4", "butterfly": "butterfly", "head": "head_x4"}
    for stem, lr_stem in names.items():
        hr = read_image(set5 / f"{stem}.png").pixels
        hr = hr[..., : hr.shape[-2] // scale * scale, : hr.shape[-1] // scale * scale]
        write_image(gt / f"{stem}.png", hr)
        write_image(lr / f"{lr_stem}.png", _box(hr, scale))
    return lr, gt


def test_paired_folder_matches_and_aligns(tmp_path: Path, set5: Path) -> None:
    lr_root, hr_root = _basicsr_layout(tmp_path, set5, 4)
    ds = PairedFolderDataset(lr_root, hr_root, 4)
    assert len(ds) == 4 and sorted(ds[i]["name"] for i in range(4)) == ["baby", "bird", "butterfly", "head"]
    item = next(ds[i] for i in range(4) if ds[i]["name"] == "bird")
    assert torch.equal(item["hr"], read_image(hr_root / "bird.png").pixels)
    assert torch.equal(item["lr"], read_image(lr_root / "birdx4.png").pixels)
    train = PairedFolderDataset(lr_root, hr_root, 4, patch_size=32, seed=3)
    for i in range(4):
        it = train[i]
        assert it["lr"].shape == (3, 8, 8) and it["hr"].shape == (3, 32, 32)
        # Same place and the same flips: LR is the box average of the HR patch (up to rounding);
        # a crop one LR pixel off would differ by far more.
        assert (it["lr"] - _box(it["hr"], 4)).abs().max() <= 0.51 / 255


def test_paired_folder_errors(tmp_path: Path, set5: Path) -> None:
    lr_root, hr_root = _basicsr_layout(tmp_path, set5, 4)
    write_image(lr_root / "orphan.png", torch.rand(3, 8, 8))
    with pytest.raises(DataError, match=r"orphan.png: no HR image for it"):
        PairedFolderDataset(lr_root, hr_root, 4)
    (lr_root / "orphan.png").unlink()
    write_image(lr_root / "baby_LRBI_x4.png", torch.rand(3, 100, 128))  # wrong size
    with pytest.raises(
        DataError, match=r"GTmod12/baby.png: HR is 512x512 but its LR baby_LRBI_x4.png is 128x100"
    ):
        PairedFolderDataset(lr_root, hr_root, 4)
    write_image(lr_root / "baby.png", torch.rand(3, 128, 128))
    with pytest.raises(DataError, match="same name as"):
        PairedFolderDataset(lr_root, hr_root, 4)


def test_paired_folder_accepts_hr_not_mod_cropped(tmp_path: Path, set5: Path) -> None:
    hr = read_image(set5 / "woman.png").pixels  # 228 x 344: x3 LR is 76 x 114 (HR 342 rows)
    write_image(tmp_path / "hr" / "woman.png", hr)
    write_image(tmp_path / "lr" / "woman.png", hr[..., :342:3, ::3])
    item = PairedFolderDataset(tmp_path / "lr", tmp_path / "hr", 3)[0]
    assert item["hr"].shape == (3, 342, 228) and item["lr"].shape == (3, 114, 76)


# --------------------------------------------------------------------------- MNIST (IDX)


def _write_idx(path: Path, array: np.ndarray, *, compress: bool) -> Path:
    """An IDX file per the format spec: 0, 0, type code, ndim, big-endian dims, big-endian data."""
    code = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D}[array.dtype]
    data = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def test_read_idx_raw_gzip_and_errors(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    for compress in (False, True):
        path = _write_idx(tmp_path / f"x{compress}", images, compress=compress)
        assert np.array_equal(read_idx(path), images)
    ints = np.arange(-3, 9, dtype=np.int32).reshape(3, 4)
    assert np.array_equal(read_idx(_write_idx(tmp_path / "ints", ints, compress=False)), ints)
    floats = np.linspace(-1, 1, 6, dtype=np.float32)
    assert np.array_equal(read_idx(_write_idx(tmp_path / "f", floats, compress=True)), floats)
    raw = (tmp_path / "xFalse").read_bytes()
    cases = {
        "magic": (b"\x01\x02" + raw[2:], "not an IDX file"),
        "short": (raw[:-10], "truncated IDX data"),
        "long": (raw + b"\0", "more data than its header"),
        "gz": (gzip.compress(raw)[:-20], "corrupt or truncated gzip"),
        "empty": (b"", "not an IDX file"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError, match=message):
            read_idx(tmp_path / name)
    with pytest.raises(DataError, match="no such file"):
        read_idx(tmp_path / "missing")


def test_mnist_real_file(shared_data: Path) -> None:
    raw = gzip.decompress((shared_data / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes())
    assert hashlib.md5(raw).hexdigest() == "2646ac647ad5339dbf082846283269ea"
    train = MNISTDataset(shared_data / "mnist")
    test = MNISTDataset(shared_data / "mnist", split="test")
    assert len(train) == 8000 and len(test) == 2000 and len(train.images) == 10000
    images = np.frombuffer(raw[16:], np.uint8).reshape(10000, 28, 28)
    item = test[0]
    assert item["name"] == "t10k-08000" and 0 <= item["label"] <= 9
    assert torch.equal(item["hr"], torch.from_numpy(images[8000] / np.float32(255))[None])
    assert item["lr"].shape == (1, 7, 7) and item["lr"].min() >= 0 and item["lr"].max() <= 1
    # LR = 4x box average + N(0, 10/255) noise (clipped): check the residual's spread.
    residual = []
    for i in range(400):
        it = train[i]
        area = torch.nn.functional.avg_pool2d(it["hr"][None], 4)[0]
        inside = (area > 0.2) & (area < 0.8)  # five sigma from the clipping at 0 and 1
        residual.append((it["lr"] - area)[inside])
    std = torch.cat(residual).std().item() * 255
    assert 9.0 < std < 11.0
    # Test noise is fixed per item; training noise is fresh each epoch.
    test.set_epoch(3)
    assert torch.equal(test[0]["lr"], item["lr"])
    first = train[0]["lr"]
    train.set_epoch(1)
    assert not torch.equal(train[0]["lr"], first)
    assert len(MNISTDataset(shared_data / "mnist", split=slice(10, 20))) == 10
    with pytest.raises(ConfigError):
        MNISTDataset(shared_data / "mnist", split="validation")


def test_mnist_from_written_idx_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (2100, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 2100).astype(np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte", images, compress=False)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels, compress=True)
    ds = MNISTDataset(tmp_path, file="train")
    assert len(ds) == 100 and ds[5]["label"] == labels[5]
    assert torch.equal(ds[5]["hr"][0], torch.from_numpy(images[5] / np.float32(255)))
    direct = MNISTDataset(tmp_path / "train-images-idx3-ubyte", split="test")
    assert len(direct) == 2000 and direct[0]["label"] == labels[100]
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels[:50], compress=True)
    with pytest.raises(DataError, match="labels for 2100 images"):
        MNISTDataset(tmp_path, file="train")
    with pytest.raises(DataError, match="no t10k-images"):
        MNISTDataset(tmp_path)


# --------------------------------------------------------------------------- STL-10


def _stl_pattern(n: int) -> np.ndarray:
    """Asymmetric images: channel 0 grows left->right, channel 1 top->bottom, channel 2 marks the
    image index and a bright top-left corner."""
    y, x = np.mgrid[0:96, 0:96]
    out = np.zeros((n, 3, 96, 96), np.uint8)
    for i in range(n):
        out[i, 0] = x * 2
        out[i, 1] = y * 2
        out[i, 2] = 20 * i
        out[i, 2, :8, :16] = 255  # a wide block in the top-left corner
    return out


def test_stl10_binary_layout_reads_upright(tmp_path: Path) -> None:
    images = _stl_pattern(3)
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    # The STL-10 docs: each channel stored column-major (MATLAB order), channels in sequence.
    (folder / "train_X.bin").write_bytes(np.ascontiguousarray(images.transpose(0, 1, 3, 2)).tobytes())
    (folder / "train_y.bin").write_bytes(bytes([1, 10, 4]))
    ds = STL10Dataset(tmp_path, "train")
    assert len(ds) == 3
    raw = ds.raw(1).numpy()
    assert np.array_equal(raw, images[1])
    assert raw[0, 0, 95] > raw[0, 0, 0] and raw[1, 95, 0] > raw[1, 0, 0]  # x to the right, y down
    assert raw[2, 0, 15] == 255 and raw[2, 15, 0] != 255  # the block is wide, not tall
    item = ds[1]
    assert item["hr"].shape == (3, 48, 48) and item["lr"].shape == (3, 12, 12)
    assert [ds[i]["label"] for i in range(3)] == [0, 9, 3]
    from gansr.degrade import imresize

    expected = (imresize(torch.from_numpy(images[1] / np.float32(255)), size=(48, 48)) * 255).round() / 255
    assert torch.allclose(item["hr"], expected.clamp(0, 1), atol=1e-6)
    full = STL10Dataset(tmp_path, "train", hr_size=96)[0]
    assert torch.equal(full["hr"], torch.from_numpy(images[0] / np.float32(255)))
    (folder / "test_X.bin").write_bytes(b"\0" * 1000)
    with pytest.raises(DataError, match="not a whole number of 3x96x96 images"):
        STL10Dataset(tmp_path, "test")
    with pytest.raises(ConfigError, match="hr_size"):
        STL10Dataset(tmp_path, "train", hr_size=50)


# --------------------------------------------------------------------------- CelebA


def test_celeba_layout_and_partition(tmp_path: Path, set14: Path) -> None:
    images = tmp_path / "img_align_celeba"
    images.mkdir()
    sources = sorted(set14.glob("*.png"))[:6]
    lines = []
    for i, src in enumerate(sources):
        with Image.open(src) as img:
            img.convert("RGB").resize((178, 218)).save(images / f"{i + 1:06d}.jpg", quality=95)
        lines.append(f"{i + 1:06d}.jpg {[0, 0, 0, 1, 2, 2][i]}")
    (tmp_path / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    train = CelebADataset(tmp_path, "train")
    assert (
        len(train) == 3
        and len(CelebADataset(tmp_path, "valid")) == 1
        and len(CelebADataset(tmp_path, "test")) == 2
    )
    item = train[0]
    assert item["name"] == "000001" and item["hr"].shape == (3, 216, 176) and item["lr"].shape == (3, 54, 44)
    cropped = CelebADataset(tmp_path, "train", crop=178, hr_size=64)[1]
    assert cropped["hr"].shape == (3, 64, 64) and cropped["lr"].shape == (3, 16, 16)
    centre = CelebADataset(tmp_path, "train", crop=(100, 60), scale=2)[2]
    whole = read_image(images / "000003.jpg").pixels
    assert torch.equal(centre["hr"], whole[..., 59:159, 59:119])
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg three\n")
    with pytest.raises(DataError, match=r"list_eval_partition.txt:2: expected"):
        CelebADataset(tmp_path, "train")
    (tmp_path / "list_eval_partition.txt").unlink()
    (tmp_path / "list_eval_partition.csv").write_text("image_id,partition\n000001.jpg,0\n000004.jpg,1\n")
    assert len(CelebADataset(tmp_path, "valid")) == 1
    with pytest.raises(ConfigError, match="split"):
        CelebADataset(tmp_path, "val")


# --------------------------------------------------------------------------- benchmarks


def test_benchmark_names_and_layouts(tmp_path: Path, set5: Path, shared_data: Path) -> None:
    assert resolve_benchmark(set5) == (set5, "Set5")
    assert resolve_benchmark(shared_data / "bsds500" / "test")[1] == "bsds500/test"
    img = torch.rand(3, 8, 8)
    layouts = {
        "Set5/GTmod12/a.png": ("Set5", "Set5/GTmod12"),
        "set14/HR/a.png": ("Set14", "set14/HR"),
        "benchmark/B100/HR/a.png": ("BSD100", "benchmark/B100/HR"),
        "Urban100/a.png": ("Urban100", "Urban100"),
        "DIV2K/DIV2K_valid_HR/a.png": ("DIV2K-valid", "DIV2K/DIV2K_valid_HR"),
        "hf/Set5/Set5_HR/a.png": ("Set5", "hf/Set5/Set5_HR"),
        "Manga109/a.png": ("Manga109", "Manga109"),
    }
    for rel, (name, hr_dir) in layouts.items():
        write_image(tmp_path / rel, img)
        folder = tmp_path / rel.split("/")[0] if not rel.startswith(("benchmark", "DIV2K", "hf")) else None
        folder = folder or tmp_path / "/".join(rel.split("/")[:2])
        info = benchmark_info(folder)
        assert info is not None and info.name == name and info.hr_dir == tmp_path / hr_dir, rel
        assert resolve_benchmark(tmp_path / hr_dir) == (tmp_path / hr_dir, name)  # the HR folder itself
    assert benchmark_info(tmp_path / "holiday_photos") is None
    with pytest.raises(DataError, match="no such folder"):
        resolve_benchmark(tmp_path / "missing")


# --------------------------------------------------------------------------- loaders


@pytest.fixture(scope="module")
def bsds_folder(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six real BSDS500 training JPEGs (linked, not copied)."""
    folder = tmp_path_factory.mktemp("bsds")
    for src in sorted((shared_data / "bsds500" / "train").glob("*.jpg"))[:6]:
        (folder / src.name).symlink_to(src)
    return folder


def _epoch(loader: torch.utils.data.DataLoader, epoch: int) -> list[dict]:
    set_epoch(loader, epoch)
    return list(loader)


def test_loader_workers_shapes_and_reproducibility(bsds_folder: Path) -> None:
    ds = HRFolderDataset(bsds_folder, 4, patch_size=24, seed=11)
    loader = make_loader(ds, 3, shuffle=True, num_workers=2, seed=5, persistent_workers=True)
    first, second = _epoch(loader, 0), _epoch(loader, 1)
    assert len(first) == 2
    assert first[0]["hr"].shape == (3, 3, 24, 24) and first[0]["lr"].shape == (3, 3, 6, 6)
    assert len(first[0]["name"]) == 3
    # Workers never repeat a crop: all six patches differ.
    patches = torch.cat([b["hr"] for b in first]).flatten(1)
    assert len({tuple(p[:50].tolist()) for p in patches}) == 6
    # Same seed, no workers, fresh objects: identical batches in both epochs (persistent workers
    # saw the epoch change through the shared epoch counter).
    again = make_loader(HRFolderDataset(bsds_folder, 4, patch_size=24, seed=11), 3, seed=5)
    for ours, theirs in zip(first + second, _epoch(again, 0) + _epoch(again, 1), strict=True):
        assert ours["name"] == theirs["name"]
        assert torch.equal(ours["hr"], theirs["hr"]) and torch.equal(ours["lr"], theirs["lr"])
    assert not torch.equal(first[0]["hr"], second[0]["hr"])


def test_loader_distributed_shards_and_errors(bsds_folder: Path) -> None:
    ds = HRFolderDataset(bsds_folder, 4, patch_size=24)
    names = []
    for rank in (0, 1):
        loader = make_loader(ds, 2, distributed=True, num_replicas=2, rank=rank, seed=1)
        names.append([n for batch in _epoch(loader, 0) for n in batch["name"]])
    assert len(names[0]) == len(names[1]) == 3 and not set(names[0]) & set(names[1])
    with pytest.raises(ConfigError, match="process group"):
        make_loader(ds, 2, distributed=True)
    with pytest.raises(ConfigError, match="batch_size"):
        make_loader(ds, 0)
    with pytest.raises(ConfigError, match="persistent_workers"):
        make_loader(ds, 2, persistent_workers=True)
