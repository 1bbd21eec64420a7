"""The one verification rule: matching, equal treatment of wrong guesses, limits, locks, audit."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kartu.registry import services
from kartu.registry.models import AuditEvent, NikLock

pytestmark = [pytest.mark.django_db, pytest.mark.backends]

SITI = dict(nik="3174055708900003", full_name="Siti Nurhaliza", birth_place="Jakarta",
            birth_date="1990-08-17")
RIZKI = dict(nik="3505120910770018", full_name="Muhammad Rizki", birth_place="Blitar",
             birth_date="1977-10-09")


def verify(requester: str = "email:siti@contoh.id", **fields: str) -> services.Verification:
    claim = services.parse_claim(**fields)  # type: ignore[arg-type]
    return services.verify_identity(claim, requester)


def test_verified_person_gets_every_kpj_with_employer_and_status(loaded_registry):
    result = verify(**SITI)
    assert result.verified and not result.limited
    assert result.kpj == ["10987654321", "12345678901"]
    assert result.public_dict()["memberships"] == [
        {"kpj": "10987654321", "employer": "PT SINAR ABADI", "status": "aktif"},
        {"kpj": "12345678901", "employer": "PT MAJU JAYA", "status": "nonaktif"},
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nik", "3174.0557-0890 0003"),
        ("full_name", "Hj. SITI  NURHALIZA, S.Pd."),
        ("full_name", "siti nurhalisa"),  # one typo in a long name
        ("birth_place", "Kota Jakarta"),
        ("birth_place", "jakrta"),  # one typo in the place
    ],
)
def test_tolerated_differences_still_verify(loaded_registry, field, value):
    assert verify(**{**SITI, field: value}).verified


def test_muhammad_spellings_are_one_name(loaded_registry):
    for spelling in ("M. Rizki", "Moch. Rizki", "Mochammad Rizki", "MUHAMAD RIZKI"):
        assert verify(requester=f"email:{spelling}@x.id", **{**RIZKI, "full_name": spelling})\
            .verified, spelling


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("full_name", "Siti Aminah", "name_mismatch"),
        ("full_name", "Siti", "name_mismatch"),
        ("birth_place", "Bandung", "place_mismatch"),
        ("birth_date", "1990-08-18", "dob_mismatch"),
        ("nik", "3174055708900004", "nik_unknown"),
    ],
)
def test_a_wrong_field_is_refused_with_the_same_public_answer(loaded_registry, field, value,
                                                              reason):
    result = verify(**{**SITI, field: value})
    assert not result.verified
    assert result.reason == reason
    assert result.public_dict() == {"verified": False, "kpj": [], "memberships": [],
                                    "limited": False}


def _shape(sql: str) -> str:
    """An SQL statement with its literal values removed."""
    return re.sub(r"'[^']*'|\"s\d+_x\d+\"|\b\d+\b|\bNULL\b|x'[0-9a-f]*'", "?", sql)


def test_unknown_nik_and_wrong_birth_date_do_the_same_queries(loaded_registry):
    verify(requester="email:warm@x.id", **SITI)  # the first audit record creates the head row
    with CaptureQueriesContext(connection) as unknown:
        verify(requester="email:a@x.id", **{**SITI, "nik": "3174055708900004"})
    with CaptureQueriesContext(connection) as wrong_dob:
        verify(requester="email:b@x.id", **{**SITI, "birth_date": "1990-08-18"})
    assert [_shape(q["sql"]) for q in unknown.captured_queries] == [
        _shape(q["sql"]) for q in wrong_dob.captured_queries
    ]


def test_member_requester_is_limited_after_five_attempts_per_hour(loaded_registry):
    # five different (unknown) NIKs, so the per-NIK lock plays no part
    results = [verify(requester="messenger:123", **{**SITI, "nik": f"31740557089000{10 + i}"})
               for i in range(5)]
    assert [r.limited for r in results] == [False] * 5
    sixth = verify(requester="messenger:123", **RIZKI)
    assert sixth.limited and not sixth.verified and sixth.reason == "requester_limit"
    assert sixth.retry_after > 0
    assert verify(requester="messenger:456", **RIZKI).verified


def test_staff_keys_have_their_own_higher_limit(loaded_registry, settings):
    settings.KARTU_LIMITS = {**settings.KARTU_LIMITS, "staff": (8, 3600)}
    outcomes = [verify(requester="agent:budi", **RIZKI).limited for _ in range(9)]
    assert outcomes == [False] * 8 + [True]


def test_three_failures_lock_the_nik_across_channels_until_cleared(loaded_registry):
    for requester in ("email:a@x.id", "messenger:1", "x:2"):
        assert not verify(requester=requester, **{**SITI, "birth_place": "Medan"}).verified
    assert NikLock.objects.count() == 1
    locked = verify(requester="webchat:new", **SITI)  # right data, but locked
    assert locked.limited and not locked.verified and locked.reason == "nik_locked"
    assert services.is_locked(SITI["nik"])
    assert services.clear_nik_lock(SITI["nik"], by="agent:dewi")
    assert verify(requester="webchat:new", **SITI).verified
    unlock = AuditEvent.objects.get(action=AuditEvent.Action.UNLOCK)
    assert unlock.agent == "dewi"


def test_unknown_niks_are_locked_too(loaded_registry):
    unknown = {**SITI, "nik": "3174055708900004"}
    for i in range(3):
        verify(requester=f"email:{i}@x.id", **unknown)
    assert verify(requester="email:9@x.id", **unknown).reason == "nik_locked"


def test_every_attempt_is_audited_and_a_disclosure_names_the_memberships(loaded_registry):
    verify(requester="email:siti@contoh.id", **{**SITI, "birth_place": "Medan"})
    ok = verify(requester="email:siti@contoh.id", **SITI)
    events = list(AuditEvent.objects.order_by("pk"))
    assert [(e.action, e.outcome, e.reason) for e in events] == [
        ("verify", "not_verified", "place_mismatch"),
        ("disclose", "disclosed", ""),
    ]
    assert events[1].pk == ok.audit_id
    assert len(events[1].memberships.split(",")) == 2
    assert events[0].person_id == events[1].person_id == ok.person_id
    assert events[0].channel == "email"
    # the member's address is pseudonymised in the audit, never stored
    assert "siti@contoh.id" not in events[0].requester_ref
    assert events[0].requester_ref.startswith("email:#")


def test_verify_without_disclosure_then_record_it_later(loaded_registry):
    result = services.verify_identity(services.parse_claim(**SITI), "email:s@x.id",
                                      disclose=False)
    assert result.verified
    assert AuditEvent.objects.get().outcome == "verified"
    services.record_disclosure(result, "email:s@x.id", reason="otp_confirmed")
    assert AuditEvent.objects.order_by("-pk").first().outcome == "disclosed"


def test_phone_factor_set(loaded_registry):
    def by_phone(phone: str) -> services.Verification:
        claim = services.parse_claim(nik=SITI["nik"], birth_date=SITI["birth_date"],
                                     phone=phone, factors="phone")
        return services.verify_identity(claim, f"phone:{phone}")

    assert by_phone("+62 812-3456-7890").verified
    assert by_phone("0812 3456 7899").reason == "phone_mismatch"
    rizki = services.parse_claim(nik=RIZKI["nik"], birth_date=RIZKI["birth_date"],
                                 phone="081200000000", factors="phone")
    assert services.verify_identity(rizki, "phone:+6281200000000").reason == "phone_mismatch"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({**SITI, "nik": "317405570890000"}, "nik"),
        ({**SITI, "nik": "31740557089000031"}, "nik"),
        ({**SITI, "nik": "9974055708900003"}, "nik"),
        ({**SITI, "birth_date": "17-08-1990"}, "birth_date"),
        ({**SITI, "birth_date": "1990-02-30"}, "birth_date"),
        ({**SITI, "birth_date": "19900817"}, "birth_date"),  # fromisoformat would take these
        ({**SITI, "birth_date": "1990-W33-5"}, "birth_date"),
        ({**SITI, "birth_date": "2090-08-17"}, "birth_date"),  # in the future
        ({**SITI, "birth_date": date(2090, 8, 17)}, "birth_date"),
        ({**SITI, "full_name": "  "}, "full_name"),
        ({**SITI, "birth_place": ""}, "birth_place"),
    ],
)
def test_malformed_claims_are_rejected_before_the_registry_is_touched(fields, field):
    with pytest.raises(services.InvalidClaim) as exc:
        services.parse_claim(**fields)
    assert exc.value.field == field
    assert AuditEvent.objects.count() == 0


def test_claim_dates_may_be_date_objects():
    claim = services.parse_claim(**{**SITI, "birth_date": date(1990, 8, 17)})
    assert claim.birth_date == date(1990, 8, 17)


def test_a_disclosure_is_not_recorded_once_the_nik_is_locked_after_the_lookup(
    loaded_registry, monkeypatch
):
    """A concurrent failed attempt may lock the NIK between this call's lookup and its write:
    the disclosure must then not happen (the write checks the lock atomically)."""
    real_lookup = services._lookup

    def lookup_then_locked_elsewhere(indexes, ring, *hit):
        result = real_lookup(indexes, ring, *hit)
        NikLock.objects.create(nik_index=indexes[0])  # the other attempt, committed meanwhile
        return result

    monkeypatch.setattr(services, "_lookup", lookup_then_locked_elsewhere)
    result = verify(**SITI)
    assert not result.verified and result.limited and result.reason == "nik_locked"
    assert result.kpj == []
    outcomes = list(AuditEvent.objects.values_list("action", "outcome", "reason"))
    assert outcomes == [("verify", "limited", "nik_locked")]


def test_hot_path_statements_are_prepared_on_postgresql(loaded_registry):
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are a PostgreSQL feature")
    verify(**SITI)
    verify(**{**SITI, "birth_date": "1990-08-18"})
    with connection.cursor() as cur:
        cur.execute("SELECT statement FROM pg_prepared_statements")
        prepared = " ".join(row[0] for row in cur.fetchall())
    assert "kartu_audit_append" in prepared
    assert "registry_membership" in prepared  # the lookup
    assert "core_ratecounter" in prepared  # the database rate-limit counter


def test_verification_works_without_prepared_statements(loaded_registry, monkeypatch):
    """KARTU_DB_PREPARE=0 (a pooler without prepared-statement support): the same statements
    through Django's client-side cursors."""
    from kartu.core import sql

    monkeypatch.setattr(sql, "_prepare_enabled", lambda: False)
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("DEALLOCATE ALL")
    assert verify(**SITI).verified
    assert not verify(**{**SITI, "birth_date": "1990-08-18"}).verified
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_prepared_statements")
            assert cur.fetchone() == (0,)
