"""``data.root`` as a list of folders (DIV2K + Flickr2K, "DIV2F") with per-folder repeat weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gansr.cli import main
from gansr.data import read_image, write_image
from gansr.errors import ConfigError
from gansr.train.build import build_parts
from gansr.train.config import load_config
from gansr.train.data import ConcatSource, FolderSource, build_train_source
from gansr.train.logging import read_jsonl


def _folder(root: Path, count: int, seed: int) -> Path:
    gen = torch.Generator().manual_seed(seed)
    for i in range(count):
        write_image(root / f"{i:03d}.png", torch.rand(3, 40, 48, generator=gen))
    return root


@pytest.fixture
def two_roots(tmp_path: Path) -> tuple[Path, Path]:
    return _folder(tmp_path / "DIV2K_train_HR", 3, 0), _folder(tmp_path / "Flickr2K_HR", 2, 1)


def _cfg(*overrides: str):
    return load_config(
        "srresnet_x4", ["data.patch_size=32", "data.batch_size=2", "data.cache=false", *overrides]
    )


def test_a_list_of_roots_is_one_weighted_source(two_roots: tuple[Path, Path]) -> None:
    div2k, flickr = two_roots
    source = build_train_source(_cfg(f"data.root=[{div2k}, {flickr}]"))
    assert isinstance(source, ConcatSource) and len(source) == 5
    weighted = build_train_source(_cfg(f"data.root=[{div2k}, {flickr}]", "data.root_weights=[2, 1]"))
    assert len(weighted) == 2 * 3 + 2
    expected = [div2k / f"{i:03d}.png" for i in (0, 1, 2, 0, 1, 2)] + [flickr / "000.png", flickr / "001.png"]
    for index, path in enumerate(expected):
        lr, hr = weighted.get(index)
        assert lr is None and torch.equal(hr, read_image(path, channels="rgb").pixels), index
    with pytest.raises(IndexError):
        weighted.get(len(weighted))
    # One folder stays the plain source; max_images counts across the folders, in order.
    assert isinstance(build_train_source(_cfg(f"data.root={div2k}")), FolderSource)
    capped = build_train_source(_cfg(f"data.root=[{div2k}, {flickr}]", "data.max_images=4"))
    assert len(capped) == 4 and torch.equal(capped.get(3)[1], read_image(flickr / "000.png").pixels)


def test_root_list_errors_name_the_key(two_roots: tuple[Path, Path], tmp_path: Path) -> None:
    div2k, flickr = two_roots
    both = f"data.root=[{div2k}, {flickr}]"
    cases = {
        "data.root=[]": r"^data\.root: an empty list",
        f"data.root=[{div2k}, {div2k}]": r"^data\.root\[1\]: the same folder as data\.root\[0\]",
        f"data.root=[{div2k}, '']": r"^data\.root\[1\]: an empty path",
        f"{both}|data.root_weights=[1]": r"^data\.root_weights: 1 weight\(s\) for 2",
        f"{both}|data.root_weights=[1, 0]": r"^data\.root_weights\[1\]: must be a whole",
        f"{both}|data.root_weights=[1, 1.5]": r"^data\.root_weights\[1\]: expected an integer",
        f"data.root={div2k}|data.root_weights=[2]": r"^data\.root_weights: needs data\.root to be a list",
        f"{both}|data.kind=paired|data.lr_root={div2k}": r"^data\.root: a list of 2 folders needs data\.kind",
        "data.root=[1, 2]": r"^data\.root",
    }
    for overrides, message in cases.items():
        with pytest.raises(ConfigError, match=message):
            _cfg(*overrides.split("|"))
    with pytest.raises(ConfigError, match=r"^data\.root\[1\]: folder not found: .*missing"):
        build_parts(_cfg(f"data.root=[{div2k}, {tmp_path / 'missing'}]"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"^data\.root\[1\]: .*no images found"):
        build_parts(_cfg(f"data.root=[{div2k}, {empty}]"))


def test_training_on_two_roots_through_the_cli(
    capsys: pytest.CaptureFixture[str], two_roots: tuple[Path, Path], tmp_path: Path
) -> None:
    div2k, flickr = two_roots
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main([
            "train", "srresnet_x4", "--out", str(tmp_path / "runs"), "--quiet", "--set",
            f"data.root=[{div2k}, {flickr}]", "data.root_weights=[1, 2]", "data.patch_size=32",
            "data.batch_size=2", "model.g.kwargs={num_feat: 8, num_block: 1, scale: 4, tail: subpixel}",
            "train.pretrain.iters=3", "train.val_every=3", "train.ckpt_every=3", "train.log_every=1",
            f"data.val_folder={flickr}", "train.val_max_images=1", "train.sample_images=1",
            "train.amp=none", "train.channels_last=false", "data.workers=0", "device=cpu",
        ])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert code == 0, capsys.readouterr().err
    (run,) = (tmp_path / "runs").iterdir()
    train = [r for r in read_jsonl(run / "log.jsonl") if r["event"] == "train"]
    assert [r["it"] for r in train] == [1, 2, 3]
    # 3 + 2 x 2 = 7 items, 3 batches of 2 per epoch: iteration 3 ends the first epoch.
    assert train[-1]["epoch"] == pytest.approx(1.0)
    saved = (run / "config.yaml").read_text()
    assert str(div2k) in saved and "root_weights: [1, 2]" in saved
