"""gansr.data.download against a local HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import hashlib
import io
import re
import socket
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gansr.data.download import (
    DATASETS,
    RemoteDataset,
    RemoteFile,
    cache_dir,
    download,
    extract_archive,
    fetch_dataset,
)
from gansr.errors import ConfigError, DownloadError


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.files``; honours ``Range`` unless told not to; can drop a transfer."""

    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        state = self.server.state
        state["requests"].append((self.path, self.headers.get("Range")))
        data = state["files"].get(self.path)
        if data is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and state["ranges"]:
            start = int(match[1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        drop = state["drop_after"]
        self.wfile.write(body if drop is None else body[:drop])
        state["served"] += len(body) if drop is None else min(drop, len(body))

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    state: dict[str, Any]


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, Any]]]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.state = {"files": {}, "requests": [], "ranges": True, "drop_after": None, "served": 0}
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def payload(set5: Path) -> bytes:
    return (set5 / "baby.png").read_bytes()  # a real 0.3 MB file


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens here once the socket is closed


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_full_download_verified(server: tuple[str, dict], payload: bytes, tmp_path: Path) -> None:
    base, state = server
    state["files"]["/baby.png"] = payload
    dest = tmp_path / "sub" / "baby.png"
    out = download(
        f"{base}/baby.png", dest, sha256=_sha256(payload), md5=hashlib.md5(payload).hexdigest(), progress=True
    )
    assert out == dest and dest.read_bytes() == payload
    assert not dest.with_name("baby.png.part").exists()
    # Present and matching: no second request.
    download(f"{base}/baby.png", dest, sha256=_sha256(payload))
    assert len(state["requests"]) == 1
    with pytest.raises(DownloadError, match=r"baby.png: exists but fails its sha256 check"):
        download(f"{base}/baby.png", dest, sha256="0" * 64)


def test_resume_from_part_file(server: tuple[str, dict], payload: bytes, tmp_path: Path) -> None:
    base, state = server
    state["files"]["/f.bin"] = payload
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(payload[:100_000])
    download(f"{base}/f.bin", dest, sha256=_sha256(payload), progress=False)
    assert dest.read_bytes() == payload
    assert state["requests"] == [("/f.bin", "bytes=100000-")]
    assert state["served"] == len(payload) - 100_000  # only the rest travelled


def test_interrupted_transfer_keeps_part_and_resumes(
    server: tuple[str, dict], payload: bytes, tmp_path: Path
) -> None:
    base, state = server
    state["files"]["/f.bin"] = payload
    state["drop_after"] = 50_000
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match="interrupted") as exc:
        download(f"{base}/f.bin", dest, sha256=_sha256(payload), progress=False, timeout=5)
    assert "\n" not in str(exc.value) and str(dest) in str(exc.value)
    assert dest.with_name("f.bin.part").stat().st_size == 50_000 and not dest.exists()
    state["drop_after"] = None
    download(f"{base}/f.bin", dest, sha256=_sha256(payload), progress=False)
    assert dest.read_bytes() == payload
    assert state["requests"][-1] == ("/f.bin", "bytes=50000-")


def test_server_without_range_support_starts_over(
    server: tuple[str, dict], payload: bytes, tmp_path: Path
) -> None:
    base, state = server
    state["files"]["/f.bin"] = payload
    state["ranges"] = False
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(b"x" * 1000)  # not even the right bytes
    download(f"{base}/f.bin", dest, sha256=_sha256(payload), progress=False)
    assert dest.read_bytes() == payload


def test_complete_part_file_answered_with_416(
    server: tuple[str, dict], payload: bytes, tmp_path: Path
) -> None:
    base, state = server
    state["files"]["/f.bin"] = payload
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(payload)
    download(f"{base}/f.bin", dest, sha256=_sha256(payload), progress=False)
    assert dest.read_bytes() == payload and state["served"] == 0


def test_checksum_and_size_mismatch_delete_the_download(
    server: tuple[str, dict], payload: bytes, tmp_path: Path
) -> None:
    base, state = server
    state["files"]["/f.bin"] = payload
    dest = tmp_path / "f.bin"
    for kwargs, what in (
        ({"sha256": "ab" * 32}, "sha256"),
        ({"md5": "cd" * 16}, "md5"),
        ({"size": 5}, "bytes"),
    ):
        with pytest.raises(DownloadError, match=what) as exc:
            download(f"{base}/f.bin", dest, progress=False, **kwargs)
        assert "\n" not in str(exc.value) and "removed it" in str(exc.value)
        assert not dest.exists() and not dest.with_name("f.bin.part").exists()


