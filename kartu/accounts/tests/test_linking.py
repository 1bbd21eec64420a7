"""Linking an account to its person: identity match, then a code to the contact on file."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from kartu.accounts.models import Link
from kartu.accounts.tests.conftest import code_from_outbox, make_member, solved
from kartu.registry.models import AuditEvent

pytestmark = pytest.mark.django_db

SITI = {"nik": "3174055708900003", "full_name": "Siti Nurhaliza", "birth_place": "Jakarta",
        "birth_date": "1990-08-17"}
RIZKI = {"nik": "3505120910770018", "full_name": "Muhammad Rizki", "birth_place": "Blitar",
         "birth_date": "1977-10-09"}
NEUTRAL = "tidak cocok dengan data kepesertaan kami"


def claim(client: Client, data: dict[str, str], **extra: str):  # type: ignore[no-untyped-def]
    return client.post("/akun/hubungkan/", {**data, "altcha": solved(), **extra})


def link_siti(client: Client) -> None:
    response = claim(client, SITI)
    assert response.status_code == 302 and response["Location"] == "/akun/hubungkan/kode/"
    code = code_from_outbox("siti@contoh.id")
    done = client.post("/akun/hubungkan/kode/", {"code": code})
    assert done.status_code == 302 and done["Location"] == "/akun/"


def test_happy_path_with_the_code_from_the_registrys_email(
    member_client: Client, member, loaded_registry  # type: ignore[no-untyped-def]
) -> None:
    form = member_client.get("/akun/hubungkan/").content.decode()
    for name in ("nik", "full_name", "birth_place", "birth_date"):
        assert f'<label for="id_{name}">' in form
    response = claim(member_client, SITI)
    assert response.status_code == 302
    # the code went to the contact on file in the registry, not to the account's address
    assert [m.to for m in mail.outbox] == [["siti@contoh.id"]]
    page = member_client.get("/akun/hubungkan/kode/").content.decode()
    assert "s***@contoh.id" in page
    link = Link.objects.get(user=member)
    assert link.state == Link.State.PENDING_CODE
    # nothing is shown before the code
    assert "12345678901" not in member_client.get("/akun/").content.decode()
    assert member_client.get("/akun/kartu/").status_code == 302

    wrong = member_client.post("/akun/hubungkan/kode/", {"code": "000000"})
    assert wrong.status_code == 200 and "Kode salah" in wrong.content.decode()
    done = member_client.post("/akun/hubungkan/kode/",
                              {"code": code_from_outbox("siti@contoh.id")})
    assert done.status_code == 302
    link.refresh_from_db()
    assert link.state == Link.State.LINKED and link.confirmed_at is not None
    events = list(AuditEvent.objects.filter(person_id=link.person_id, channel="account")
                  .values_list("action", "outcome", "reason"))
    assert ("verify", "verified", "") in events  # the identity match, nothing disclosed
    assert ("verify", "not_verified", "code_wrong") in events
    assert ("disclose", "disclosed", "account_link") in events
    dashboard = member_client.get("/akun/").content.decode()
    assert "12345678901" in dashboard and "10987654321" in dashboard
    assert "PT SINAR ABADI" in dashboard


def test_a_wrong_identity_gets_a_neutral_error_and_is_audited(
    member_client: Client, member, loaded_registry  # type: ignore[no-untyped-def]
) -> None:
    pages = []
    for data in ({**SITI, "full_name": "Siti Aminah"}, {**SITI, "birth_place": "Bandung"},
                 {**SITI, "birth_date": "1990-08-18"}, {**SITI, "nik": "3174055708900011"}):
        response = claim(member_client, data)
        assert response.status_code == 200
        html = response.content.decode()
        assert NEUTRAL in html
        for word in ("nama", "tempat", "tanggal lahir salah", "NIK tidak"):
            assert f"{word} salah" not in html.lower()
        pages.append(html.count("field-error"))
    assert len(set(pages)) == 1  # the same shape whatever was wrong
    assert not mail.outbox and not Link.objects.exists()
    reasons = set(AuditEvent.objects.filter(channel="account", outcome="not_verified")
                  .values_list("reason", flat=True))
    assert {"name_mismatch", "place_mismatch", "dob_mismatch", "nik_unknown"} <= reasons


def test_a_malformed_nik_is_a_field_error(member_client: Client, loaded_registry) -> None:  # type: ignore[no-untyped-def]
    response = claim(member_client, {**SITI, "nik": "12345"})
    html = response.content.decode()
    assert 'id="id_nik-error"' in html and "NIK tidak valid" in html
    assert not AuditEvent.objects.exists()


def test_no_contact_on_file_links_pending_a_branch_visit(
    member_client: Client, member, loaded_registry  # type: ignore[no-untyped-def]
) -> None:
    response = claim(member_client, RIZKI)
    assert response.status_code == 302 and response["Location"] == "/akun/"
    assert not mail.outbox
    link = Link.objects.get(user=member)
    assert link.state == Link.State.PENDING_BRANCH
    page = member_client.get("/akun/").content.decode()
    assert "kantor cabang" in page and "11122233344" in page
    assert AuditEvent.objects.filter(person_id=link.person_id, action="disclose",
                                     reason="account_link").exists()


def test_a_second_claim_of_a_linked_person_is_refused_and_audited(
    member_client: Client, loaded_registry  # type: ignore[no-untyped-def]
) -> None:
    link_siti(member_client)
    other = Client()
    other.force_login(make_member("lain@contoh.id"))
    response = claim(other, SITI)
    html = response.content.decode()
    assert response.status_code == 200
    assert "sudah terhubung dengan akun lain" in html
    assert len(mail.outbox) == 1  # no code for the second claimant
    person_id = Link.objects.get(state="linked").person_id
    assert AuditEvent.objects.filter(person_id=person_id, channel="account",
                                     outcome="not_verified", reason="already_linked").exists()
    assert Link.objects.count() == 1


def test_a_strangers_unfinished_claim_does_not_lock_the_owner_out(
    member_client: Client, loaded_registry  # type: ignore[no-untyped-def]
) -> None:
    stranger = Client()
    stranger.force_login(make_member("penipu@contoh.id"))
    assert claim(stranger, SITI).status_code == 302  # pending: the code went to Siti
    link_siti(member_client)  # the owner gets a new code and confirms
    assert Link.objects.get(state="linked").user.email == "budi@contoh.id"
    # the stranger cannot finish any more: the person is taken
    assert stranger.post("/akun/hubungkan/kode/", {"code": "123456"}).status_code == 200


def mails_to(address: str) -> int:
    return sum(address in m.to for m in mail.outbox)


def test_a_stranger_cannot_void_the_owners_code(
    member_client: Client, loaded_registry  # type: ignore[no-untyped-def]
) -> None:
    """The code belongs to the person *and* the account: a stranger who knows Siti's details
    claims after her and types wrong codes until his own is void; hers still works, and the
    code sent for his claim does not confirm hers (nor hers his)."""
    assert claim(member_client, SITI).status_code == 302
    owners_code = code_from_outbox("siti@contoh.id")
    stranger = Client()
    stranger.force_login(make_member("penipu@contoh.id"))
    assert claim(stranger, SITI).status_code == 302  # a second code goes to Siti
    strangers_code = code_from_outbox("siti@contoh.id")
    wrong = next(c for c in ("000000", "111111", "222222")
                 if c not in (owners_code, strangers_code))
    for _ in range(5):
        stranger.post("/akun/hubungkan/kode/", {"code": wrong})
    assert stranger.post("/akun/hubungkan/kode/", {"code": owners_code}).status_code == 200
    if strangers_code != owners_code:  # two random codes collide once in a million
        assert member_client.post("/akun/hubungkan/kode/",
                                  {"code": strangers_code}).status_code == 200
    done = member_client.post("/akun/hubungkan/kode/", {"code": owners_code})
    assert done.status_code == 302 and done["Location"] == "/akun/"
    assert Link.objects.get(state="linked").user.email == "budi@contoh.id"


def test_codes_sent_to_one_person_stay_limited_whoever_asks(
    member_client: Client, loaded_registry  # type: ignore[no-untyped-def]
) -> None:
    """One account sends at most two codes an hour; every account together three, so Siti
    cannot be flooded, and one stranger's account cannot use up her hour by itself."""
    stranger = Client()
    stranger.force_login(make_member("penipu@contoh.id"))
    assert claim(stranger, SITI).status_code == 302
    stranger.post("/akun/hubungkan/kirim-ulang/")
    stranger.post("/akun/hubungkan/kirim-ulang/")  # refused: the account's two are used
    assert mails_to("siti@contoh.id") == 2
    link_siti(member_client)  # the owner still gets her code and links
    assert mails_to("siti@contoh.id") == 3
    third = Client()
    third.force_login(make_member("lain@contoh.id"))
    Link.objects.filter(state="linked").delete()  # free the person again
    response = claim(third, SITI)
    assert "Terlalu banyak kode" in response.content.decode()
    assert mails_to("siti@contoh.id") == 3


def test_linking_needs_the_robot_check(member_client: Client, loaded_registry) -> None:  # type: ignore[no-untyped-def]
    response = member_client.post("/akun/hubungkan/", SITI)
    assert response.status_code == 200 and "Saya bukan robot" in response.content.decode()
    assert not AuditEvent.objects.exists()


def test_linking_needs_an_account(client: Client) -> None:
    response = client.get("/akun/hubungkan/")
    assert response.status_code == 302 and response["Location"].startswith("/akun/login/")
