"""Issuing, re-issuing on data change, revoking; no personal data in the logs."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from kartu.card import qr, services
from kartu.card.models import Card
from kartu.registry.models import Membership, Person

pytestmark = pytest.mark.django_db


def test_current_card_is_stable(membership, card):  # type: ignore[no-untyped-def]
    again = services.current_card(membership)
    assert again.pk == card.pk
    assert Card.objects.filter(membership=membership).count() == 1
    assert card.expires_at - card.issued_at == timedelta(days=730)


def test_valid_days_is_configurable(membership, settings):  # type: ignore[no-untyped-def]
    settings.KARTU_CARD_VALID_DAYS = 90
    settings.KARTU_CARD_RENEW_DAYS = 10
    card = services.current_card(membership)
    assert card.expires_at - card.issued_at == timedelta(days=90)


def test_raw_sql_data_change_reissues_and_revokes(membership, card, qr_text):  # type: ignore[no-untyped-def]
    """The importer writes with raw SQL (no signals): the fingerprint notices."""
    with connection.cursor() as cur:
        cur.execute("UPDATE registry_person SET full_name = %s WHERE id = %s",
                    ["SITI NURHALIZA PUTRI", membership.person_id])
    fresh = services.current_card(Membership.objects.get(pk=membership.pk))
    assert fresh.pk != card.pk
    card.refresh_from_db()
    assert card.revoked_at is not None and card.revoked_reason == "data_changed"
    assert qr.verify(qr_text).status == "revoked"
    new = qr.verify(services.qr_text(fresh))
    assert new.status == "valid" and new.card and new.card["n"] == "SITI NURHALIZA PUTRI"


def test_status_change_reissues(membership, card):  # type: ignore[no-untyped-def]
    Membership.objects.filter(pk=membership.pk).update(status="nonaktif", programmes="JHT")
    fresh = services.current_card(membership)
    assert fresh.pk != card.pk
    view = services.card_view(fresh)
    assert view.status == "nonaktif" and view.programmes == ("JHT",) and not view.active


def test_importer_update_reissues(membership, card, tmp_path, person_rows):  # type: ignore[no-untyped-def]
    from kartu.registry.importer import import_csv, iter_csv_rows

    rows = [dict(r) for r in person_rows]
    rows[1]["employer"] = "PT BARU SEKALI"
    path = tmp_path / "again.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        iter_csv_rows(rows, fh)
    import_csv(path, progress=False)
    fresh = services.current_card(membership)
    assert fresh.pk != card.pk and services.card_view(fresh).employer == "PT BARU SEKALI"


def test_renewal_near_expiry(membership, card):  # type: ignore[no-untyped-def]
    later = card.expires_at - timedelta(days=5)
    fresh = services.current_card(membership, now=later)
    assert fresh.pk != card.pk
    card.refresh_from_db()
    assert card.revoked_reason == "renewed"


def test_reissue_on_request(membership, card):  # type: ignore[no-untyped-def]
    fresh = services.reissue(membership)
    card.refresh_from_db()
    assert card.revoked_reason == "requested" and fresh.revoked_at is None
    assert services.current_card(membership).pk == fresh.pk


def test_cards_for_person(loaded_registry):  # type: ignore[no-untyped-def]
    person = Membership.objects.get(kpj="10987654321").person
    cards = services.cards_for_person(person)
    assert [c.membership.kpj for c in cards] == ["10987654321", "12345678901"]
    assert all(qr.verify(services.qr_text(c)).valid for c in cards)


def test_deleted_membership_is_listed_as_revoked(membership, card):  # type: ignore[no-untyped-def]
    from kartu.card import keys

    Membership.objects.filter(pk=membership.pk).delete()
    assert card.cti in keys.revoked_list()["revoked"]


def test_card_view_masks_the_nik_unless_asked(card):  # type: ignore[no-untyped-def]
    view = services.card_view(card)
    assert view.nik_masked == "************0003" and view.nik_full == ""
    assert services.card_view(card, reveal_nik=True).nik_full == "3174055708900003"
    assert "<svg" in view.qr_svg and "3174" not in repr(view)


def test_no_personal_data_in_logs(membership, caplog):  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG, logger="kartu")
    card = services.current_card(membership)
    services.reissue(membership)
    services.revoke(card)
    text = caplog.text
    assert "card" in text
    for secret in ("SITI", "NURHALIZA", "3174055708900003", "0003", "10987654321", "1990"):
        assert secret not in text


def test_unreadable_token_is_reissued(membership, card):  # type: ignore[no-untyped-def]
    Card.objects.filter(pk=card.pk).update(token_cipher=b"\x01\x02f9" + b"\0" * 40)
    fresh = services.current_card(membership, now=timezone.now())
    assert fresh.pk != card.pk


def test_person_with_long_name(membership):  # type: ignore[no-untyped-def]
    Person.objects.filter(pk=membership.person_id).update(
        full_name="RADEN AYU KUSUMAWARDHANI PRAMESWARI HADININGRAT BINTI SOEKARNO")
    card = services.current_card(Membership.objects.get(pk=membership.pk))
    text = services.qr_text(card)
    assert len(text) < qr.MAX_TEXT and qr.verify(text).valid
