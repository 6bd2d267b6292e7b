"""Slow clients against a real uvicorn server: a dribbled upload never holds the server.

Raw sockets send the request headers and the start of a multipart file part, then one byte at a
time. Such a client must hold neither a slot nor more than the bytes it has sent, while normal
uploads keep succeeding; and its body must arrive within the total and idle deadlines, or it gets
408 and its connection is closed.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

httpx = pytest.importorskip("httpx", reason="httpx is needed to drive the server (pip install 'gansr[dev]')")
uvicorn = pytest.importorskip(
    "uvicorn", reason="the serve extra is not installed (pip install 'gansr[serve]')"
)

import gansr  # noqa: E402
from gansr.serve import ServeConfig, create_app  # noqa: E402

SET5 = Path(gansr.__file__).resolve().parent / "samples" / "Set5"  # shipped with the package
BOUNDARY = "gansr-slow-client"
DRIBBLERS = 8
HOLD_S = 35
DRIBBLE_EVERY_S = 3.0


@pytest.fixture(scope="module")
def small_png() -> bytes:
    with Image.open(SET5 / "butterfly.png") as img:
        crop = img.convert("RGB").crop((96, 80, 160, 128))  # 64x48
    buffer = io.BytesIO()
    crop.save(buffer, format="PNG")
    return buffer.getvalue()


def serve(config: ServeConfig):
    """Run the app with uvicorn on 127.0.0.1 in a thread; returns ``(base_url, stop)``."""
    app = create_app(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"

    return f"http://127.0.0.1:{port}", stop


def open_dribbler(base_url: str) -> socket.socket:
    """A connection that has sent the headers and the start of the image part, and then stalls."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    part = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="image"; filename="slow.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode() + b"\x89PNG\r\n\x1a\n"
    head = (
        "POST /api/upscale HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        "Content-Length: 200000\r\n\r\n"
    ).encode()
    sock.sendall(head + part)
    return sock


def response_status(sock: socket.socket, timeout: float) -> int | None:
    """The status code of the response waiting on ``sock``, or None if none came within ``timeout``."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(4096)
    except TimeoutError:
        return None
    except OSError:
        return -1  # reset
    if not data:
        return -1  # closed without a response
    return int(data.split(b" ", 2)[1])


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed the connection (after any response bytes)."""
    sock.settimeout(5)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def upload(base_url: str, data: bytes) -> httpx.Response:
    files = {"image": ("crop.png", data, "image/png")}
    return httpx.post(f"{base_url}/api/upscale", files=files, data={"model": "bicubic"}, timeout=30)


def test_a_stalled_upload_gets_408_after_the_idle_deadline(small_png):
    base_url, stop = serve(ServeConfig(device="cpu", body_idle_s=1, body_timeout_s=30))
    try:
        sock = open_dribbler(base_url)
        started = time.monotonic()
        status = response_status(sock, timeout=10)
        elapsed = time.monotonic() - started
        assert status == 408 and 0.8 < elapsed < 5, (status, elapsed)
        assert closed_by_server(sock)  # the rest of the body is never read
        sock.close()
        health = httpx.get(f"{base_url}/api/health").json()
        assert health["active"] == 0 and health["memory_used_bytes"] == 0
    finally:
        stop()


def test_a_dribbled_upload_gets_408_after_the_total_deadline(small_png):
    base_url, stop = serve(ServeConfig(device="cpu", body_idle_s=1, body_timeout_s=2.5))
    try:
        sock = open_dribbler(base_url)
        started = time.monotonic()
        status = None
        while status is None and time.monotonic() - started < 10:
            try:
                sock.sendall(b"\x00")  # one byte every 0.3 s: never idle, but never done
            except OSError:
                break
            status = response_status(sock, timeout=0.3)
        elapsed = time.monotonic() - started
        assert status == 408 and 2.0 < elapsed < 6, (status, elapsed)
        sock.close()
        assert upload(base_url, small_png).status_code == 200
        health = httpx.get(f"{base_url}/api/health").json()
        assert health["active"] == 0 and health["memory_used_bytes"] == 0
    finally:
        stop()


@pytest.mark.slow
def test_slow_clients_do_not_block_normal_uploads(small_png):
    """8 connections dribble a byte every 3 s for 35 s (within the default deadlines, so the server
    keeps them open); normal uploads made meanwhile all succeed, promptly."""
    config = ServeConfig(workers=1, queue=4, device="cpu", default_model="bicubic")
    assert config.body_idle_s > DRIBBLE_EVERY_S and config.body_timeout_s > HOLD_S
    base_url, stop = serve(config)
    dribblers = [open_dribbler(base_url) for _ in range(DRIBBLERS)]
    stop_dribbling = threading.Event()
    broken: list[str] = []

    def dribble() -> None:
        while not stop_dribbling.wait(DRIBBLE_EVERY_S):
            for sock in dribblers:
                try:
                    sock.sendall(b"\x00")
                except OSError as exc:
                    broken.append(repr(exc))

    pump = threading.Thread(target=dribble, daemon=True)
    pump.start()
    try:
        started = time.monotonic()
        latencies: list[float] = []
        codes: list[int] = []
        while time.monotonic() - started < HOLD_S:
            t0 = time.monotonic()
            r = upload(base_url, small_png)
            latencies.append(time.monotonic() - t0)
            codes.append(r.status_code)
            assert r.status_code == 200, r.text
            health = httpx.get(f"{base_url}/api/health").json()
            assert health["active"] >= DRIBBLERS  # the dribblers are still in progress ...
            assert health["memory_used_bytes"] < 100_000  # ... holding only the bytes they sent
            time.sleep(2)
        print(
            f"\n{DRIBBLERS} slow clients held {time.monotonic() - started:.0f} s; "
            f"{len(codes)} normal uploads, all 200, slowest {max(latencies):.2f} s"
        )
        assert not broken, broken  # the server kept every slow connection open all along
        assert len(codes) >= 5 and max(latencies) < 10
    finally:
        stop_dribbling.set()
        pump.join()
        for sock in dribblers:
            sock.close()
        deadline = time.monotonic() + 10
        while httpx.get(f"{base_url}/api/health").json()["active"] and time.monotonic() < deadline:
            time.sleep(0.1)
        health = httpx.get(f"{base_url}/api/health").json()
        stop()
    assert health["active"] == 0 and health["memory_used_bytes"] == 0  # disconnects gave all back
