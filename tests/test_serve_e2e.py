"""End to end: headless Chromium drives the ``gansr serve`` page against a real uvicorn server.

Uses Debian's ``chromium`` (``/usr/bin/chromium``) through Playwright's Python package; no browser
is ever downloaded. The page is operated with the keyboard wherever a user would be able to:
the file input is reached from the keyboard, the form is submitted with Enter, the comparison
slider moves with the arrow keys, the compare toggle is a radio group, and the download link is activated with
Enter. A screenshot of the finished page is saved to ``$GANSR_ARTIFACTS`` (or the test's tmp
folder) and its path printed.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    # CI installs chromium and sets GANSR_REQUIRE_BROWSER=1, so a failed install cannot pass as a skip.
    if os.environ.get("GANSR_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"{CHROMIUM} not found but GANSR_REQUIRE_BROWSER=1")
    pytest.skip(
        f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) for the browser test",
        allow_module_level=True,
    )
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")  # never fetch Playwright's own browsers
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install 'gansr[dev]')"
)
httpx = pytest.importorskip("httpx", reason="httpx is not installed (pip install 'gansr[dev]')")
uvicorn = pytest.importorskip(
    "uvicorn", reason="the serve extra is not installed (pip install 'gansr[serve]')"
)
expect = sync_api.expect

from gansr.serve import ServeConfig, create_app  # noqa: E402
from gansr.upscale import Upscaler  # noqa: E402

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
TIMEOUT_MS = 30_000


@pytest.fixture()
def base_url():
    """The app served by uvicorn on 127.0.0.1 (a free port) in a thread; stopped at the end."""
    app = create_app(ServeConfig(workers=1, queue=4, device="cpu", default_model="bicubic"))
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
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture()
def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("GANSR_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_upload_compare_and_download(base_url, set5, tmp_path, artifacts):
    with Image.open(set5 / "butterfly.png") as img:
        crop = img.convert("RGB").crop((64, 64, 192, 192))  # 128x128 -> 512x512 at the default x4
    source = tmp_path / "butterfly_crop.png"
    crop.save(source)

    problems: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            page.set_default_timeout(TIMEOUT_MS)
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.goto(base_url + "/")
            page.wait_for_selector("#server-status[data-state='ok']")

            # Accessible names of the controls.
            model = page.get_by_label("Model")
            assert model.input_value() == "bicubic"
            # The picker shows each model's one-line description (from /api/models).
            listed = {m["name"]: m["description"] for m in httpx.get(base_url + "/api/models").json()}
            expect(page.locator("#model-desc")).to_have_text(listed["bicubic"])
            assert page.locator("#model option[value='bicubic']").get_attribute("title") == listed["bicubic"]
            scale = page.get_by_label("Output scale")
            assert scale.input_value() == "4"
            assert page.get_by_label("Format").input_value() == "png"
            submit = page.get_by_role("button", name="Upscale")
            assert submit.is_disabled()

            # The file picker opens from the keyboard (Space on the focused input).
            page.keyboard.press("Tab")  # the skip link comes first ...
            assert page.evaluate("document.activeElement.className") == "skip-link"
            page.keyboard.press("Enter")  # ... and jumps to the picker
            assert page.evaluate("document.activeElement.id") == "file"
            # Space on a focused native file input opens the OS picker; that is the browser's own
            # behaviour and headless Chromium sometimes drops the event under load, so the file is
            # set on the focused input directly (what the picker would do).
            page.locator("#file").set_input_files(str(source))
            # (Playwright's expect polls without eval, which the page's CSP forbids.)
            expect(page.locator("#file-details")).to_contain_text("128 × 128 px")
            assert page.locator("#outscale-hint").inner_text() == "Result: 512 × 512 px."

            # Tab order: model, scale, format, then the button; Enter submits.
            order = []
            for _ in range(4):
                page.keyboard.press("Tab")
                order.append(page.evaluate("document.activeElement.id"))
            assert order == ["model", "outscale", "format", "submit"]
            # Record what the progress UI shows while the request runs.
            page.evaluate(
                """() => {
                  window.__seen = {progress: false, processing: false, upload: 0};
                  const note = () => {
                    const s = window.__seen;
                    s.progress ||= !document.getElementById('progress').hidden;
                    s.processing ||= !document.getElementById('processing').hidden;
                    s.upload = Math.max(s.upload, document.getElementById('upload-progress').value);
                  };
                  new MutationObserver(note).observe(document.body, {subtree: true, attributes: true});
                }"""
            )
            page.keyboard.press("Enter")
            page.wait_for_selector("#result:not([hidden])")
            expect(page.locator("#status")).to_have_text(re.compile(r"^Done: 512 × 512 px"))
            seen = page.evaluate("window.__seen")
            assert seen == {"progress": True, "processing": True, "upload": 100}
            assert page.locator("#progress").is_hidden()
            assert page.locator("#error").is_hidden()

            # The comparison: images loaded at the result's size, slider operable by keyboard.
            size = page.evaluate(
                "(img => [img.naturalWidth, img.naturalHeight])(document.getElementById('after-img'))"
            )
            assert size == [512, 512]
            slider = page.get_by_role("slider", name=re.compile("Comparison split"))
            assert slider.get_attribute("aria-valuenow") == "50"
            page.locator("#download").focus()
            page.keyboard.press("Tab")  # the handle follows the download link
            assert page.evaluate("document.activeElement.id") == "handle"
            knob_outline = page.evaluate(
                "getComputedStyle(document.querySelector('#handle .handle-knob')).outlineStyle"
            )
            assert knob_outline == "solid"  # a visible focus ring
            clip_before = page.evaluate("getComputedStyle(document.getElementById('before-img')).clipPath")
            for _ in range(5):
                page.keyboard.press("ArrowLeft")
            assert slider.get_attribute("aria-valuenow") == "45"
            page.keyboard.press("Shift+ArrowRight")
            assert slider.get_attribute("aria-valuenow") == "55"
            page.keyboard.press("End")
            assert slider.get_attribute("aria-valuenow") == "100"
            page.keyboard.press("Home")
            assert slider.get_attribute("aria-valuenow") == "0"
            assert (
                page.evaluate("document.getElementById('compare').style.getPropertyValue('--split')") == "0%"
            )
            clip_after = page.evaluate("getComputedStyle(document.getElementById('before-img')).clipPath")
            assert clip_after != clip_before
            for _ in range(5):
                page.keyboard.press("PageUp")
            assert slider.get_attribute("aria-valuenow") == "50"

            # Compare with: LR input (default when the model is bicubic itself) <-> bicubic.
            assert page.get_by_label("Input (LR)").is_checked()
            assert page.locator("#before-badge").inner_text() == "Input (LR)"
            page.get_by_label("Input (LR)").focus()
            page.keyboard.press("ArrowLeft")  # radio group: arrow keys change the choice
            assert page.get_by_label("Bicubic").is_checked()
            assert page.locator("#before-badge").inner_text() == "Bicubic"
            page.keyboard.press("ArrowRight")
            assert page.get_by_label("Input (LR)").is_checked()

            # Detail view: focusable, arrow keys move the region.
            page.locator("#detail").focus()
            where = page.locator("#detail-pos").inner_text()
            page.keyboard.press("ArrowRight")
            page.keyboard.press("ArrowDown")
            assert page.locator("#detail-pos").inner_text() != where
            page.get_by_label("Zoom").select_option("4")
            assert page.locator("#detail-pos").inner_text().endswith("at 4:1.")

            # Download with the keyboard; check the file itself.
            download_link = page.get_by_role("link", name=re.compile("Download butterfly_crop_x4.png"))
            download_link.focus()
            with page.expect_download() as info:
                page.keyboard.press("Enter")
            download = info.value
            assert download.suggested_filename == "butterfly_crop_x4.png"
            saved = tmp_path / download.suggested_filename
            download.save_as(saved)
            direct = httpx.post(
                f"{base_url}/api/upscale", files={"image": (source.name, source.read_bytes())}
            )
            assert direct.status_code == 200
            assert saved.stat().st_size == len(direct.content) > 10_000  # the bytes the API returns
            assert saved.read_bytes() == direct.content
            with Image.open(saved) as result:
                assert result.format == "PNG" and result.size == (512, 512) and result.mode == "RGB"
                expected = Upscaler("bicubic", device="cpu").upscale(crop)
                assert np.array_equal(np.asarray(result), np.asarray(expected))

            # Click-to-zoom: a click on the comparison centres the detail view there.
            page.get_by_label("Zoom").select_option("2")
            box = page.locator("#compare").bounding_box()
            page.mouse.click(box["x"] + 0.25 * box["width"], box["y"] + 0.3 * box["height"])
            expect(page.locator("#detail-pos")).to_contain_text("at 2:1")
            cx, cy = map(
                int, re.search(r"around \((\d+), (\d+)\)", page.locator("#detail-pos").inner_text()).groups()
            )
            assert abs(cx - 0.25 * 512) <= 3 and abs(cy - 0.3 * 512) <= 3
            page.locator("#handle").focus()  # the picture shows the slider's focus ring
            shot = artifacts / "gansr-serve-page.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"\nscreenshot: {shot}")
        finally:
            browser.close()
    assert not problems, problems  # no script errors, no CSP violations, no failed loads
