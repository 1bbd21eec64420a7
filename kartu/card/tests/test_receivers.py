"""Cards are re-issued, and the old ones revoked, as soon as the registry data they show changes:
on ``persons_changed`` (the importer) and on an ORM save (the admin), after the commit."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from kartu.card import keys, qr, services
from kartu.card.models import Card
from kartu.registry.models import Membership, Person
from kartu.registry.signals import persons_changed

pytestmark = [pytest.mark.django_db, pytest.mark.backends]


def _rename(person_id: int, name: str) -> None:
    """As the importer writes: raw SQL, no model signal."""
    with connection.cursor() as cur:
        cur.execute("UPDATE registry_person SET full_name = %s WHERE id = %s", [name, person_id])


def _live(membership: Membership) -> list[Card]:
    return list(Card.objects.filter(membership=membership, revoked_at__isnull=True))


def test_persons_changed_revokes_the_old_card_and_issues_the_new_one(  # type: ignore[no-untyped-def]
        client, membership, card, qr_text):
    _rename(membership.person_id, "SITI NURHALIZA PUTRI")
    assert qr.verify(qr_text).status == "valid"  # nobody opened the card page since
    persons_changed.send(sender=None, person_ids=frozenset({membership.person_id}))

    card.refresh_from_db()
    assert card.revoked_at is not None and card.revoked_reason == "data_changed"
    assert qr.verify(qr_text).status == "revoked"
    assert card.cti in client.get("/.well-known/kartu/revoked.json").json()["revoked"]
    (fresh,) = _live(membership)
    result = qr.verify(services.qr_text(fresh))
    assert result.status == "valid" and result.card and result.card["n"] == "SITI NURHALIZA PUTRI"
    # the page shows that card (no third one), and stores its QR mask the first time
    assert fresh.qr_mask is None
    shown = services.current_card(membership)
    assert shown.pk == fresh.pk
    fresh.refresh_from_db()
    assert fresh.qr_mask == qr.make_qr(services.qr_text(fresh)).mask


def test_people_whose_card_still_matches_or_who_have_none_get_nothing(  # type: ignore[no-untyped-def]
        membership, card):
    rizki = Membership.objects.get(kpj="11122233344")
    other = Membership.objects.get(kpj="12345678901")  # Siti's other membership: no card yet
    persons_changed.send(sender=None,
                         person_ids=frozenset({membership.person_id, rizki.person_id}))
    assert _live(membership) == [card] and not _live(rizki) and not _live(other)
    assert Card.objects.count() == 1


def test_only_the_memberships_whose_data_changed_are_reissued(loaded_registry):  # type: ignore[no-untyped-def]
    siti_active, siti_old = (Membership.objects.get(kpj=k) for k in ("10987654321", "12345678901"))
    first = {m.kpj: services.current_card(m) for m in (siti_active, siti_old)}
    Membership.objects.filter(pk=siti_old.pk).update(employer="PT LAIN")
    persons_changed.send(sender=None, person_ids=frozenset({siti_active.person_id}))
    assert _live(siti_active) == [first["10987654321"]]
    (new,) = _live(siti_old)
    assert new.pk != first["12345678901"].pk
    assert services.card_view(new).employer == "PT LAIN"


def test_a_matching_live_card_is_kept_and_the_outdated_one_revoked(membership, card):  # type: ignore[no-untyped-def]
    _rename(membership.person_id, "SITI BARU")
    matching = services.issue_card(Membership.objects.get(pk=membership.pk))
    persons_changed.send(sender=None, person_ids=frozenset({membership.person_id}))
    assert _live(membership) == [matching]
    card.refresh_from_db()
    assert card.revoked_reason == "data_changed"


def test_thousands_of_ids_take_a_few_queries_per_batch(  # type: ignore[no-untyped-def]
        loaded_registry, django_assert_max_num_queries):
    memberships = list(Membership.objects.select_related("person"))
    old = [services.current_card(m) for m in memberships]
    keys.active_signer()  # the signing key is cached from here on, as in a running server
    for person in Person.objects.all():
        _rename(person.pk, person.full_name + " X")
    ids = frozenset({m.person_id for m in memberships} | set(range(10**6, 10**6 + 5000)))
    batches = -(-len(ids) // services.REFRESH_BATCH)
    # per batch: a savepoint pair and the locked memberships; the batch with cards also reads
    # them, revokes them in one UPDATE and inserts the new ones in one INSERT
    with django_assert_max_num_queries(3 * batches + 4):
        assert services.refresh_people(ids) == len(memberships)
    assert all(qr.verify(services.qr_text(c)).status == "revoked" for c in old)
    assert len(keys.revoked_ctis()) == len(memberships)


def test_an_orm_save_reissues_after_the_commit(  # type: ignore[no-untyped-def]
        membership, card, qr_text, django_capture_on_commit_callbacks):
    person = Person.objects.get(pk=membership.person_id)
    person.full_name = "SITI NURHALIZA ADMIN"
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        person.save()
        assert qr.verify(qr_text).status == "valid"  # not before the commit
    assert len(callbacks) == 1
    assert qr.verify(qr_text).status == "revoked"
    (fresh,) = _live(membership)
    assert qr.verify(services.qr_text(fresh)).card["n"] == "SITI NURHALIZA ADMIN"  # type: ignore[index]

    m = Membership.objects.get(pk=membership.pk)
    m.status = "nonaktif"
    with django_capture_on_commit_callbacks(execute=True):
        m.save()
    fresh.refresh_from_db()
    assert fresh.revoked_reason == "data_changed"
    (newest,) = _live(membership)
    assert services.card_view(newest).status == "nonaktif"


def test_a_rolled_back_edit_reissues_nothing(  # type: ignore[no-untyped-def]
        membership, card, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                Person.objects.filter(pk=membership.person_id).update(full_name="NOPE")
                person = Person.objects.get(pk=membership.person_id)
                person.save()
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
    assert callbacks == []
    assert _live(membership) == [card]
