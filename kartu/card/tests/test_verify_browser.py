"""/verifikasi in real headless Chromium: reading the QR from a photo or the camera.

Browsers without ``BarcodeDetector`` (iOS Safari, Firefox) read QR codes with the vendored jsQR,
which the page fetches only then. Chromium stands in for them here: ``window.BarcodeDetector``
is deleted before the page script runs. The photo is the card PNG the member downloads; the
camera is Chromium's fake capture device playing that PNG as a video. Skipped (with the reason)
when Chromium is missing outside CI; in CI a missing Chromium fails (see ``chromium_path``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.templatetags.static import static
from PIL import Image

from conftest import CHROMIUM_FLAGS
from kartu.card import render

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

JSQR = static("vendor/jsqr/jsQR.js")
NO_BARCODE_DETECTOR = "delete window.BarcodeDetector;"
RESULT_SHOWN = ("() => /kartu-result--(valid|expired|revoked|not_genuine)/"
                ".test(document.querySelector('[data-result]').className)")


def _context(browser: Any, base_url: str, init_script: str) -> Any:
    context = browser.new_context(base_url=base_url, locale="id-ID")
    context.add_init_script(init_script)
    context.set_default_timeout(20_000)
    return context


@pytest.fixture
def card_png(card) -> bytes:  # type: ignore[no-untyped-def]
    return render.render_png(card)


@pytest.fixture
def fallback_page(browser: Any, live_server: Any) -> Iterator[Any]:
    """A page in a browser that has no BarcodeDetector, like iOS Safari or Firefox."""
    context = _context(browser, live_server.url, NO_BARCODE_DETECTOR)
    yield context.new_page()
    context.close()


def _upload(page: Any, png: bytes) -> None:
    upload = page.locator("input[data-file]")
    upload.wait_for(state="visible")  # offered although there is no BarcodeDetector
    upload.set_input_files(files=[{"name": "kartu.png", "mimeType": "image/png", "buffer": png}])
    page.wait_for_function(RESULT_SHOWN)


def _assert_valid(page: Any, kpj: str) -> None:
    result = page.locator("[data-result]")
    assert "kartu-result--valid" in (result.get_attribute("class") or ""), result.inner_text()
    assert page.locator("[data-kpj]").inner_text() == kpj
    assert "SITI NURHALIZA" in result.inner_text()


def test_a_photo_is_read_with_jsqr_when_there_is_no_barcodedetector(fallback_page, card,
                                                                    card_png):  # type: ignore[no-untyped-def]
    page = fallback_page
    page.goto("/verifikasi")
    assert page.evaluate("typeof window.BarcodeDetector") == "undefined"
    assert page.evaluate("typeof window.jsQR") == "undefined"  # not fetched until needed
    _upload(page, card_png)
    _assert_valid(page, card.membership.kpj)
    assert page.evaluate("typeof window.jsQR") == "function"
    assert page.locator(f"script[src='{JSQR}']").count() == 1


def test_a_photo_without_a_qr_says_so(fallback_page, card):  # type: ignore[no-untyped-def]
    blank = io.BytesIO()
    Image.new("RGB", (640, 480), "white").save(blank, "PNG")
    fallback_page.goto("/verifikasi")
    _upload(fallback_page, blank.getvalue())
    assert "Tidak ada kode QR yang terbaca." in fallback_page.locator("[data-reason]").inner_text()


def test_the_camera_is_read_with_jsqr_when_there_is_no_barcodedetector(
        browser, chromium_path, live_server, card, card_png, tmp_path):  # type: ignore[no-untyped-def]
    video = _y4m(card_png, tmp_path / "camera.y4m")
    camera = browser.browser_type.launch(executable_path=chromium_path, args=[
        *CHROMIUM_FLAGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ])
    try:
        context = _context(camera, live_server.url, NO_BARCODE_DETECTOR)
        context.grant_permissions(["camera"])
        page = context.new_page()
        page.goto("/verifikasi")
        scan = page.locator("button[data-scan]")
        scan.wait_for(state="visible")
        scan.click()
        page.wait_for_function(RESULT_SHOWN)
        _assert_valid(page, card.membership.kpj)
        assert page.evaluate("typeof window.jsQR") == "function"
        assert page.locator("video").is_hidden()  # the camera is released after a read
    finally:
        camera.close()


def test_the_fallback_works_offline_once_the_page_was_opened(fallback_page, card,
                                                             card_png):  # type: ignore[no-untyped-def]
    page = fallback_page
    page.goto("/verifikasi")
    page.wait_for_function("() => navigator.serviceWorker.ready.then(() => true)")
    page.reload()  # now controlled by the service worker, which has cached the page's files
    page.wait_for_function("() => !!navigator.serviceWorker.controller")
    page.context.set_offline(True)
    page.reload()
    _upload(page, card_png)
    _assert_valid(page, card.membership.kpj)


def test_barcodedetector_is_used_where_it_exists_and_jsqr_is_not_fetched(
        browser, live_server, card, qr_text, card_png):  # type: ignore[no-untyped-def]
    fake = f"window.__kartuQr = {json.dumps(qr_text)};" + """
      window.__kartuDetected = 0;
      window.BarcodeDetector = class {
        static async getSupportedFormats() { return ["qr_code"]; }
        async detect() { window.__kartuDetected++; return [{rawValue: window.__kartuQr}]; }
      };
    """
    context = _context(browser, live_server.url, fake)
    try:
        page = context.new_page()
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.goto("/verifikasi")
        _upload(page, card_png)
        _assert_valid(page, card.membership.kpj)
        assert page.evaluate("window.__kartuDetected") >= 1
        assert page.evaluate("typeof window.jsQR") == "undefined"
        assert not [u for u in requested if JSQR in u]
    finally:
        context.close()


def _y4m(png: bytes, path: Path) -> Path:
    """The card on a 1280 x 720 grey frame as a YUV4MPEG2 (4:2:0) file for the fake camera."""
    card = Image.open(io.BytesIO(png)).convert("RGB")
    frame = Image.new("RGB", (1280, 720), (200, 200, 200))
    frame.paste(card, ((1280 - card.width) // 2, (720 - card.height) // 2))
    y, cb, cr = frame.convert("YCbCr").split()
    half = (frame.width // 2, frame.height // 2)
    planes = y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    with open(path, "wb") as fh:
        fh.write(b"YUV4MPEG2 W1280 H720 F10:1 Ip A1:1 C420jpeg\n")
        for _ in range(10):
            fh.write(b"FRAME\n" + planes)
    return path
