"""“Saya bukan robot”: real challenges solved by brute force, nothing mocked out."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import textwrap
import time

import pytest
from django.test import Client

from kartu.accounts import altcha
from kartu.accounts.tests.conftest import PASSWORD, login, make_member, solved

pytestmark = pytest.mark.django_db


def _edit(payload: str, **changes: object) -> str:
    data = json.loads(base64.b64decode(payload))
    data.update(changes)
    return base64.b64encode(json.dumps(data).encode()).decode()


def test_the_challenge_endpoint_issues_signed_expiring_challenges(client: Client) -> None:
    response = client.get("/akun/altcha/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    challenge = response.json()
    assert set(challenge) == {"algorithm", "challenge", "maxNumber", "salt", "signature"}
    assert challenge["maxNumber"] == 50_000 and "expires=" in challenge["salt"]
    # the widget's work: a solution of the served challenge is accepted once
    altcha.consume(altcha.solve(challenge))


def test_a_solution_is_accepted_once() -> None:
    payload = solved()
    altcha.consume(payload)
    with pytest.raises(altcha.Rejected) as err:
        altcha.consume(payload)
    assert err.value.reason == "replayed"


@pytest.mark.parametrize("mangle", ["missing", "garbage", "not_json", "wrong_number",
                                    "forged_signature", "other_key", "no_expiry"])
def test_bad_solutions_are_refused(mangle: str, settings) -> None:  # type: ignore[no-untyped-def]
    payload = solved()
    bad = {
        "missing": "",
        "garbage": "%%%not-base64%%%",
        "not_json": base64.b64encode(b"[1, 2, 3]").decode(),
        "wrong_number": _edit(payload, number=json.loads(base64.b64decode(payload))["number"] + 1),
        "forged_signature": _edit(payload, signature="0" * 64),
        "other_key": "",
        "no_expiry": "",
    }[mangle]
    if mangle == "other_key":
        settings.ALTCHA_HMAC_KEY = "another-key"
        bad = payload
    if mangle == "no_expiry":
        import altcha as lib

        challenge = lib.create_challenge(hmac_key=altcha.hmac_key(), max_number=1000).to_dict()
        bad = altcha.solve(challenge)
    with pytest.raises(altcha.Rejected):
        altcha.consume(bad)


def test_an_expired_solution_is_refused(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    payload = solved()
    later = time.time() + altcha.lifetime() + 1
    monkeypatch.setattr(altcha.time, "time", lambda: later)
    with pytest.raises(altcha.Rejected) as err:
        altcha.consume(payload)
    assert err.value.reason == "expired"


def test_the_login_form_refuses_missing_invalid_and_replayed_solutions(client: Client) -> None:
    user = make_member("ani@contoh.id")
    missing = client.post("/akun/login/", {"login": "ani@contoh.id", "password": PASSWORD})
    assert missing.status_code == 200
    assert "Centang kotak “Saya bukan robot”" in missing.content.decode()
    invalid = login(client, "ani@contoh.id", altcha=_edit(solved(), signature="f" * 64))
    assert invalid.status_code == 200 and "tidak valid" in invalid.content.decode()
    payload = solved()
    ok = client.post("/akun/login/", {"login": "ani@contoh.id", "password": PASSWORD,
                                      "altcha": payload})
    assert ok.status_code == 302
    client.logout()
    replay = client.post("/akun/login/", {"login": "ani@contoh.id", "password": PASSWORD,
                                          "altcha": payload})
    assert replay.status_code == 200 and "sudah dipakai" in replay.content.decode()
    assert "_auth_user_id" not in client.session
    assert user.pk


def test_the_error_is_in_the_members_language(client: Client) -> None:
    client.cookies["django_language"] = "en"
    page = client.post("/akun/login/", {"login": "x@contoh.id", "password": "x"})
    assert "Tick “I am not a robot” first" in page.content.decode()


def test_pages_carry_the_self_hosted_widget(client: Client) -> None:
    for url in ("/akun/login/", "/akun/signup/", "/akun/password/reset/"):
        page = client.get(url).content.decode()
        assert "<altcha-widget" in page and 'challengeurl="/akun/altcha/"' in page, url
        assert "/static/altcha/altcha.min.js" in page, url
        assert not re.search(r'<script[^>]+src="(https?:)?//', page), url  # nothing off-site
        assert "<noscript>" in page


def test_the_error_is_tied_to_the_widget(client: Client) -> None:
    """The field's aria-invalid and aria-describedby reach <altcha-widget> (and, by its script,
    the checkbox it draws), naming the error text's id."""
    page = client.post("/akun/login/", {"login": "x@contoh.id", "password": "x"})
    html = page.content.decode()
    widget = re.search(r"<altcha-widget[^>]*>", html)
    assert widget, html
    assert 'aria-invalid="true"' in widget.group(0)
    described = re.search(r'aria-describedby="([^"]+)"', widget.group(0))
    assert described and 'id="id_altcha"' in widget.group(0)
    for ref in described.group(1).split():
        assert f'id="{ref}"' in html
    error = re.search(rf'id="{described.group(1)}"[^>]*>(.*?)</ul>', html, re.S)
    assert error and "Saya bukan robot" in error.group(1)
    assert 'getElementById("id_altcha")' in html  # hands them on to the checkbox
    fresh = client.get("/akun/login/").content.decode()
    assert "aria-invalid" not in re.search(r"<altcha-widget[^>]*>", fresh).group(0)  # type: ignore[union-attr]


_WORKER = textwrap.dedent("""
    import sys
    import django
    from django.conf import settings
    settings.configure(
        INSTALLED_APPS=[], SECRET_KEY="x", ALTCHA_HMAC_KEY="shared-key", USE_TZ=True,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": sys.argv[1]}},
        CACHES={"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache",
                            "LOCATION": "kartu_cache"}},
    )
    django.setup()
    from kartu.accounts import altcha
    try:
        altcha.consume(sys.argv[2])
    except altcha.Rejected as exc:
        print(exc.reason)
    else:
        print("accepted")
""")


def test_replay_is_refused_across_processes(tmp_path, settings) -> None:  # type: ignore[no-untyped-def]
    """Two separate processes sharing the database cache: the second one refuses."""
    db = tmp_path / "shared.sqlite3"
    setup = _WORKER.split("from kartu.accounts")[0] + (
        "from django.core.management import call_command\n"
        "call_command('createcachetable', verbosity=0)\n"
    )
    subprocess.run([sys.executable, "-c", setup, str(db), ""], check=True)
    settings.ALTCHA_HMAC_KEY = "shared-key"
    payload = solved()
    results = [
        subprocess.run([sys.executable, "-c", _WORKER, str(db), payload], check=True,
                       capture_output=True, text=True).stdout.strip()
        for _ in range(2)
    ]
    assert results == ["accepted", "replayed"]
