"""Load tests of ``gansr serve`` against a real uvicorn server in a subprocess.

* 50 concurrent uploads of a small PNG (a 64x48 crop of a shipped Set5 image, upscaled with
  ``bicubic``) to ``gansr serve`` with its default settings (one worker, queue 4): admission by
  cost lets every one of them queue, so all must return 200 with a p95 latency under 10 s, twice
  in a row, and the server's resident memory (VmRSS from /proc) must come back near where it
  started.
* A burst of large uploads against a small memory budget: each is admitted only while its
  estimated cost fits, so some wait and some are refused (503 + ``Retry-After``), and the
  server's RSS never grows past the budget above its level before the burst.

Both shut the server down with SIGINT and expect a clean exit. RSS before, at peak and after is
printed (run with ``-s`` to see it).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

httpx = pytest.importorskip("httpx", reason="httpx is needed to drive the server (pip install 'gansr[dev]')")
pytest.importorskip("uvicorn", reason="the serve extra is not installed (pip install 'gansr[serve]')")

if not Path("/proc/self/status").exists():
    pytest.skip("reading the server's memory needs Linux /proc", allow_module_level=True)

import gansr  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SET5 = Path(gansr.__file__).resolve().parent / "samples" / "Set5"  # shipped with the package
CONCURRENT = 50
P95_LIMIT_S = 10.0
# Allowed growth of the server's RSS from the warmed-up baseline to after a burst of small uploads:
# allocator caching (glibc keeps freed arena memory per thread), which must stay small.
RSS_TOLERANCE_MB = 48
START_TIMEOUT_S = 120
BURST_TIMEOUT_S = 120
ROUNDS = 2

# The large burst: 12 uploads of 430x430 noise, each ~150 MB of estimated work (bicubic x4 to
# 1720x1720, JPEG), against a 400 MB budget: two fit at a time, two more may wait.
BUDGET_MB = 400
LARGE_SIDE = 430
LARGE_COUNT = 12

# ``gansr serve`` with settings the command line does not offer (the memory budget), started
# the way the command starts it: torch's threads shared by the workers, the socket bound first.
LAUNCHER = """
import json, os, socket, sys
import torch, uvicorn
from gansr.serve import ServeConfig, create_app
config = ServeConfig(**json.loads(sys.argv[1]))
torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // config.workers))
app = create_app(config)
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(128)
print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}/", flush=True)
try:
    uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=10)).run(sockets=[sock])
except KeyboardInterrupt:
    pass
"""


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


class Server:
    """A ``gansr serve`` subprocess: its process, URL and output lines."""

    def __init__(self, cmd: list[str]) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        found: list[str] = []

        def pump() -> None:  # keep reading so the pipe never fills and blocks the server
            for line in self.proc.stdout:
                self.lines.append(line)
                match = re.search(r"listening on (http://127\.0\.0\.1:\d+)/", line)
                if match:
                    found.append(match.group(1))

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not found:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail("gansr serve did not start:\n" + self.output)
            time.sleep(0.05)
        self.url = found[0]
        while True:  # listening is printed just before uvicorn starts its loop
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail("gansr serve never answered /api/health:\n" + self.output)
            time.sleep(0.1)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def rss(self) -> float:
        return rss_mb(self.proc.pid)

    def health(self) -> dict:
        return httpx.get(f"{self.url}/api/health", timeout=10).json()

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture()
def start_server() -> Iterator:
    """Starts servers on demand and always stops them."""
    started: list[Server] = []

    def start(cmd: list[str]) -> Server:
        server = Server(cmd)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


class PeakRss:
    """Samples a process's RSS every 50 ms in a thread; ``peak`` is the largest seen."""

    def __init__(self, pid: int, extra: callable = lambda: None) -> None:
        self.pid, self.peak, self._extra = pid, rss_mb(pid), extra
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.wait(0.05):
            self.peak = max(self.peak, rss_mb(self.pid))
            self._extra()

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()


def settled_rss(server: Server, baseline: float) -> float:
    """The server's RSS once it is back under the tolerance, or after 5 s of waiting for that."""
    time.sleep(0.5)  # let the last responses' buffers be freed
    deadline = time.monotonic() + 5
    rss = server.rss()
    while rss > baseline + RSS_TOLERANCE_MB and time.monotonic() < deadline:
        time.sleep(0.25)
        rss = server.rss()
    return round(rss, 1)


