"""Sign-up → verification mail → confirm → sign-in, enumeration safety, password rehash."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client

from kartu.accounts.tests.conftest import PASSWORD, last_link, login, make_member, solved

pytestmark = pytest.mark.django_db


def signup(client: Client, email: str, **extra: str):  # type: ignore[no-untyped-def]
    return client.post("/akun/signup/", {"email": email, "password1": PASSWORD,
                                         "password2": PASSWORD, "altcha": solved(), **extra})


def test_signup_verify_then_sign_in(client: Client) -> None:
    page = client.get("/akun/signup/")
    assert page.status_code == 200
    html = page.content.decode()
    for name in ("email", "password1", "password2"):
        assert f'<label for="id_{name}">' in html
    response = signup(client, "budi@contoh.id")
    assert response.status_code == 302 and response["Location"] == "/akun/confirm-email/"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["budi@contoh.id"]
    confirm_url = last_link(mail.outbox[0].body)
    assert confirm_url.startswith("/akun/confirm-email/")

    # not verified yet: signing in only re-sends the verification mail
    client.logout()
    login(client, "budi@contoh.id")
    assert "_auth_user_id" not in client.session

    assert client.get(confirm_url).status_code == 200
    confirmed = client.post(confirm_url)
    assert confirmed.status_code == 302
    assert EmailAddress.objects.get(email="budi@contoh.id").verified

    signed_in = login(client, "budi@contoh.id")
    assert signed_in.status_code == 302 and signed_in["Location"] == "/akun/"
    dashboard = client.get("/akun/")
    assert dashboard.status_code == 200
    assert "Hubungkan akun dengan data kepesertaan" in dashboard.content.decode()


def test_signup_fields_show_errors_in_the_members_language(client: Client) -> None:
    response = client.post("/akun/signup/", {"email": "bukan-email", "password1": "123",
                                             "password2": "456", "altcha": solved()})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'aria-invalid="true"' in html and 'id="id_email-error"' in html
    client.cookies["django_language"] = "en"
    english = client.post("/akun/signup/", {"email": "bukan-email", "password1": "123",
                                            "password2": "456", "altcha": solved()})
    assert "Enter a valid email address." in english.content.decode()


def _normalise(html: str, email: str) -> str:
    html = html.replace(email, "EMAIL")
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


def test_signup_does_not_reveal_whether_an_email_is_registered(client: Client) -> None:
    make_member("ada@contoh.id")
    taken = signup(Client(), "ada@contoh.id")
    fresh_client = Client()
    fresh = signup(fresh_client, "baru@contoh.id")
    assert (taken.status_code, taken["Location"]) == (fresh.status_code, fresh["Location"])
    assert User.objects.filter(email="ada@contoh.id").count() == 1
    # each address gets exactly one mail: a verification link, or "you already have an account"
    assert sorted(m.to[0] for m in mail.outbox) == ["ada@contoh.id", "baru@contoh.id"]
    page_taken = Client().get(taken["Location"]).content.decode()
    page_fresh = Client().get(fresh["Location"]).content.decode()
    assert _normalise(page_taken, "ada@contoh.id") == _normalise(page_fresh, "baru@contoh.id")


def test_password_reset_does_not_reveal_whether_an_email_is_registered(client: Client) -> None:
    make_member("ada@contoh.id")
    known = Client().post("/akun/password/reset/", {"email": "ada@contoh.id",
                                                    "altcha": solved()})
    unknown = Client().post("/akun/password/reset/", {"email": "tidak@contoh.id",
                                                      "altcha": solved()})
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"] == "/akun/password/reset/done/"
    assert sorted(m.to[0] for m in mail.outbox) == ["ada@contoh.id", "tidak@contoh.id"]


def test_password_reset_needs_the_robot_check(client: Client) -> None:
    make_member("ada@contoh.id")
    response = client.post("/akun/password/reset/", {"email": "ada@contoh.id"})
    assert response.status_code == 200 and not mail.outbox


def test_password_reset_by_mail(client: Client) -> None:
    make_member("ada@contoh.id")
    client.post("/akun/password/reset/", {"email": "ada@contoh.id", "altcha": solved()})
    link = last_link(mail.outbox[0].body)
    form_page = client.get(link, follow=True)
    action = form_page.redirect_chain[-1][0] if form_page.redirect_chain else link
    done = client.post(action, {"password1": "kata-sandi-baru-yang-panjang",
                                "password2": "kata-sandi-baru-yang-panjang"})
    assert done.status_code == 302
    assert login(Client(), "ada@contoh.id", "kata-sandi-baru-yang-panjang").status_code == 302


def _settings_under(tmp_path, **env: str) -> list[object]:  # type: ignore[no-untyped-def]
    """ACCOUNT_DEFAULT_HTTP_PROTOCOL and SECURE_PROXY_SSL_HEADER as kartu's settings make them
    from this environment (a fresh interpreter: settings are read once, at import)."""
    code = ("import json, kartu.settings as s; print(json.dumps([s.ACCOUNT_DEFAULT_HTTP_PROTOCOL,"
            " getattr(s, 'SECURE_PROXY_SSL_HEADER', None)]))")
    clean = {k: v for k, v in os.environ.items()
             if k not in ("KARTU_PUBLIC_URL", "KARTU_TRUST_FORWARDED_PROTO")}
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env={**clean, "KARTU_DATA_DIR": str(tmp_path), **env})
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def test_mails_link_to_https_under_an_https_public_url(client: Client, settings,
                                                       tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Behind a TLS-terminating proxy the request is plain http; the reset link must not be."""
    protocol, proxy_header = _settings_under(tmp_path, KARTU_PUBLIC_URL="https://kartu.contoh.id")
    assert (protocol, proxy_header) == ("https", None)
    assert _settings_under(tmp_path, KARTU_PUBLIC_URL="http://127.0.0.1:8000")[0] == "http"
    assert _settings_under(tmp_path, KARTU_PUBLIC_URL="https://kartu.contoh.id",
                           KARTU_TRUST_FORWARDED_PROTO="1")[1] == ["HTTP_X_FORWARDED_PROTO",
                                                                   "https"]
    settings.ACCOUNT_DEFAULT_HTTP_PROTOCOL = protocol
    make_member("ada@contoh.id")
    client.post("/akun/password/reset/", {"email": "ada@contoh.id", "altcha": solved()})
    assert re.search(r"https://testserver/akun/password/reset/key/\S+", mail.outbox[0].body)
    assert "http://" not in mail.outbox[0].body


