"""The member portal end to end, in real headless Chromium against a live server.

signup → the verification mail from a loopback SMTP sink → solve ALTCHA (the widget's real proof
of work) → link with the one-time code mailed to the address on file → open the Kartu Digital →
download PNG and PDF → read the QR back from the PNG → verify it on /verifikasi; and the failure
paths: a wrong identity, a replayed captcha, a revoked card.
"""

from __future__ import annotations

import io
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "kata-sandi-panjang-2026"
EMAIL = "anggota@contoh.id"


@dataclass
class Sink:
    """An SMTP server on loopback that keeps every message it receives."""

    messages: list[Any] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.arrived:
            self.messages.append(message_from_bytes(envelope.original_content,
                                                    policy=policy.default))
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, to: str, count: int = 1, timeout: float = 20) -> Any:
        with self.arrived:
            ok = self.arrived.wait_for(
                lambda: len([m for m in self.messages if to in str(m["To"])]) >= count, timeout)
        assert ok, f"no mail to {to} arrived"
        return [m for m in self.messages if to in str(m["To"])][count - 1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_sink(settings: Any) -> Iterator[Sink]:
    sink = Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield sink
    controller.stop()


def body_of(message: Any) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    return str(part.get_content())


def solve_altcha(page: Any) -> str:
    """Tick "Saya bukan robot" and wait for the widget to finish its proof of work."""
    page.locator("altcha-widget input[type=checkbox]").first.click()
    page.wait_for_function(
        "() => { const i = document.querySelector('input[name=altcha]') ||"
        " document.querySelector('altcha-widget')?.shadowRoot?.querySelector("
        "'input[name=altcha]'); return i && i.value && i.value.length > 20; }",
        timeout=30_000,
    )
    return str(page.locator("input[name=altcha]").first.input_value())


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    context = browser.new_context(base_url=live_server.url, locale="id-ID")
    p = context.new_page()
    p.set_default_timeout(20_000)
    yield p
    context.close()


def sign_up_and_log_in(page: Any, sink: Sink, email: str = EMAIL) -> None:
    # (allauth limits verification mails per address: each test signs up its own address)
    page.goto("/akun/signup/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    solve_altcha(page)
    page.locator("form:has(input[name=password2]) button[type=submit]").click()
    page.wait_for_load_state()

    mail = sink.wait_for(email)
    link = re.search(r"https?://\S+/akun/confirm-email/\S+", body_of(mail))
    assert link, body_of(mail)
    page.goto(link.group(0))
    page.locator("form[action*=confirm-email] button[type=submit]").click()
    page.wait_for_load_state()

    page.goto("/akun/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    solve_altcha(page)
    page.locator("form:has(input[name=login]) button[type=submit]").click()
    page.wait_for_url(re.compile(r"/akun/$"))


def fill_identity(page: Any, *, full_name: str = "Siti Nurhaliza") -> str:
    page.goto("/akun/hubungkan/")
    page.fill("input[name=nik]", "3174 0557 0890 0003")
    page.fill("input[name=full_name]", full_name)
    page.fill("input[name=birth_place]", "Jakarta")
    page.fill("input[name=birth_date]", "1990-08-17")
    payload = solve_altcha(page)
    page.locator("form:has(input[name=nik]) button[type=submit]").click()
    page.wait_for_load_state()
    return payload


def test_signup_link_card_download_and_verify(page, smtp_sink, loaded_registry, tmp_path):
    import zxingcpp
    from PIL import Image

    sign_up_and_log_in(page, smtp_sink)

    # A wrong identity: one neutral answer, nothing linked.
    fill_identity(page, full_name="Siti Aminah")
    assert "tidak cocok dengan data kepesertaan" in page.content()

    # The right identity: a one-time code goes to the email on file in the registry.
    fill_identity(page)
    page.wait_for_url(re.compile(r"/akun/hubungkan/kode/"))
    code_mail = smtp_sink.wait_for("siti@contoh.id")
    code = re.search(r"\b(\d{6})\b", body_of(code_mail))
    assert code
    page.fill("input[name=code]", code.group(1))
    page.locator("form:has(input[name=code]) button[type=submit]").click()
    page.wait_for_load_state()

    page.goto("/akun/kartu/")
    html = page.content()
    assert "12345678901" in html and "10987654321" in html, page.inner_text("main")
    assert "3174055708900003" not in html  # masked until revealed
    assert "************0003" in html or "0003" in html

    png_href = page.locator("a[href$='kartu.png']").first.get_attribute("href")
    pdf_href = page.locator("a[href$='kartu.pdf']").first.get_attribute("href")
    png = page.request.get(png_href)
    pdf = page.request.get(pdf_href)
    assert png.ok and png.body()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.ok and pdf.body()[:5] == b"%PDF-"

    (qr,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.body())))
    assert qr.text.startswith("KPJ1:")

    page.goto("/verifikasi")
    page.fill("textarea[name=qr]", qr.text)
    page.locator("form:has(textarea[name=qr]) button[type=submit]").click()
    result = page.locator("[data-result]")
    result.wait_for(state="visible")
    page.wait_for_function(
        "() => /kartu-result--(valid|expired|revoked|not_genuine)/"
        ".test(document.querySelector('[data-result]').className)")
    assert "kartu-result--valid" in (result.get_attribute("class") or "")
    assert "SITI NURHALIZA" in result.inner_text()

    # A revoked card is reported as revoked.
    from kartu.card import qr as qr_rules
    from kartu.card import services as cards
    from kartu.card.models import Card

    decoded = qr_rules.verify(qr.text)
    assert decoded.status == "valid" and decoded.card is not None
    cards.revoke(Card.objects.get(cti=decoded.card["cti"]), "requested")
    page.goto("/verifikasi")
    page.fill("textarea[name=qr]", qr.text)
    page.locator("form:has(textarea[name=qr]) button[type=submit]").click()
    page.wait_for_function(
        "() => /kartu-result--revoked/.test(document.querySelector('[data-result]').className)")


def test_a_replayed_captcha_is_refused(page, smtp_sink, loaded_registry):
    sign_up_and_log_in(page, smtp_sink, email="replay@contoh.id")
    payload = fill_identity(page, full_name="Siti Aminah")  # uses the solution once
    csrf = page.locator("input[name=csrfmiddlewaretoken]").first.input_value()
    replay = page.request.post("/akun/hubungkan/", form={
        "csrfmiddlewaretoken": csrf, "nik": "3174055708900003", "full_name": "Siti Nurhaliza",
        "birth_place": "Jakarta", "birth_date": "1990-08-17", "altcha": payload,
    }, headers={"Referer": page.url})
    assert replay.ok
    assert "sudah dipakai" in replay.text()
