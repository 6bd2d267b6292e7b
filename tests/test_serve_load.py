"""A bounded load test of ``gansr serve``: 50 concurrent uploads against a real uvicorn server.

The server runs as a subprocess (``python -m gansr serve`` on 127.0.0.1, a port the OS picks)
with 2 workers and 2 queue places, so most of the burst must be turned away with 503. Checked:
every response is 200 (a valid PNG of the right size) or 503 (with ``Retry-After``), the server
answers its health check afterwards, its resident memory (VmRSS from /proc) comes back near the
level it had after warming up, and it shuts down cleanly on SIGINT.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

httpx = pytest.importorskip("httpx", reason="httpx is needed to drive the server (pip install 'gansr[dev]')")
pytest.importorskip("uvicorn", reason="the serve extra is not installed (pip install 'gansr[serve]')")

if not Path("/proc/self/status").exists():
    pytest.skip("reading the server's memory needs Linux /proc", allow_module_level=True)

REPO = Path(__file__).resolve().parents[1]
CONCURRENT = 50
WORKERS = 2
QUEUE = 2
# Allowed growth of the server's RSS from the warmed-up baseline to after the burst. Each admitted
# request holds at most its upload and one 640x640 float32 result (~5 MB) while it runs; what stays
# afterwards is allocator caching (glibc keeps freed arena memory per thread) and must stay small.
RSS_TOLERANCE_MB = 48
START_TIMEOUT_S = 60
BURST_TIMEOUT_S = 90
ROUNDS = 2


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


@pytest.fixture()
def server():
    """``gansr serve`` in a subprocess; yields ``(process, base_url)`` and always stops it."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [
        sys.executable,
        "-m",
        "gansr",
        "serve",
        "--port",
        "0",
        "--workers",
        str(WORKERS),
        "--queue",
        str(QUEUE),
    ]
    cmd += ["--device", "cpu", "--log-level", "warning"]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    found: list[str] = []

    def pump() -> None:  # keep reading so the pipe never fills and blocks the server
        for line in proc.stdout:
            lines.append(line)
            match = re.search(r"listening on (http://127\.0\.0\.1:\d+)/", line)
            if match:
                found.append(match.group(1))

    threading.Thread(target=pump, daemon=True).start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not found:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("gansr serve did not start:\n" + "".join(lines))
            time.sleep(0.05)
        url = found[0]
        while True:  # listening is printed just before uvicorn starts its loop
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("gansr serve never answered /api/health:\n" + "".join(lines))
            time.sleep(0.1)
        yield proc, url, lines
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def burst(url: str, data: bytes) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=CONCURRENT, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=BURST_TIMEOUT_S, limits=limits) as client:

        async def one(i: int) -> httpx.Response:
            files = {"image": (f"load{i}.png", data, "image/png")}
            return await client.post("/api/upscale", files=files, data={"model": "bicubic", "format": "png"})

        return await asyncio.gather(*(one(i) for i in range(CONCURRENT)))


def check_responses(responses: list[httpx.Response]) -> None:
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 503}, codes
    ok = [r for r in responses if r.status_code == 200]
    busy = [r for r in responses if r.status_code == 503]
    assert len(ok) >= WORKERS + QUEUE and busy, codes  # the first wave fits; the rest cannot
    for r in ok:
        with Image.open(io.BytesIO(r.content)) as out:
            assert out.format == "PNG" and out.size == (640, 640)
    for r in busy:
        assert int(r.headers["retry-after"]) >= 1 and "busy" in r.json()["detail"]


def settled_rss(pid: int, baseline: float) -> float:
    """The server's RSS once it is back under the tolerance, or after 5 s of waiting for that."""
    time.sleep(0.5)  # let the last responses' buffers be freed
    deadline = time.monotonic() + 5
    rss = rss_mb(pid)
    while rss > baseline + RSS_TOLERANCE_MB and time.monotonic() < deadline:
        time.sleep(0.25)
        rss = rss_mb(pid)
    return round(rss, 1)


def test_burst_of_50_uploads(server, set5):
    proc, url, lines = server
    with Image.open(set5 / "bird.png") as img:
        crop = img.convert("RGB").crop((64, 64, 224, 224))  # 160x160 -> 640x640
    buffer = io.BytesIO()
    crop.save(buffer, format="PNG")
    data = buffer.getvalue()

    for _ in range(2 * WORKERS):  # warm up: model loaded, every worker thread used once
        assert (
            httpx.post(f"{url}/api/upscale", files={"image": ("w.png", data)}, timeout=30).status_code == 200
        )
    time.sleep(0.5)
    baseline = rss_mb(proc.pid)

    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], rss_mb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    after: list[float] = []
    try:
        for round_ in range(ROUNDS):
            started = time.monotonic()
            responses = asyncio.run(asyncio.wait_for(burst(url, data), BURST_TIMEOUT_S))
            elapsed = time.monotonic() - started
            check_responses(responses)
            assert proc.poll() is None, "".join(lines)
            health = httpx.get(f"{url}/api/health", timeout=5).json()
            assert health["status"] == "ok" and health["active"] == 0  # up, and every slot released
            after.append(settled_rss(proc.pid, baseline))
            codes = [r.status_code for r in responses]
            print(
                f"\nburst {round_ + 1}: {CONCURRENT} uploads in {elapsed:.1f} s, {codes.count(200)} x 200, "
                f"{codes.count(503)} x 503; server RSS after {after[-1]:.0f} MB"
            )
    finally:
        done.set()
        sampler.join()
    print(f"server RSS: baseline {baseline:.0f} MB, peak {peak[0]:.0f} MB, after each burst {after}")
    assert max(after) <= baseline + RSS_TOLERANCE_MB
    assert after[-1] <= after[0] + RSS_TOLERANCE_MB / 4  # a second burst does not add up: no leak

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0, "".join(lines)  # graceful shutdown, exit code 0
    assert not any("Traceback" in line for line in lines), "".join(lines)
