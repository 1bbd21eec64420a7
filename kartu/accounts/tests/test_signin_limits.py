"""Sign-in rate limits (allauth's rules, counted by kartu's limiter: kartu.accounts.adapter)."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from kartu.accounts.tests.conftest import (
    PASSWORD,
    last_link,
    login,
    make_member,
    refused_as_too_many,
    solved,
)

pytestmark = [pytest.mark.django_db, pytest.mark.backends]


def signed_in(response) -> bool:  # type: ignore[no-untyped-def]
    return response.status_code == 302 and response["Location"] == "/akun/"


def test_five_wrong_passwords_lock_that_address_but_not_others():
    make_member("budi@contoh.id")
    make_member("ani@contoh.id")
    for _ in range(5):
        response = login(Client(), "budi@contoh.id", "salah-sandi-123")
        assert response.status_code == 200 and not refused_as_too_many(response)
    assert refused_as_too_many(login(Client(), "budi@contoh.id", PASSWORD))
    assert signed_in(login(Client(), "ani@contoh.id"))


def test_a_right_password_takes_its_attempt_back():
    make_member("budi@contoh.id")
    for _ in range(4):
        assert not signed_in(login(Client(), "budi@contoh.id", "salah-sandi-123"))
    assert signed_in(login(Client(), "budi@contoh.id"))  # 5th attempt, taken back
    fifth = login(Client(), "budi@contoh.id", "salah-sandi-123")
    assert fifth.status_code == 200 and not refused_as_too_many(fifth)  # 5th
    assert refused_as_too_many(login(Client(), "budi@contoh.id"))  # 6th: over the limit


def test_attempts_per_ip_are_limited(settings):
    settings.KARTU_LIMITS = {**settings.KARTU_LIMITS, "signin_ip": (3, 60)}
    for i in range(3):
        make_member(f"m{i}@contoh.id")
        assert signed_in(login(Client(), f"m{i}@contoh.id"))
    make_member("m3@contoh.id")
    assert refused_as_too_many(login(Client(), "m3@contoh.id"))


def test_a_password_reset_clears_the_failed_attempts():
    """Through the real reset: the mail's link and the new password (allauth clears the
    address's failed attempts on a reset; kartu's limiter must follow)."""
    make_member("budi@contoh.id")
    for _ in range(5):
        login(Client(), "budi@contoh.id", "salah-sandi-123")
    assert refused_as_too_many(login(Client(), "budi@contoh.id"))
    client = Client()
    client.post("/akun/password/reset/", {"email": "budi@contoh.id", "altcha": solved()})
    link = last_link(mail.outbox[-1].body)
    form_page = client.get(link, follow=True)
    action = form_page.redirect_chain[-1][0] if form_page.redirect_chain else link
    new = "kata-sandi-baru-yang-panjang"
    assert client.post(action, {"password1": new, "password2": new}).status_code == 302
    assert signed_in(login(Client(), "budi@contoh.id", new))