def png_bytes(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


async def burst(url: str, data: bytes, count: int, fields: dict[str, str]) -> list[tuple[int, float, object]]:
    """``count`` concurrent uploads of ``data``: (status, seconds, response) each."""
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=BURST_TIMEOUT_S, limits=limits) as client:

        async def one(i: int) -> tuple[int, float, object]:
            started = time.monotonic()
            files = {"image": (f"load{i}.png", data, "image/png")}
            r = await client.post("/api/upscale", files=files, data=fields)
            return r.status_code, time.monotonic() - started, r

        return await asyncio.gather(*(one(i) for i in range(count)))


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def test_50_small_uploads_all_succeed(start_server):
    """``gansr serve`` as shipped (1 worker, queue 4): 50 concurrent small uploads all get 200
    (they cost little, so they queue instead of being refused), with p95 latency under 10 s."""
    cmd = [sys.executable, "-m", "gansr", "serve", "--port", "0", "--device", "cpu", "--log-level", "warning"]
    server = start_server(cmd)
    with Image.open(SET5 / "butterfly.png") as img:
        data = png_bytes(img.convert("RGB").crop((96, 80, 160, 128)))  # 64x48 -> 256x192
    fields = {"model": "bicubic"}

    for _ in range(3):  # warm up: model loaded, the worker thread used
        r = httpx.post(f"{server.url}/api/upscale", files={"image": ("w.png", data)}, data=fields, timeout=60)
        assert r.status_code == 200, r.text
    time.sleep(0.5)
    baseline = server.rss()
    after: list[float] = []
    with PeakRss(server.proc.pid) as peak:
        for round_ in range(ROUNDS):
            started = time.monotonic()
            results = asyncio.run(
                asyncio.wait_for(burst(server.url, data, CONCURRENT, fields), BURST_TIMEOUT_S)
            )
            elapsed = time.monotonic() - started
            codes = [code for code, _, _ in results]
            assert codes == [200] * CONCURRENT, [(c, r.text) for c, _, r in results if c != 200][:3]
            for _, _, r in results:
                with Image.open(io.BytesIO(r.content)) as out:
                    assert out.format == "PNG" and out.size == (256, 192)
            latency = p95([seconds for _, seconds, _ in results])
            assert server.proc.poll() is None, server.output
            health = server.health()
            assert health["status"] == "ok" and health["active"] == 0 and health["memory_used_bytes"] == 0
            after.append(settled_rss(server, baseline))
            print(
                f"\nround {round_ + 1}: {CONCURRENT} uploads in {elapsed:.1f} s, all 200, p95 latency "
                f"{latency:.2f} s; server RSS after {after[-1]:.0f} MB"
            )
            assert latency < P95_LIMIT_S
    print(f"server RSS: before {baseline:.0f} MB, peak {peak.peak:.0f} MB, after each round {after}")
    assert max(after) <= baseline + RSS_TOLERANCE_MB
    assert after[-1] <= after[0] + RSS_TOLERANCE_MB / 4  # a second burst does not add up: no leak

    assert server.stop() == 0, server.output  # graceful shutdown, exit code 0
    assert "Traceback" not in server.output, server.output


@pytest.mark.slow
def test_a_burst_of_large_uploads_stays_within_the_memory_budget(start_server):
    """Large uploads are admitted only while their estimated cost fits the budget: the others wait
    or get 503 + Retry-After, and the server's RSS never grows past the budget."""
    config = {
        "workers": 2,
        "queue": 2,
        "memory_budget_mb": BUDGET_MB,
        "max_wait_s": 20,
        "device": "cpu",
        "default_model": "bicubic",
    }
    server = start_server([sys.executable, "-c", LAUNCHER, json.dumps(config)])
    noise = np.random.default_rng(0).integers(0, 256, (LARGE_SIDE, LARGE_SIDE, 3), dtype=np.uint8)
    data = png_bytes(Image.fromarray(noise))
    fields = {"format": "jpeg"}

    for _ in range(2):  # warm up both workers on the large size
        r = httpx.post(
            f"{server.url}/api/upscale", files={"image": ("w.png", data)}, data=fields, timeout=120
        )
        assert r.status_code == 200, r.text
    time.sleep(1)
    baseline = server.rss()
    used: list[int] = []

    def sample_budget() -> None:
        try:
            used.append(server.health()["memory_used_bytes"])
        except httpx.HTTPError:
            pass

    started = time.monotonic()
    with PeakRss(server.proc.pid, sample_budget) as peak:
        results = asyncio.run(asyncio.wait_for(burst(server.url, data, LARGE_COUNT, fields), BURST_TIMEOUT_S))
    elapsed = time.monotonic() - started
    codes = [code for code, _, _ in results]
    after = settled_rss(server, baseline)
    print(
        f"\n{LARGE_COUNT} large uploads in {elapsed:.1f} s: {codes.count(200)} x 200, "
        f"{codes.count(503)} x 503; "
        f"budget {BUDGET_MB} MB, most reserved {max(used, default=0) / 1e6:.0f} MB; server RSS: before "
        f"{baseline:.0f} MB, peak {peak.peak:.0f} MB (+{peak.peak - baseline:.0f}), after {after:.0f} MB"
    )
    assert set(codes) <= {200, 503}, [r.text for c, _, r in results if c not in (200, 503)]
    assert codes.count(200) >= 2 and codes.count(503) >= 1, codes  # some ran, the excess was refused
    for code, _, r in results:
        if code == 503:
            assert int(r.headers["retry-after"]) >= 1 and "busy" in r.json()["detail"]
        else:
            with Image.open(io.BytesIO(r.content)) as out:
                assert out.size == (4 * LARGE_SIDE, 4 * LARGE_SIDE)
    assert max(used, default=0) <= BUDGET_MB * 1_000_000
    assert peak.peak - baseline <= BUDGET_MB * 1e6 / 2**20  # RSS is in MiB
    health = server.health()
    assert health["active"] == 0 and health["memory_used_bytes"] == 0
    assert server.stop() == 0, server.output
    assert "Traceback" not in server.output, server.output
