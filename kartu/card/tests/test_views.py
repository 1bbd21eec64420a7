"""The public endpoints: keys.json, revoked.json and /verifikasi (server-side fallback)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

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
    from kartu.card.tests.conftest import _payload, _signed_with

    forged = _signed_with(other_signer, _payload({4: exp}))
    response = client.post("/verifikasi", {"qr": forged})
    assert response.status_code == 200
    assert "kartu-result--not_genuine" in response.content.decode()


# --- the member's "Ganti kartu" -----------------------------------------------------------------


@pytest.fixture
def siti(client, loaded_registry):  # type: ignore[no-untyped-def]
    """A signed-in member whose account is linked to SITI NURHALIZA."""
    from kartu.accounts.models import Link
    from kartu.accounts.tests.conftest import make_member
    from kartu.registry.models import Person

    user = make_member("siti@contoh.id")
    person = Person.objects.get(memberships__kpj="10987654321")
    Link.objects.create(user=user, person=person, state=Link.State.LINKED)
    client.force_login(user)
    return client


def _membership(kpj: str):  # type: ignore[no-untyped-def]
    from kartu.registry.models import Membership

    return Membership.objects.get(kpj=kpj)


def test_a_member_replaces_their_card(siti):  # type: ignore[no-untyped-def]
    from kartu.card import qr

    membership = _membership("10987654321")
    page = siti.get("/akun/kartu/").content.decode()
    action = f'action="/akun/kartu/{membership.pk}/ganti/"'
    assert action in page and "Ganti kartu" in page and "langsung tidak berlaku lagi" in page
    form = page[page.index(action):page.index("</form>", page.index(action))]
    assert 'name="csrfmiddlewaretoken"' in form and 'type="submit"' in form
    old = services.current_card(membership)
    old_text = services.qr_text(old)

    response = siti.post(f"/akun/kartu/{membership.pk}/ganti/")
    assert response.status_code == 302 and response["Location"] == "/akun/kartu/"
    # The message names the KPJ: it stays in the server-side session, not in a cookie.
    assert "messages" not in response.cookies
    old.refresh_from_db()
    assert old.revoked_at is not None and old.revoked_reason == "requested"
    assert qr.verify(old_text).status == "revoked"
    assert old.cti in siti.get("/.well-known/kartu/revoked.json").json()["revoked"]
    page = siti.get("/akun/kartu/").content.decode()
    assert "Kartu baru untuk KPJ 10987654321 sudah terbit" in page
    new = services.current_card(membership)
    assert new.pk != old.pk and qr.verify(services.qr_text(new)).status == "valid"
    # the other membership's card was not touched
    other = _membership("12345678901")
    assert other.cards.filter(revoked_at__isnull=False).count() == 0


def test_replacing_a_card_is_a_post_of_ones_own_membership(client, siti):  # type: ignore[no-untyped-def]
    from django.test import Client

    from kartu.accounts.models import Link
    from kartu.accounts.tests.conftest import make_member
    from kartu.card.models import Card

    mine, rizki = _membership("10987654321"), _membership("11122233344")
    services.current_card(mine)
    services.current_card(rizki)
    assert siti.get(f"/akun/kartu/{mine.pk}/ganti/").status_code == 405
    assert siti.post(f"/akun/kartu/{rizki.pk}/ganti/").status_code == 404
    assert siti.post("/akun/kartu/999999/ganti/").status_code == 404
    anonymous = Client().post(f"/akun/kartu/{mine.pk}/ganti/")
    assert anonymous.status_code == 302 and "/akun/login/" in anonymous["Location"]
    unlinked = Client()
    unlinked.force_login(make_member("lain@contoh.id"))
    assert unlinked.post(f"/akun/kartu/{mine.pk}/ganti/").status_code == 404
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(Link.objects.get(person_id=mine.person_id).user)
    assert strict.post(f"/akun/kartu/{mine.pk}/ganti/").status_code == 403
    assert not Card.objects.filter(revoked_at__isnull=False).exists()


def test_a_member_cannot_replace_a_card_without_limit(siti):  # type: ignore[no-untyped-def]
    from kartu.card.models import Card

    """Each new card puts the old one on the public revocation list for up to two years."""
    membership = _membership("10987654321")
    siti.get("/akun/kartu/")  # the card the member sees
    for _ in range(services.REQUESTS_PER_WINDOW):
        siti.post(f"/akun/kartu/{membership.pk}/ganti/")
    before = list(Card.objects.filter(membership=membership).values_list("pk", "revoked_at"))
    response = siti.post(f"/akun/kartu/{membership.pk}/ganti/", follow=True)
    assert response.status_code == 200
    assert "terlalu sering diganti" in response.content.decode()
    assert list(Card.objects.filter(membership=membership)
                .values_list("pk", "revoked_at")) == before
    later = timezone.now() + services.REQUEST_WINDOW + timedelta(seconds=1)
    assert services.reissue_requested(membership, now=later) is not None
