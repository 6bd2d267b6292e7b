"""The official MNIST training files: registered downloads (tested against a local server), either
file in MNISTDataset and in training, and held-out evaluation on digits never trained on."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import re
import socket
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gansr.cli import main
from gansr.data import DATASETS, MNISTDataset, RemoteDataset, fetch_dataset, read_idx
from gansr.errors import ConfigError, DataError, DownloadError
from gansr.train.build import build_parts
from gansr.train.config import load_config
from gansr.train.logging import read_jsonl

TRAIN_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")


class _Handler(BaseHTTPRequestHandler):
    """Serves ``state["files"]``, honours ``Range``, and can cut the first transfer short."""

    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        state = self.server.state
        state["requests"].append((self.path, self.headers.get("Range")))
        data = state["files"].get(self.path)
        if data is None:
            self.send_error(404, "Not Found")
            return
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(match[1]) if match else 0
        if match:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = state["cut"].pop(self.path, None)  # once per path
        self.wfile.write(body if cut is None else body[:cut])

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    state: dict[str, Any]


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, Any]]]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.state = {"files": {}, "requests": [], "cut": {}}
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _idx(array: np.ndarray) -> bytes:
    """An IDX file per the format spec (uint8 data), gzip-compressed as MNIST ships it."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


@pytest.fixture(scope="module")
def train_files(shared_data: Path) -> dict[str, bytes]:
    """Stand-in training files in the real format: 300 digits (t10k's first ones, mirrored so that
    they are not the held-out digits' pixels either) with labels."""
    images = read_idx(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz")[:300, :, ::-1]
    labels = read_idx(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz")[:300]
    return {TRAIN_FILES[0]: _idx(np.ascontiguousarray(images)), TRAIN_FILES[1]: _idx(labels)}


def _local_registry(monkeypatch: pytest.MonkeyPatch, base: str, files: dict[str, bytes]) -> None:
    """Point the registered mnist_train entry at ``base`` with the stand-ins' checksums."""
    spec = DATASETS["mnist_train"]
    entries = tuple(
        dataclasses.replace(
            f,
            url=f"{base}/{f.filename}",
            mirrors=(),
            sha256=hashlib.sha256(files[f.filename]).hexdigest(),
            md5=hashlib.md5(files[f.filename]).hexdigest(),
            size=len(files[f.filename]),
        )
        for f in spec.files
    )
    monkeypatch.setitem(
        DATASETS, "mnist_train", RemoteDataset(spec.name, spec.folder, entries, spec.homepage)
    )


def test_registry_has_the_official_files_with_checksums(shared_data: Path) -> None:
    published = {  # name: (sha256, bytes)
        "train-images-idx3-ubyte.gz": (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            9912422,
        ),
        "train-labels-idx1-ubyte.gz": (
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            28881,
        ),
        "t10k-images-idx3-ubyte.gz": (
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            1648877,
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            4542,
        ),
    }
    full = {f.filename: f for f in DATASETS["mnist"].files}
    assert {f.filename for f in DATASETS["mnist_train"].files} == set(TRAIN_FILES)
    assert DATASETS["mnist_train"].folder == DATASETS["mnist"].folder  # beside the t10k files
    for name, (sha256, size) in published.items():
        entry = full[name]
        assert (entry.sha256, entry.size, entry.extract) == (sha256, size, False), name
        assert re.fullmatch(r"[0-9a-f]{32}", entry.md5 or "") and len(entry.mirrors) >= 2, name
        assert all(url.startswith("https://") for url in (entry.url, *entry.mirrors[:1])), name
    # The shared t10k files are the same sizes as the registered ones.
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert (shared_data / "mnist" / name).stat().st_size == full[name].size


def test_train_files_download_verify_and_resume(
    server: tuple[str, dict[str, Any]],
    train_files: dict[str, bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, state = server
    state["files"] = {f"/{name}": data for name, data in train_files.items()}
    state["cut"] = {f"/{TRAIN_FILES[0]}": 1000}  # the first transfer of the images drops at 1,000 bytes
    _local_registry(monkeypatch, base, train_files)
    with pytest.raises(DownloadError, match=r"transfer interrupted .*run again to resume"):
        fetch_dataset("mnist_train", tmp_path, progress=False)
    part = tmp_path / "mnist" / f"{TRAIN_FILES[0]}.part"
    assert part.stat().st_size == 1000
    folder = fetch_dataset("mnist_train", tmp_path, progress=False)  # resumes with a Range request
    assert folder == tmp_path / "mnist" and not part.exists()
    assert (f"/{TRAIN_FILES[0]}", "bytes=1000-") in state["requests"]
    for name, data in train_files.items():
        assert (folder / name).read_bytes() == data
    requests = len(state["requests"])
    fetch_dataset("mnist_train", tmp_path, progress=False)
    assert len(state["requests"]) == requests  # present: nothing downloaded again
    ds = MNISTDataset(folder, file="train", split="all")
    assert len(ds) == 300 and ds[0]["name"] == "train-00000" and 0 <= ds[0]["label"] <= 9


def test_offline_error_says_where_to_put_the_file(
    train_files: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the socket is: nothing listens there
    _local_registry(monkeypatch, f"http://127.0.0.1:{port}", train_files)
    dest = tmp_path / "mnist" / TRAIN_FILES[0]
    with pytest.raises(DownloadError) as info:
        fetch_dataset("mnist_train", tmp_path, progress=False)
    message = str(info.value)
    assert "\n" not in message and f"put it at {dest}" in message and "cannot download" in message
    # Without the files, the dataset names the URL, the helper and the folder to put them in.
    (tmp_path / "t10k").mkdir()
    with pytest.raises(DataError) as missing:
        MNISTDataset(tmp_path / "t10k", file="train")
    text = str(missing.value)
    assert "fetch_dataset('mnist'" in text and "train-images-idx3-ubyte.gz" in text
    assert str(tmp_path / "t10k") in text and "\n" not in text
    with pytest.raises(ConfigError, match="MNIST file must be 't10k' or 'train'"):
        MNISTDataset(tmp_path, file="test")


@pytest.fixture
def both_files(shared_data: Path, train_files: dict[str, bytes], tmp_path: Path) -> Path:
    """A folder with the stand-in training files and the real t10k files."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name, data in train_files.items():
        (folder / name).write_bytes(data)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (folder / name).symlink_to(shared_data / "mnist" / name)
    return folder


def test_training_file_choice_and_held_out_digits(both_files: Path, shared_data: Path) -> None:
    on_train = build_parts(load_config("mnist_x4", [f"data.root={both_files}", "data.mnist_file=train"]))
    assert len(on_train.source) == 300  # every digit of the training file
    on_t10k = build_parts(load_config("mnist_x4", [f"data.root={both_files}"]))
    assert len(on_t10k.source) == 8000  # the default: t10k's first 8,000
    for parts in (on_train, on_t10k):
        names = [item.name for item in parts.val_items]
        assert names[0] == "t10k-08000" and all(int(n.split("-")[1]) >= 8000 for n in names)
    train_names = {on_train.source.dataset[i]["name"] for i in range(0, 300, 37)}
    assert all(n.startswith("train-") for n in train_names)
    # Held out = the same last 2,000 t10k digits whatever was trained on.
    assert MNISTDataset(both_files, split="test").indices == range(8000, 10000)
    with pytest.raises(ConfigError, match=r"^data\.root: .*no train-images-idx3-ubyte.*fetch_dataset"):
        build_parts(load_config("mnist_x4", [f"data.root={shared_data / 'mnist'}", "data.mnist_file=train"]))
    with pytest.raises(ConfigError, match=r"^data\.mnist_file: expected one of 't10k', 'train'"):
        load_config("mnist_x4", ["data.mnist_file=test"])


def test_mnist_preset_trains_on_the_training_file(
    capsys: pytest.CaptureFixture[str], both_files: Path, tmp_path: Path
) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main([
            "train", "mnist_x4", "--out", str(tmp_path / "runs"), "--quiet", "--set",
            f"data.root={both_files}", "data.mnist_file=train", "data.batch_size=100",
            "model.g.kwargs.num_feat=8", "model.d.kwargs.num_feat=8", "train.gan.iters=4",
            "train.val_every=4", "train.ckpt_every=4", "train.val_max_images=20", "train.log_every=1",
            "train.sample_images=2", "data.workers=0", "device=cpu",
        ])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert code == 0, capsys.readouterr().err
    (run,) = (tmp_path / "runs").iterdir()
    records = read_jsonl(run / "log.jsonl")
    train = [r for r in records if r["event"] == "train"]
    assert train[-1]["epoch"] == pytest.approx(4 / 3)  # 300 digits = 3 batches of 100 per epoch
    val = [r for r in records if r["event"] == "val"]
    assert val[-1]["val_images"] == 20 and val[-1]["it"] == 4
    assert "mnist_file: train" in (run / "config.yaml").read_text()
