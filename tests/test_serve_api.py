"""The web app's JSON/HTTP API (``gansr serve``), in process through FastAPI's TestClient.

Real Set5 crops go through ``POST /api/upscale`` with the weightless ``bicubic`` model; results are
compared with :class:`gansr.upscale.Upscaler` run directly on the same image, so the API is shown
to deliver exactly what the library computes, in every mode (RGB, RGBA, gray, 16-bit).
"""

from __future__ import annotations

import asyncio
import io
import struct
import tempfile
import threading
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'gansr[serve]')")
pytest.importorskip(
    "python_multipart", reason="the serve extra is not installed (pip install 'gansr[serve]')"
)

with warnings.catch_warnings():
    # Starlette 1.x suggests its httpx fork (httpx2) for the TestClient; httpx works the same here.
    warnings.filterwarnings("ignore", message=".*httpx2")
    from fastapi.testclient import TestClient  # noqa: E402

from gansr.data.io import read_image, write_image  # noqa: E402
from gansr.errors import ConfigError  # noqa: E402
from gansr.serve import ServeConfig, create_app  # noqa: E402
from gansr.serve.app import download_name  # noqa: E402
from gansr.upscale import Upscaler  # noqa: E402

MAX_UPLOAD_MB = 1.0
MAX_PIXELS = 200_000
MAX_OUTPUT_PIXELS = 1_000_000


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def client():
    config = ServeConfig(
        workers=1,
        queue=2,
        max_upload_mb=MAX_UPLOAD_MB,
        max_pixels=MAX_PIXELS,
        max_output_pixels=MAX_OUTPUT_PIXELS,
        device="cpu",
        default_model="bicubic",  # exact and fast: the expected pixels are computable here
    )
    with TestClient(create_app(config)) as c:
        yield c


@pytest.fixture(scope="module")
def crop(set5: Path) -> Image.Image:
    """A 64x48 RGB crop of a real Set5 image (small: keeps every request fast)."""
    with Image.open(set5 / "butterfly.png") as img:
        return img.convert("RGB").crop((96, 80, 160, 128))


@pytest.fixture(scope="module")
def bicubic() -> Upscaler:
    return Upscaler("bicubic", device="cpu")


