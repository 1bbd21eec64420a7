"""Staff (agents, operators) need a second factor before the inbox works."""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, hotp_value
from django.contrib.auth.models import User
from django.test import Client

from kartu.desk.tests.conftest import make_agent

pytestmark = pytest.mark.django_db

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture(autouse=True)
def _require_mfa(settings) -> None:  # type: ignore[no-untyped-def]
    settings.KARTU_REQUIRE_STAFF_MFA = True


def current_code(secret: str = SECRET) -> str:
    import time

    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def test_an_agent_without_an_authenticator_is_sent_to_mfa_setup(client: Client) -> None:
    client.force_login(make_agent())
    response = client.get("/desk/")
    assert response.status_code == 302 and response["Location"] == "/akun/2fa/"
    page = client.get("/akun/2fa/").content.decode()
    assert "verifikasi dua langkah" in page.lower()


def test_staff_and_superusers_too(client: Client) -> None:
    client.force_login(User.objects.create_user("staf", password="x" * 12, is_staff=True))
    assert client.get("/desk/")["Location"] == "/akun/2fa/"
    assert client.get("/admin/")["Location"] == "/akun/2fa/"


def test_a_password_only_session_must_confirm_the_second_factor(client: Client) -> None:
    agent = make_agent()
    TOTP.activate(agent, SECRET)
    assert client.post("/desk/login/", {"username": "ani",
                                        "password": "kata-sandi-panjang-1"}).status_code == 302
    response = client.get("/desk/?status=waiting")
    assert response.status_code == 302
    assert response["Location"] == "/akun/2fa/reauthenticate/?next=%2Fdesk%2F%3Fstatus%3Dwaiting"
    wrong = client.post(response["Location"], {"code": "000000"})
    assert wrong.status_code == 200
    ok = client.post(response["Location"], {"code": current_code()})
    assert ok.status_code == 302 and ok["Location"] == "/desk/?status=waiting"
    assert client.get("/desk/").status_code == 200


@pytest.mark.django_db(transaction=True)  # allauth sends authenticator_added on commit
def test_setting_up_totp_lets_a_new_agent_in(client: Client) -> None:
    agent = make_agent()
    client.force_login(agent)
    client.post("/akun/reauthenticate/", {"password": "kata-sandi-panjang-1"})
    page = client.get("/akun/2fa/totp/activate/")
    assert page.status_code == 200
    secret = page.context["form"].secret
    done = client.post("/akun/2fa/totp/activate/", {"code": current_code(secret)})
    assert done.status_code == 302
    assert Authenticator.objects.filter(user=agent, type="totp").exists()
    assert client.get("/desk/").status_code == 200


def test_members_are_not_asked(client: Client) -> None:
    from kartu.accounts.tests.conftest import make_member

    client.force_login(make_member())
    assert client.get("/akun/").status_code == 200
    assert client.get("/desk/").status_code == 403