def test_offline_and_http_errors_are_one_line(server: tuple[str, dict], tmp_path: Path) -> None:
    base, _ = server
    dest = tmp_path / "data" / "x.zip"
    url = f"http://127.0.0.1:{_closed_port()}/x.zip"
    with pytest.raises(DownloadError) as exc:
        download(url, dest, progress=False, timeout=5)
    text = str(exc.value)
    assert "\n" not in text and url in text and f"put it at {dest}" in text
    with pytest.raises(DownloadError, match=r"HTTP 404.*put it at"):
        download(f"{base}/missing.zip", dest, progress=False)
    with pytest.raises(DownloadError, match="unsupported URL scheme"):
        download("ftp://example.invalid/x", dest)


# --------------------------------------------------------------------------- archives


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tar(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return buf.getvalue()


def test_extract_zip_and_tar(tmp_path: Path) -> None:
    members = {"Set5_HR/a.png": b"a", "Set5_HR/sub/b.png": b"b"}
    for name, data in (("x.zip", _zip(members)), ("x.tar.gz", _tar(members))):
        archive = tmp_path / name
        archive.write_bytes(data)
        out = extract_archive(archive, tmp_path / f"out-{name}")
        assert (out / "Set5_HR" / "sub" / "b.png").read_bytes() == b"b"


@pytest.mark.parametrize(
    "data",
    [
        _zip({"ok.txt": b"1", "../evil.txt": b"2"}),
        _tar({"ok.txt": b"1", "../evil.txt": b"2"}),
        _tar({"/tmp/evil.txt": b"2"}),
        _tar({"ok.txt": b"1"}, links={"link": "../../outside"}),
    ],
    ids=["zip-dotdot", "tar-dotdot", "tar-absolute", "tar-symlink-out"],
)
def test_extract_refuses_path_traversal(tmp_path: Path, data: bytes) -> None:
    archive = tmp_path / "bad.archive"
    archive.write_bytes(data)
    dest = tmp_path / "deep" / "out"
    with pytest.raises(DownloadError, match="unsafe|symlink"):
        extract_archive(archive, dest)
    assert not (tmp_path / "deep" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    assert not (dest / "link").exists() and not (dest / "ok.txt").exists()  # checked before writing


def test_extract_rejects_non_archives(tmp_path: Path) -> None:
    page = tmp_path / "x.zip"
    page.write_bytes(b"<html>Service unavailable</html>")
    with pytest.raises(DownloadError, match="not a zip or tar archive"):
        extract_archive(page, tmp_path / "out")


# --------------------------------------------------------------------------- registry


def test_fetch_dataset_with_mirror_extract_and_reuse(
    server: tuple[str, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, state = server
    archive = _zip({"Tiny_HR/a.png": b"image"})
    state["files"]["/tiny.zip"] = archive
    state["files"]["/labels.gz"] = b"labels"
    dead = f"http://127.0.0.1:{_closed_port()}"
    spec = RemoteDataset(
        "Tiny",
        "tiny",
        (
            RemoteFile(f"{base}/tiny.zip", "tiny.zip", sha256=_sha256(archive)),
            RemoteFile(f"{dead}/labels.gz", "labels.gz", md5=hashlib.md5(b"labels").hexdigest(),
                       mirrors=(f"{base}/labels.gz",), extract=False),
        ),
        "http://example.invalid",
    )  # fmt: skip
    monkeypatch.setitem(DATASETS, "tiny", spec)
    out = fetch_dataset("TINY", tmp_path, progress=False)
    assert out == tmp_path / "tiny"
    assert (out / "Tiny_HR" / "a.png").read_bytes() == b"image" and (
        out / "labels.gz"
    ).read_bytes() == b"labels"
    assert not (tmp_path / "downloads" / "tiny.zip").exists()  # archive removed after extraction
    requests = len(state["requests"])
    fetch_dataset("tiny", tmp_path, progress=False)
    assert len(state["requests"]) == requests  # already present: nothing downloaded
    with pytest.raises(ConfigError, match="unknown data set"):
        fetch_dataset("imagenet", tmp_path)


def test_registry_entries_are_well_formed() -> None:
    assert {"div2k", "mnist", "stl10", "set5", "set14", "flickr2k"} <= set(DATASETS)
    for name, spec in DATASETS.items():
        for entry in spec.files:
            for url in (entry.url, *entry.mirrors):
                assert url.startswith(("http://", "https://")) and url.endswith(entry.filename), name
            assert entry.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", entry.sha256), name
            assert entry.md5 is None or re.fullmatch(r"[0-9a-f]{32}", entry.md5), name
    mnist = {f.filename: f for f in DATASETS["mnist"].files}
    assert set(mnist) == {
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    }
    assert all(f.md5 for f in mnist.values())
    assert any("ossci-datasets.s3.amazonaws.com" in f.url for f in mnist.values())
    assert any(m.startswith("http://yann.lecun.com/") for f in mnist.values() for m in f.mirrors)


def test_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GANSR_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("GANSR_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "gansr"