def encoded(img: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def post(client: TestClient, data: bytes | None, filename: str = "crop.png", **fields: str):
    files = {"image": (filename, data, "image/png")} if data is not None else None
    return client.post("/api/upscale", files=files, data=fields or None)


def assert_error(response, status: int, *words: str) -> str:
    """A JSON error with exactly a one-line ``detail`` naming ``words``; no traceback."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["detail"]
    detail = body["detail"]
    assert "\n" not in detail and "Traceback" not in detail and 'File "' not in detail
    for word in words:
        assert word.lower() in detail.lower(), detail
    return detail


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` but whose pixel data is a few bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------- happy paths


def test_rgb_png_matches_the_upscaler(client, crop, bicubic):
    r = post(client, encoded(crop), filename="butterfly crop.png")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"] == 'attachment; filename="butterfly_crop_x4.png"'
    assert r.headers["x-gansr-model"] == "bicubic"
    assert r.headers["x-gansr-input-size"] == "64x48"
    assert r.headers["x-gansr-output-size"] == "256x192"
    with Image.open(io.BytesIO(r.content)) as out:
        assert out.format == "PNG" and out.mode == "RGB" and out.size == (256, 192)
        expected = bicubic.upscale(crop)
        assert np.array_equal(np.asarray(out), np.asarray(expected))


def test_rgba_keeps_alpha_in_png_and_webp(client, crop):
    rgba = crop.copy()
    alpha = np.zeros((48, 64), np.uint8)
    alpha[:, 32:] = 255  # left half transparent, right half opaque
    rgba.putalpha(Image.fromarray(alpha))
    for fmt, mime in (("png", "image/png"), ("webp", "image/webp")):
        r = post(client, encoded(rgba), outscale="2", format=fmt)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == mime
        with Image.open(io.BytesIO(r.content)) as out:
            assert out.mode == "RGBA" and out.size == (128, 96)
            a = np.asarray(out)[..., 3]
        # Far from the edge the alpha is exactly what it was; bicubic only blends near it.
        assert a[:, :56].max() == 0 and a[:, 72:].min() == 255


def test_rgba_to_jpeg_is_composited_onto_white(client, crop):
    rgba = crop.copy()
    rgba.putalpha(0)  # fully transparent
    r = post(client, encoded(rgba), format="jpeg")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["content-disposition"].endswith('_x4.jpg"')
    with Image.open(io.BytesIO(r.content)) as out:
        assert out.format == "JPEG" and out.mode == "RGB"
        assert np.asarray(out).min() >= 250  # white, up to JPEG rounding


def test_gray_stays_gray(client, crop, bicubic):
    gray = crop.convert("L")
    r = post(client, encoded(gray), outscale="1.5")
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"].endswith('_x1.5.png"')
    with Image.open(io.BytesIO(r.content)) as out:
        assert out.mode == "L" and out.size == (96, 72)
        assert np.array_equal(np.asarray(out), np.asarray(bicubic.upscale(gray, outscale=1.5)))


@pytest.mark.parametrize("channels", [1, 3])
def test_16bit_png_keeps_16_bits(client, crop, bicubic, tmp_path, channels):
    base = torch.from_numpy(np.asarray(crop, np.float32) / 255).permute(2, 0, 1)[:channels]
    # Sub-8-bit detail that an 8-bit round trip would lose.
    fine = torch.arange(64, dtype=torch.float32).remainder(7).mul(40 / 65535).expand_as(base)
    path = write_image(tmp_path / "deep.png", (base * 0.98 + fine).clamp(0, 1), bit_depth=16)
    data = path.read_bytes()
    r = post(client, data, outscale="2")
    assert r.status_code == 200, r.text
    served = read_image(r.content)
    assert served.bit_depth == 16 and served.pixels.shape == (channels, 96, 128)
    expected = bicubic.upscale_loaded(read_image(data), outscale=2).pixels
    assert torch.allclose(served.pixels, expected, atol=0.6 / 65535)
    assert len(torch.unique(served.pixels[0, :4, :4] * 65535 % 257)) > 1  # not 8-bit values in disguise


@pytest.mark.parametrize(
    ("fmt", "options"),
    [("JPEG", {"quality": 95}), ("WEBP", {"lossless": True}), ("BMP", {}), ("TIFF", {})],
)
def test_other_input_types_are_accepted(client, crop, fmt, options):
    # The file name says .png and the part's Content-Type says image/png: the type comes from the bytes.
    r = post(client, encoded(crop, fmt, **options), filename="misnamed.png", outscale="1")
    assert r.status_code == 200, r.text
    with Image.open(io.BytesIO(r.content)) as out:
        assert out.size == crop.size


def test_models_and_health(client):
    models = client.get("/api/models").json()
    assert [m for m in models if m["default"]] == [m for m in models if m["name"] == "bicubic"]
    bic = next(m for m in models if m["name"] == "bicubic")
    assert bic["scale"] == 4 and bic["description"]
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["device"] == "cpu" and health["active"] == 0
    assert health["waiting"] == 0 and health["jobs"] == 0 and health["memory_used_bytes"] == 0
    assert health["memory_budget_bytes"] >= 256_000_000  # automatic: half the available RAM
    assert health["limits"]["max_upload_bytes"] == int(MAX_UPLOAD_MB * 1e6)
    assert health["limits"]["max_pixels"] == MAX_PIXELS
    assert health["limits"]["max_output_pixels"] == MAX_OUTPUT_PIXELS


def test_openapi_documents_the_three_endpoints(client):
    spec = client.get("/openapi.json").json()
    assert {"/api/health", "/api/models", "/api/upscale"} <= set(spec["paths"])
    upscale = spec["paths"]["/api/upscale"]["post"]
    form = upscale["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["image"] and form["properties"]["image"]["format"] == "binary"
    assert "bicubic" in form["properties"]["model"]["enum"]
    assert form["properties"]["format"]["enum"] == ["png", "jpeg", "webp"]
    assert {"image/png", "image/jpeg", "image/webp"} <= set(upscale["responses"]["200"]["content"])
    assert {"400", "408", "413", "415", "422", "503"} <= set(upscale["responses"])
    models = spec["paths"]["/api/models"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert models["items"]["$ref"].endswith("/ModelInfo")
    assert {"name", "description", "scale", "default"} <= set(
        spec["components"]["schemas"]["ModelInfo"]["properties"]
    )
    assert client.get("/docs").status_code == 200


def test_page_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<script src="/static/app.js"' in page.text and 'role="slider"' in page.text
    for name, mime in (("app.js", "javascript"), ("app.css", "text/css")):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and mime in r.headers["content-type"] and len(r.content) > 1000
    for escape in (
        "/static/%2e%2e/limits.py",
        "/static/..%2flimits.py",
        "/static/%2e%2e/%2e%2e/serve/app.py",
    ):
        assert_error(client.get(escape), 404)  # the static mount never serves files outside its folder


# --------------------------------------------------------------------------- bad input: always a 4xx


def test_no_file(client):
    assert_error(client.post("/api/upscale", data={"model": "bicubic"}, files={"x": ("", b"")}), 400)
    r = client.post("/api/upscale", files={"model": (None, "bicubic")})
    assert_error(r, 400, "no image uploaded")


def test_empty_file(client):
    assert_error(post(client, b""), 400, "empty")


def test_truncated_and_corrupt_images(client, crop):
    whole = encoded(crop)
    assert_error(post(client, whole[: len(whole) // 2]), 422, "decode")
    jpeg = encoded(crop, "JPEG")
    assert_error(post(client, jpeg[: len(jpeg) * 2 // 3], filename="c.jpg"), 422, "truncated")
    assert_error(post(client, whole[:30]), 422, "corrupt")  # the signature and half an IHDR


def test_text_renamed_png_is_not_an_image(client):
    assert_error(post(client, b"Hello, I am a text file.\n" * 20, filename="notes.png"), 415, "not an image")


def test_unsupported_image_type(client, crop):
    assert_error(post(client, encoded(crop, "GIF"), filename="anim.png"), 415, "unsupported image type GIF")
    assert_error(post(client, encoded(crop, "ICO"), filename="icon.png"), 415, "unsupported image type")


def test_too_large_upload(client):
    big = b"\x89PNG\r\n\x1a\n" + bytes(int(MAX_UPLOAD_MB * 1e6) + 1)
    assert_error(post(client, big), 413, "limit")
    r = client.post(
        "/api/upscale",
        content=b"x" * 100,
        headers={"content-type": "multipart/form-data; boundary=b", "content-length": str(10**9)},
    )
    assert_error(r, 413, "limit")  # refused from Content-Length alone


def test_too_large_upload_is_refused_while_streaming(client):
    """Without Content-Length the body is counted chunk by chunk: the 413 comes long before the end."""
    app = client.app
    chunk = 64 * 1024
    total_chunks = 200  # 13 MB, far over the 1 MB limit
    head = b'--B\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n\r\n'
    received = 0
    messages: list[dict] = []

    async def receive() -> dict:
        nonlocal received
        received += 1
        if received > total_chunks:
            return {"type": "http.disconnect"}
        body = head if received == 1 else bytes(chunk)
        return {"type": "http.request", "body": body, "more_body": received < total_chunks}

    async def send(message: dict) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/upscale",
        "raw_path": b"/api/upscale",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"multipart/form-data; boundary=B")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in messages if m["type"] == "http.response.start")
    assert start["status"] == 413
    assert received <= (MAX_UPLOAD_MB * 1e6 + 64 * 1024) / chunk + 2  # stopped right after the limit


def test_too_many_pixels_is_refused_from_the_header(client):
    # 600x400 = 240,000 > 200,000 pixels. The pixel data is a stub that would fail to decode (422),
    # so a 413 proves the limit is applied from the header, before any decoding.
    assert_error(post(client, png_header_only(600, 400)), 413, "240,000 pixels")
    # Beyond Pillow's own decompression-bomb limit too.
    assert_error(post(client, png_header_only(30000, 30000)), 413, "pixels")


def test_output_pixel_limit(client, crop):
    big = crop.resize((320, 240))  # 76,800 input pixels; x4 = 1,228,800 > 1,000,000
    assert_error(post(client, encoded(big)), 422, "1,228,800 pixels")
    assert post(client, encoded(big), outscale="3").status_code == 200  # 691,200: allowed


@pytest.mark.parametrize("value", ["abc", "0", "0.5", "8.5", "nan", "inf", "-2", "1e9"])
def test_bad_outscale(client, crop, value):
    assert_error(post(client, encoded(crop), outscale=value), 400, "outscale")


def test_unknown_model(client, crop):
    detail = assert_error(post(client, encoded(crop), model="esrgan_x4"), 400, "unknown model", "bicubic")
    assert "esrgan_x4" in detail
    # An architecture name (random weights) is not an offered model either.
    assert_error(post(client, encoded(crop), model="rrdbnet"), 400, "unknown model")


@pytest.mark.parametrize(
    "value",
    ["../../etc/passwd", "/etc/passwd", "..\\..\\windows\\win.ini", "weights/x4.safetensors", "model.pth"],
)
def test_path_like_model(client, crop, value):
    assert_error(post(client, encoded(crop), model=value), 400, "not a path")


def test_other_bad_fields(client, crop):
    assert_error(post(client, encoded(crop), format="gif"), 400, "format")
    assert_error(post(client, encoded(crop), scale="2"), 400, "unknown form field 'scale'")
    assert_error(post(client, encoded(crop), model="x" * 300), 400, "too long")
    two = [("image", ("a.png", encoded(crop), "image/png")), ("image", ("b.png", encoded(crop), "image/png"))]
    assert_error(client.post("/api/upscale", files=two), 400, "exactly one")
    assert_error(client.post("/api/upscale", json={"image": "x"}), 415, "multipart/form-data")
    assert_error(
        client.post("/api/upscale", content=b"--", headers={"content-type": "multipart/form-data"}), 400
    )


# --------------------------------------------------------------------------- limits, overload, failures


def hold_memory(c: TestClient, nbytes: int):
    """Reserve ``nbytes`` of the app's memory budget on its own event loop, as a request in progress would."""
    budget = c.app.state.budget

    async def reserve():
        held = budget.reservation()
        await held.reserve(nbytes, deadline=asyncio.get_running_loop().time() + 1)
        return held

    held = c.portal.call(reserve)
    return lambda: c.portal.call(held.release)


def test_overload_gives_503_with_retry_after(crop):
    """With the memory budget in use and no waiting allowed, an upload gets 503 with Retry-After,
    and the connection is closed (the rest of its body is never read)."""
    config = ServeConfig(workers=1, queue=0, memory_budget_mb=64, device="cpu", default_model="bicubic")
    with TestClient(create_app(config)) as c:
        release = hold_memory(c, c.app.state.budget.budget)  # all of it: even the upload is refused
        r = post(c, encoded(crop))
        assert_error(r, 503, "busy")
        assert int(r.headers["retry-after"]) >= 1 and r.headers["connection"] == "close"
        release()
        release = hold_memory(c, 60_000_000)  # room for the upload, not for the job
        r = post(c, encoded(crop))
        assert_error(r, 503, "busy")
        assert int(r.headers["retry-after"]) >= 1
        release()
        assert post(c, encoded(crop)).status_code == 200
        health = c.get("/api/health").json()
        assert health["active"] == 0 and health["memory_used_bytes"] == 0  # everything was given back


def test_a_request_waits_for_memory_and_then_succeeds(crop):
    """Over the budget for now, an upload waits (bounded) instead of failing, and runs once memory is free."""
    config = ServeConfig(workers=1, queue=4, memory_budget_mb=64, max_wait_s=20, device="cpu")
    with TestClient(create_app(config)) as c:
        release = hold_memory(c, 60_000_000)
        timer = threading.Timer(1.0, release)
        timer.start()
        try:
            started = time.monotonic()
            r = post(c, encoded(crop), model="bicubic")
            waited = time.monotonic() - started
        finally:
            timer.join()
        assert r.status_code == 200, r.text
        assert waited >= 0.9  # it waited for the memory rather than being refused
        assert c.get("/api/health").json()["memory_used_bytes"] == 0


def test_a_wait_longer_than_the_bound_is_503(crop):
    config = ServeConfig(workers=1, queue=4, memory_budget_mb=64, max_wait_s=0.5, device="cpu")
    with TestClient(create_app(config)) as c:
        release = hold_memory(c, 60_000_000)
        try:
            started = time.monotonic()
            r = post(c, encoded(crop), model="bicubic")
            assert time.monotonic() - started < 10
            assert_error(r, 503, "busy")
            assert int(r.headers["retry-after"]) >= 1
        finally:
            release()
        assert c.get("/api/health").json()["active"] == 0


def test_a_job_larger_than_the_whole_budget_is_413(crop):
    """An image that would need more memory than the server may use at all is refused at once
    (waiting could never help), while a smaller outscale of it fits."""
    config = ServeConfig(memory_budget_mb=20, max_output_pixels=10**8, device="cpu", default_model="bicubic")
    big = crop.resize((320, 240))
    with TestClient(create_app(config)) as c:
        assert_error(post(c, encoded(big)), 413, "memory", "budget", "smaller")
        r = post(c, encoded(big), outscale="1.5")
        assert r.status_code == 200, r.text
        assert c.get("/api/health").json()["memory_used_bytes"] == 0


def test_internal_errors_are_generic_and_logged(crop, monkeypatch, caplog):
    def broken(*_args, **_kwargs):
        raise RuntimeError("secret internal detail at /srv/gansr")

    monkeypatch.setattr("gansr.serve.worker.encode", broken)
    with TestClient(create_app(ServeConfig(device="cpu")), raise_server_exceptions=False) as c:
        with caplog.at_level("ERROR", logger="gansr.serve"):
            r = post(c, encoded(crop))
        detail = assert_error(r, 500, "internal server error")
        assert "secret" not in detail and "/srv" not in r.text
        assert "secret internal detail" in caplog.text  # the detail went to the server log
        assert c.get("/api/health").json()["active"] == 0


def test_uploads_never_touch_the_file_system(crop, monkeypatch):
    """A 2.3 MB upload (over python-multipart's 1 MiB spill size) stays in memory end to end."""

    def forbidden(*_args, **_kwargs):
        raise AssertionError("a temporary file was created")

    for name in ("TemporaryFile", "NamedTemporaryFile", "SpooledTemporaryFile", "mkstemp", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, forbidden)
    noise = np.random.default_rng(0).integers(0, 256, (800, 960, 3), dtype=np.uint8)
    data = encoded(Image.fromarray(noise), compress_level=0)
    assert len(data) > 2 * 1024 * 1024
    config = ServeConfig(max_upload_mb=4, max_pixels=10**6, device="cpu")
    with TestClient(create_app(config)) as c:
        r = post(c, data, outscale="1", format="jpeg")
    assert r.status_code == 200, r.text
    with Image.open(io.BytesIO(r.content)) as out:
        assert out.size == (960, 800)


def test_operator_checkpoint_is_offered_by_name(tmp_path, crop):
    """``gansr serve --model PATH``: a trained checkpoint joins the list under its file stem."""
    from gansr import models

    net = models.create("msrresnet", num_feat=8, num_block=1, scale=2)
    path = models.save(net, tmp_path / "tiny_x2.safetensors")
    from gansr.upscale import DEFAULT_MODEL

    with TestClient(create_app(ServeConfig(device="cpu"), models=[path])) as c:
        listed = {m["name"]: m for m in c.get("/api/models").json()}
        assert listed["tiny_x2"]["scale"] == 2 and "msrresnet" in listed["tiny_x2"]["description"]
        # Without --default-model the shipped photo model is the default, as for gansr upscale.
        assert listed[DEFAULT_MODEL]["default"] and not listed["tiny_x2"]["default"]
        assert not listed["bicubic"]["default"]
        r = post(c, encoded(crop), model="tiny_x2")
        assert r.status_code == 200, r.text
        assert r.headers["x-gansr-output-size"] == "128x96"  # the model's own x2
        assert r.headers["content-disposition"].endswith('_x2.png"')
        with Image.open(io.BytesIO(r.content)) as out:
            expected = Upscaler(path, device="cpu").upscale(crop)
            assert np.array_equal(np.asarray(out), np.asarray(expected))
        # Offered by name only: the path itself is still refused.
        assert_error(post(c, encoded(crop), model=str(path)), 400, "not a path")


def test_every_model_has_its_own_one_line_description(client):
    """The picker tells the models apart: no two share a description, none is blank or multi-line."""
    descriptions = [m["description"] for m in client.get("/api/models").json()]
    assert all(d.strip() and "\n" not in d and len(d) <= 200 for d in descriptions), descriptions
    assert len(set(descriptions)) == len(descriptions), descriptions


def test_checkpoint_descriptions_and_their_fallback(tmp_path):
    """A checkpoint's ``description`` metadata is what the picker shows (as one line); without one,
    a line is made from what the metadata says, never an empty or shared label."""
    from gansr import models
    from gansr.serve.catalog import describe

    net = models.create("msrresnet", num_feat=8, num_block=1, scale=2)
    noted = models.save(net, tmp_path / "noted.safetensors", metadata={"description": "  A test\nmodel  "})
    plain = models.save(net, tmp_path / "plain.safetensors")
    with TestClient(create_app(ServeConfig(device="cpu"), models=[noted, plain])) as c:
        listed = {m["name"]: m["description"] for m in c.get("/api/models").json()}
    assert listed["noted"] == "A test model"
    assert listed["plain"].startswith("msrresnet x2") and "plain.safetensors" in listed["plain"]

    gray = {"arch": "msrresnet", "in_channels": 1, "recipe_preset": "mnist_x4_plus"}
    colour = {"arch": "msrresnet", "in_channels": 3, "recipe_preset": "srgan_x4_bsds"}
    assert describe(gray, scale=4) == "msrresnet x4 for grayscale images (recipe mnist_x4_plus)"
    assert describe(gray, scale=4) != describe(colour, scale=4)
    assert describe({}, scale=2) == "model x2"
    assert describe({"description": "   "}, scale=2) == "model x2"
    assert len(describe({"description": "word " * 100}, scale=4)) <= 200


def test_config_validation():
    with pytest.raises(ConfigError, match="workers"):
        ServeConfig(workers=0)
    with pytest.raises(ConfigError, match="max_upload_mb"):
        ServeConfig(max_upload_mb=-1)
    with pytest.raises(ConfigError, match="port"):
        ServeConfig(port=70000)
    with pytest.raises(ConfigError, match="default model"):
        create_app(ServeConfig(default_model="nope", device="cpu"))
    with pytest.raises(ConfigError, match="device"):
        create_app(ServeConfig(device="tpu"))


def test_download_name_is_safe():
    assert download_name("../../etc/pass wd.png", "x4", ".png") == "pass_wd_x4.png"
    assert download_name('a"b;c\r\n.jpg', "x2", ".jpg") == "a_b_c_x2.jpg"
    assert download_name("", "x4", ".webp") == "image_x4.webp"
    assert download_name(".hidden", "x4", ".png") == "hidden_x4.png"


# --------------------------------------------------------------------------- the command line


def test_cli_without_the_extra_says_how_to_install(monkeypatch, capsys):
    import sys

    from gansr.cli import main

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn -> ImportError
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    # The command follows how gansr was installed (editable here: `pip install -e '.[serve]'`).
    assert err.startswith("gansr: error:") and "pip install" in err and "[serve]'" in err
    assert err.count("\n") == 1


def test_cli_busy_port_is_a_one_line_error(capsys):
    import socket

    from gansr.cli import main

    threads = torch.get_num_threads()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        try:
            assert main(["serve", "--port", str(port), "--device", "cpu"]) == 2
        finally:
            torch.set_num_threads(threads)  # `gansr serve` sizes torch's pool for its workers
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and err.count("\n") == 1
