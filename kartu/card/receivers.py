"""Re-issue cards when the registry data they show changes (connected in ``CardConfig.ready``).

* ``kartu.registry.signals.persons_changed``: the importer (raw SQL, no model signals) sends it
  after its transaction committed, with the ``person_ids`` it touched.
* ``post_save`` of :class:`~kartu.registry.models.Person` and
  :class:`~kartu.registry.models.Membership`: an edit through the ORM (the admin). The re-issue
  waits for the commit (``transaction.on_commit``), so a rolled-back edit re-issues nothing and
  the new card shows what was committed.

Both go to :func:`kartu.card.services.refresh_people`, which only touches people whose live card
no longer matches, so a save that changes nothing on the card (a re-encryption, a contact
update) costs a query or two and re-issues nothing.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from kartu.card import services
from kartu.registry.models import Membership, Person


def on_persons_changed(sender: object, person_ids: frozenset[int] = frozenset(),
                       **kwargs: Any) -> None:
    services.refresh_people(person_ids)


def _after_commit(person_id: int | None, using: str | None) -> None:
    if person_id is not None:
        transaction.on_commit(lambda: services.refresh_people([person_id]), using=using)


def on_person_saved(sender: type[Person], instance: Person, raw: bool = False,
                    using: str | None = None, **kwargs: Any) -> None:
    if not raw:  # fixtures being loaded: nothing to re-issue yet
        _after_commit(instance.pk, using)


def on_membership_saved(sender: type[Membership], instance: Membership, raw: bool = False,
                        using: str | None = None, **kwargs: Any) -> None:
    if not raw:
        _after_commit(instance.person_id, using)
