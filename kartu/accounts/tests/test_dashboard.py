"""Dashboard, the member's own audit, Kartu Digital, active sessions."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from kartu.accounts.models import Link
from kartu.accounts.tests.conftest import PASSWORD, login, make_member
from kartu.registry import services as registry
from kartu.registry.models import Person

pytestmark = pytest.mark.django_db

SITI_NIK = "3174055708900003"


@pytest.fixture
def linked(member_client: Client, member: User, loaded_registry) -> Client:  # type: ignore[no-untyped-def]
    person = registry.find_person(SITI_NIK)
    assert person is not None
    Link.objects.create(user=member, person=person, state=Link.State.LINKED)
    return member_client


def test_the_dashboard_shows_memberships_and_who_looked_up_my_number(
    linked: Client,  # type: ignore[no-untyped-def]
) -> None:
    # someone asked through the web chat and an agent verified: both appear, anonymously
    claim = registry.parse_claim(nik=SITI_NIK, full_name="Siti Nurhaliza",
                                 birth_place="Jakarta", birth_date="1990-08-17")
    registry.verify_identity(claim, "webchat:sender-abc")
    registry.verify_identity(claim, "agent:ani", agent="ani")
    wrong = registry.parse_claim(nik=SITI_NIK, full_name="Orang Lain", birth_place="Jakarta",
                                 birth_date="1990-08-17")
    registry.verify_identity(wrong, "email:penipu@contoh.id")
    html = linked.get("/akun/").content.decode()
    assert "SITI NURHALIZA" in html and "************0003" in html
    for text in ("12345678901", "PT MAJU JAYA", "nonaktif", "10987654321", "aktif"):
        assert text in html
    assert "Chat di situs web" in html and "Petugas layanan" in html and "Email" in html
    assert "Nomor KPJ diberikan" in html and "Data tidak cocok" in html
    # never the other party's data
    for secret in ("sender-abc", "penipu", "ani", "webchat:#", "email:#"):
        assert secret not in html


def test_the_dashboard_in_english(linked: Client) -> None:
    linked.cookies["django_language"] = "en"
    html = linked.get("/akun/").content.decode()
    assert "Memberships" in html and "Who looked up my number" in html


def test_another_persons_data_is_never_shown(client: Client, loaded_registry) -> None:  # type: ignore[no-untyped-def]
    client.force_login(make_member("lain@contoh.id"))
    html = client.get("/akun/").content.decode()
    assert "12345678901" not in html and "SITI" not in html


def test_sessions_list_and_end_another_session(member: User) -> None:
    laptop, phone = Client(HTTP_USER_AGENT="Laptop"), Client(HTTP_USER_AGENT="Ponsel")
    for c in (laptop, phone):
        assert login(c, member.email).status_code == 302
    page = laptop.get("/akun/sesi/").content.decode()
    assert "Laptop" in page and "Ponsel" in page and "Sesi ini" in page
    from allauth.usersessions.models import UserSession

    other = UserSession.objects.get(user=member, user_agent="Ponsel")
    assert phone.get("/akun/").status_code == 200
    ended = laptop.post(f"/akun/sesi/{other.pk}/akhiri/")
    assert ended.status_code == 302
    assert phone.get("/akun/")["Location"].startswith("/akun/login/")
    assert laptop.get("/akun/").status_code == 200


def test_a_member_cannot_end_someone_elses_session(member: User) -> None:
    from allauth.usersessions.models import UserSession

    victim, attacker = Client(), Client()
    make_member("korban@contoh.id")
    assert login(victim, "korban@contoh.id").status_code == 302
    attacker.force_login(member)
    session = UserSession.objects.get(user__email="korban@contoh.id")
    assert attacker.post(f"/akun/sesi/{session.pk}/akhiri/").status_code == 404
    assert victim.get("/akun/").status_code == 200


# --- Kartu Digital (kartu.card) ------------------------------------------------------------------


def test_the_card_page_shows_one_card_per_membership(linked: Client) -> None:
    html = linked.get("/akun/kartu/").content.decode()
    assert html.count('class="kartu-card') >= 2
    assert "12345678901" in html and "10987654321" in html
    assert SITI_NIK not in html and "************0003" in html
    person = Person.objects.get(memberships__kpj="12345678901")
    membership = person.memberships.get(kpj="12345678901")
    assert f"/akun/kartu/{membership.pk}/kartu.png" in html


def test_card_downloads(linked: Client) -> None:
    membership = Person.objects.get(memberships__kpj="12345678901")\
        .memberships.get(kpj="12345678901")
    png = linked.get(f"/akun/kartu/{membership.pk}/kartu.png")
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    assert png.content.startswith(b"\x89PNG") and "attachment" in png["Content-Disposition"]
    pdf = linked.get(f"/akun/kartu/{membership.pk}/kartu.pdf?ukuran=id1")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_someone_elses_card_cannot_be_downloaded(linked: Client) -> None:
    rizki = Person.objects.get(memberships__kpj="11122233344").memberships.get()
    assert linked.get(f"/akun/kartu/{rizki.pk}/kartu.png").status_code == 404


def test_revealing_the_nik_needs_a_recent_password_and_is_audited(
    linked: Client, member: User  # type: ignore[no-untyped-def]
) -> None:
    from kartu.registry.models import AuditEvent

    assert linked.get("/akun/kartu/nik/").status_code == 405
    first = linked.post("/akun/kartu/nik/")
    assert first.status_code == 302 and first["Location"].startswith("/akun/reauthenticate/")
    assert not AuditEvent.objects.filter(reason="nik_reveal").exists()
    again = linked.post(first["Location"], {"password": PASSWORD})
    # allauth replays the suspended POST after the password: the NIK is shown once
    html = again.content.decode() if again.status_code == 200 else \
        linked.post("/akun/kartu/nik/").content.decode()
    assert SITI_NIK in html
    assert AuditEvent.objects.filter(reason="nik_reveal", channel="account").count() == 1
    assert SITI_NIK not in linked.get("/akun/kartu/").content.decode()


def test_signing_in_records_the_session_without_walking_the_old_ones(member: User) -> None:
    """allauth's own receiver re-read every earlier session of the member at each sign-in;
    kartu's records the new one only, and stale rows go when the list is opened or the daily
    job runs."""
    from allauth.usersessions.models import UserSession
    from django.contrib.sessions.models import Session
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from kartu.accounts.jobs import purge_user_sessions

    old = [Client(HTTP_USER_AGENT=f"Lama {i}") for i in range(3)]
    for c in old:
        assert login(c, member.email).status_code == 302
    Session.objects.filter(
        session_key=old[0].session.session_key).delete()  # that session ended elsewhere
    with CaptureQueriesContext(connection) as few:
        assert login(Client(HTTP_USER_AGENT="Baru"), member.email).status_code == 302
    assert not [q for q in few.captured_queries if "django_session" in q["sql"]
                and old[1].session.session_key in q["sql"]]
    assert UserSession.objects.filter(user=member).count() == 4  # the stale one is still listed
    assert purge_user_sessions() == 1
    assert sorted(UserSession.objects.filter(user=member).values_list("user_agent", flat=True)) \
        == ["Baru", "Lama 1", "Lama 2"]
    assert purge_user_sessions() == 0