ARGON2_OWASP = "argon2$argon2id$v=19$m=19456,t=2,p=1$"


@pytest.mark.parametrize("old_hasher", ["pbkdf2_sha256", "django-argon2-default"])
def test_older_hashes_are_upgraded_to_argon2id_owasp_on_login(
    client: Client, settings, old_hasher: str  # type: ignore[no-untyped-def]
) -> None:
    settings.PASSWORD_HASHERS = [
        "kartu.core.hashers.Argon2idOwaspHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
    user = make_member("lama@contoh.id")
    if old_hasher == "pbkdf2_sha256":
        user.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    else:
        from django.contrib.auth.hashers import Argon2PasswordHasher

        user.password = Argon2PasswordHasher().encode(PASSWORD, "c2FsdHNhbHRzYWx0")
        assert "m=102400,t=2,p=8" in user.password
    user.save()
    assert login(client, "lama@contoh.id").status_code == 302
    user.refresh_from_db()
    assert user.password.startswith(ARGON2_OWASP)
    assert user.check_password(PASSWORD)


def test_login_page_offers_a_passkey_and_the_language_switch(client: Client) -> None:
    html = client.get("/akun/login/").content.decode()
    assert 'id="passkey_login"' in html
    assert 'name="language"' in html and '<html lang="id">' in html


def _language_form(html: str) -> str:
    start = html.index('<form action="/i18n/setlang/"')
    return html[start:html.index("</form>", start)]


@pytest.mark.parametrize("language", ["id", "en"])
def test_the_language_switch_submits_by_button_and_names_each_language_in_itself(
    client: Client, language: str
) -> None:
    """WCAG 3.2.2: choosing an option changes nothing until the button is pressed; the options
    read "Bahasa Indonesia" and "English" whatever the page's language, each marked with lang;
    the reader comes back to the page they were on."""
    client.cookies["django_language"] = language
    form = _language_form(client.get("/akun/login/?next=/akun/").content.decode())
    assert "onchange" not in form and "<noscript>" not in form
    assert re.search(r'<button type="submit">[^<]+</button>', form)
    selected = {"id": "", "en": ""} | {language: " selected"}
    assert f'<option value="id" lang="id"{selected["id"]}>Bahasa Indonesia</option>' in form
    assert f'<option value="en" lang="en"{selected["en"]}>English</option>' in form
    assert '<input name="next" type="hidden" value="/akun/login/?next=/akun/">' in form
    switched = client.post("/i18n/setlang/", {"language": "en" if language == "id" else "id",
                                              "next": "/akun/login/?next=/akun/"})
    assert switched.status_code == 302 and switched["Location"] == "/akun/login/?next=/akun/"


def test_logout_needs_a_post(member_client: Client) -> None:
    assert member_client.get("/akun/logout/").status_code == 200  # a confirmation page
    assert "_auth_user_id" in member_client.session
    member_client.post("/akun/logout/")
    assert "_auth_user_id" not in member_client.session


def test_account_pages_need_a_csrf_token(member) -> None:  # type: ignore[no-untyped-def]
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member)
    assert strict.post("/akun/hubungkan/", {}).status_code == 403
    assert strict.post("/akun/logout/").status_code == 403
