"""The public endpoints: keys.json, revoked.json and /verifikasi (server-side fallback)."""

from __future__ import annotations

import pytest

from kartu.card import services

pytestmark = pytest.mark.django_db


def test_keys_json(client, card):  # type: ignore[no-untyped-def]
    response = client.get("/.well-known/kartu/keys.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert "max-age=300" in response["Cache-Control"] and "public" in response["Cache-Control"]
    assert response["Access-Control-Allow-Origin"] == "*"
    (key,) = response.json()["keys"]
    assert set(key) >= {"kty", "crv", "x", "y", "kid", "alg", "status"}
    assert "d" not in key


def test_revoked_json(client, membership, card):  # type: ignore[no-untyped-def]
    services.reissue(membership)
    response = client.get("/.well-known/kartu/revoked.json")
    assert response.status_code == 200
    assert "max-age=60" in response["Cache-Control"]
    doc = response.json()
    assert isinstance(doc["updated"], int) and doc["revoked"] == [card.cti]


def test_verify_page_get(client, db):  # type: ignore[no-untyped-def]
    response = client.get("/verifikasi")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Verifikasi Kartu Peserta" in html
    assert 'id="kartu-verify-config"' in html and "card/verify.js" in html
    assert "BarcodeDetector" not in html  # feature detection lives in the script


def test_verify_page_server_fallback(client, qr_text, membership):  # type: ignore[no-untyped-def]
    response = client.post("/verifikasi", {"qr": qr_text})
    html = response.content.decode()
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert "kartu-result--valid" in html and "Kartu asli dan berlaku" in html
    assert "SITI NURHALIZA" in html and "10987654321" in html and "************0003" in html
    services.reissue(membership)
    html = client.post("/verifikasi", {"qr": qr_text}).content.decode()
    assert "kartu-result--revoked" in html and "Kartu sudah dicabut" in html


def test_verify_page_forgery_shows_no_data(client, qr_text):  # type: ignore[no-untyped-def]
    tampered = qr_text[:-6] + ("AAAAAA" if not qr_text.endswith("AAAAAA") else "BBBBBB")
    html = client.post("/verifikasi", {"qr": tampered}).content.decode()
    assert "kartu-result--not_genuine" in html and "Bukan kartu asli" in html
    assert "SITI NURHALIZA" not in html.split('data-result')[1].split("</dl>")[0] \
        or "data-card hidden" in html
    html = client.post("/verifikasi", {"qr": "x" * 100_000}).content.decode()
    assert "Bukan kartu asli" in html


def test_verify_page_in_english(client, qr_text):  # type: ignore[no-untyped-def]
    client.cookies["django_language"] = "en"
    html = client.post("/verifikasi", {"qr": qr_text}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Genuine and valid" in html


def test_service_worker(client, db):  # type: ignore[no-untyped-def]
    response = client.get("/verifikasi-sw.js")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/javascript")
    body = response.content.decode()
    assert '"/verifikasi"' in body and "/.well-known/kartu/keys.json" in body


def test_card_include_renders(card):  # type: ignore[no-untyped-def]
    from django.template.loader import render_to_string

    html = render_to_string("card/_card.html", {"card": services.card_view(card)})
    assert "************0003" in html and "3174055708900003" not in html
    assert "data-nik-toggle" not in html
    assert html.index("************0003") < html.index("kartu-card__kpj\">10987654321")  # below NIK
    assert "<svg" in html
    revealed = render_to_string("card/_card.html", {
        "card": services.card_view(card, reveal_nik=True), "png_url": "/x.png"})
    assert 'data-nik-full="3174055708900003"' in revealed and "data-nik-toggle" in revealed
    assert 'href="/x.png"' in revealed


@pytest.mark.parametrize("exp", [2**39, 253402300799])
def test_verify_page_forgery_with_a_far_future_expiry(client, card, other_signer, exp):  # type: ignore[no-untyped-def]
    """A QR signed by anyone, with an ``exp`` past what a date can hold (or the last second it
    can, which is past year 9999 in Jakarta), is "not genuine", never a server error."""
    from kartu.card.tests.test_qr import _payload, _signed_with

    forged = _signed_with(other_signer, _payload({4: exp}))
    response = client.post("/verifikasi", {"qr": forged})
    assert response.status_code == 200
    assert "kartu-result--not_genuine" in response.content.decode()
