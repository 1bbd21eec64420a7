"""Rotating the field-encryption and blind-index keys without downtime.

Field keys: a new key becomes active (new writes use it), every ciphertext made with another key
is re-encrypted in small transactions — in *every* encrypted column of the project, listed in
:func:`encrypted_columns` — and old keys stay readable in the key file. A rotation refuses to
start while a binary column exists that is not listed there, so a new encrypted column cannot be
forgotten (and its old key never retired).

Blind-index keys: the new key is added beside the old one; every process re-reads the key file
within a few seconds and from then on looks NIKs up under *both* keys; each person is re-indexed
under the new key (their contact digest too, which is keyed from the index key), then every NIK
lock — registered NIK or not, from the NIK kept encrypted in the lock — and every help-desk
contact (from its encrypted address); then the old key is removed and its id recorded as
retired (an id never names two keys). A lookup finds the person, the lock check finds the lock
and a returning sender finds their contact at every moment of the rotation. Should a sender
have got a second contact all the same (a process that had not yet re-read the key file), the
re-index merges it into the older one (``kartu.desk.services.merge_contacts``). Locks written
before locks kept their NIK cannot be moved unless their NIK is in the registry: while any
remains the old keys stay live (lookups keep trying them), and ``kartu keys rotate --index``
run again after they are cleared finishes the same rotation instead of starting another.

The per-NIK failure counters (3 per 24 h) are counted under the active index only and are not
moved: they are pseudonyms of a blind index, so they cannot be re-keyed, and they expire on
their own within 48 h. A NIK's count therefore starts again from zero after a rotation (at most
two extra failed attempts per NIK and rotation); a NIK already *locked* stays locked, because
the lock is moved.

With keys given through the environment the file cannot be changed by us: put the new key first
in ``KARTU_FIELD_KEYS`` / ``KARTU_BLIND_INDEX_KEYS`` (old ones after it), restart the processes,
run ``kartu keys rotate``, then drop the old entries (never reuse an old key id).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import IntegrityError, models, transaction

from kartu.core import crypto
from kartu.registry.models import EMAIL_AAD, LOCK_NIK_AAD, NIK_AAD, PHONE_AAD, NikLock, Person


class RotationError(Exception):
    """The rotation cannot start (e.g. an encrypted column it does not know)."""


@dataclass(frozen=True)
class EncryptedColumn:
    model: str  # "app_label.ModelName"
    field: str
    aad: bytes


def encrypted_columns() -> tuple[EncryptedColumn, ...]:
    """Every column holding ``crypto.encrypt`` ciphertexts, with its associated data.

    Add a new encrypted column here; :func:`check_columns` refuses a rotation otherwise."""
    from kartu.card.models import PRIVATE_KEY_AAD, TOKEN_AAD
    from kartu.desk.models import CONTACT_AAD, EXTRACTED_AAD, STATE_AAD, TEXT_AAD

    return (
        EncryptedColumn("registry.Person", "nik_cipher", NIK_AAD),
        EncryptedColumn("registry.Person", "email_cipher", EMAIL_AAD),
        EncryptedColumn("registry.Person", "phone_cipher", PHONE_AAD),
        EncryptedColumn("registry.NikLock", "nik_cipher", LOCK_NIK_AAD),
        EncryptedColumn("card.SigningKey", "private_cipher", PRIVATE_KEY_AAD),
        EncryptedColumn("card.Card", "token_cipher", TOKEN_AAD),
        EncryptedColumn("desk.Contact", "address_cipher", CONTACT_AAD),
        EncryptedColumn("desk.Conversation", "state_cipher", STATE_AAD),
        EncryptedColumn("desk.Message", "text_cipher", TEXT_AAD),
        EncryptedColumn("desk.Message", "extracted_cipher", EXTRACTED_AAD),
    )


#: Binary columns that hold no ciphertext.
PLAIN_BINARY_COLUMNS = frozenset({("card.SigningKey", "public_der")})


def check_columns() -> None:
    """Raise RotationError unless every binary column of every installed model is either listed
    in :func:`encrypted_columns` or known to be plain, and every listed column exists."""
    declared = {(c.model, c.field) for c in encrypted_columns()}
    found = set()
    for model in apps.get_models():
        for f in model._meta.concrete_fields:
            if isinstance(f, models.BinaryField):
                found.add((model._meta.label, f.name))
    unknown = sorted(found - declared - PLAIN_BINARY_COLUMNS)
    missing = sorted(declared - found)
    if unknown or missing:
        raise RotationError(
            "kartu.registry.keys.encrypted_columns() is out of date: "
            + "; ".join(
                [f"{m}.{f} is not listed (encrypted? add it)" for m, f in unknown]
                + [f"{m}.{f} does not exist" for m, f in missing]
            )
        )


@dataclass
class Reindexed:
    people: int = 0
    locks: int = 0
    stuck_locks: int = 0  # locks without their NIK whose NIK is not in the registry
    contacts: int = 0
    contacts_merged: int = 0  # a sender's second contact, merged into the first


@dataclass
class RotationReport:
    field_key: str = ""
    index_key: str = ""
    reencrypted: int = 0
    reencrypted_by_model: dict[str, int] = dataclass_field(default_factory=dict)
    reindexed: int = 0
    locks_reindexed: int = 0
    stuck_locks: int = 0
    contacts_reindexed: int = 0
    contacts_merged: int = 0
    old_index_keys: list[str] = dataclass_field(default_factory=list)  # still live

    def text(self) -> str:
        parts = []
        if self.field_key:
            parts.append(f"active field key {self.field_key}: {self.reencrypted} rows "
                         "re-encrypted")
        if self.index_key:
            parts.append(f"active index key {self.index_key}: {self.reindexed} people, "
                         f"{self.locks_reindexed} locks and {self.contacts_reindexed} contacts "
                         "re-indexed")
            if self.contacts_merged:
                parts[-1] += f" ({self.contacts_merged} duplicate contacts merged)"
        text = "; ".join(parts)
        if self.stuck_locks:
            text += (f"; NOT finished: old index keys {', '.join(self.old_index_keys)} stay "
                     f"live for {self.stuck_locks} locks that predate encrypted lock NIKs")
        return text


_KID = re.compile(r"(?P<prefix>[a-z]+)(?P<n>[0-9]+)")


def _next_kid(section: dict[str, Any], prefix: str) -> str:
    """One more than the highest id ever used with ``prefix`` (live or retired): an id is never
    given to a second key, or a restored backup's rows under the old key would look as if
    they were made with the new one (unreadable, or unfindable and never re-indexed)."""
    used = [*section.get("keys", {}), *section.get("retired", [])]
    numbers = [int(m["n"]) for kid in used
               if (m := _KID.fullmatch(kid)) and m["prefix"] == prefix]
    return f"{prefix}{max(numbers, default=0) + 1}"


def _retire(section: dict[str, Any], kids: list[str]) -> None:
    section["retired"] = sorted({*section.get("retired", []), *kids},
                                key=lambda k: (len(k), k))


def _from_file() -> bool:
    return not (settings.KARTU_FIELD_KEYS or settings.KARTU_BLIND_INDEX_KEYS)


def _wait_for_processes(log: Callable[[str], None]) -> None:
    wait = crypto.RELOAD_SECONDS * 2 + 0.5
    log(f"waiting {wait:.1f} s for running processes to load the new keys …")
    time.sleep(wait)


def _import_barrier() -> None:
    """Wait for the chunks of running imports that read the old keys to commit: they hold the
    rotation lock (``importer.take_rotation_lock``) from before they read the keys until they
    commit. Later chunks read the new key file and stop their import
    (``kartu.registry.importer._rotation_barrier``). Taken explicitly even on SQLite: with
    nothing to re-encrypt or re-index (an empty registry) the rotation would write nothing and
    so never wait for a chunk's write lock."""
    from kartu.registry.importer import take_rotation_lock

    with transaction.atomic():
        take_rotation_lock(shared=False)


def _quiet(_: str) -> None:
    pass


def rotate(
    *, field: bool = True, index: bool = True, log: Callable[[str], None] = print,
    batch: int = 1000, wait: bool = True,
) -> RotationReport:
    check_columns()
    path = Path(settings.KARTU_KEYS_FILE)
    report = RotationReport()
    crypto.keyring()  # creates the key file on first use
    if _from_file():
        data = crypto.read_keys_file(path)
        changed = False
        if field:
            section = data["field"]
            kid = _next_kid(section, "f")
            section["keys"][kid] = crypto.new_key()
            section["active"] = kid
            changed = True
            log(f"new field key {kid} is active")
        if index:
            section = data["index"]
            keys = section["keys"]
            if len(keys) > 1:
                # The last index rotation did not finish (old locks kept the old keys live):
                # finish it rather than add yet another live key.
                log(f"finishing the blind-index rotation to {section['active']} "
                    f"(still live: {', '.join(k for k in keys if k != section['active'])})")
            else:
                kid = _next_kid(section, "i")
                keys[kid] = crypto.new_key()
                section["active"] = kid
                changed = True
                log(f"new blind-index key {kid} added beside "
                    f"{', '.join(k for k in keys if k != kid)}")
        if changed:
            crypto.write_keys_file(path, data)
            if wait:
                _wait_for_processes(log)
    _import_barrier()
    ring = crypto.reload_keyring()
    if field:
        report.field_key = ring.active_field
        report.reencrypted_by_model = reencrypt_all(ring, batch, log)
        report.reencrypted = sum(report.reencrypted_by_model.values())
    if index:
        report.index_key = ring.active_index
        done = reindex(ring, batch, log)
        report.reindexed, report.locks_reindexed = done.people, done.locks
        report.stuck_locks = done.stuck_locks
        report.contacts_reindexed, report.contacts_merged = done.contacts, done.contacts_merged
        old = [k for k in ring.index_keys if k != ring.active_index]
        if done.stuck_locks and old:
            report.old_index_keys = old
            log(f"{done.stuck_locks} NIK locks were written before locks kept their NIK and "
                "their NIK is not in the registry: they cannot be moved to the new index, so "
                f"the old blind-index keys {', '.join(old)} stay live (lookups and lock checks "
                "keep using them). Run `kartu keys rotate --index` again once those locks "
                "are cleared to finish this rotation.")
        elif _from_file():
            data = crypto.read_keys_file(path)
            section = data["index"]
            section["keys"] = {ring.active_index: section["keys"][ring.active_index]}
            _retire(section, old)
            crypto.write_keys_file(path, data)
            crypto.reload_keyring()
            if old:
                log(f"old blind-index keys removed: {', '.join(old)}")
        elif old:
            log("done: now remove the old entries from KARTU_BLIND_INDEX_KEYS")
    return report


def _columns_by_model() -> Iterator[tuple[type[models.Model], list[EncryptedColumn]]]:
    grouped: dict[str, list[EncryptedColumn]] = {}
    for column in encrypted_columns():
        grouped.setdefault(column.model, []).append(column)
    for label, columns in grouped.items():
        yield apps.get_model(label), columns


def reencrypt_all(
    ring: crypto.Keyring, batch: int = 1000, log: Callable[[str], None] = _quiet
) -> dict[str, int]:
    """Re-encrypt every ciphertext of every encrypted column made with a key other than the
    active one. Returns the rows changed per model."""
    return {model._meta.label: reencrypt(ring, batch, log, model=model, columns=columns)
            for model, columns in _columns_by_model()}


def reencrypt(
    ring: crypto.Keyring, batch: int, log: Callable[[str], None], *,
    model: type[models.Model], columns: list[EncryptedColumn],
) -> int:
    """Re-encrypt the ``columns`` of ``model`` in the rows whose ciphertexts use a key other
    than the active one; returns how many rows changed.

    Online: rows are read in primary-key order, ``batch`` at a time, and each row is written
    with a compare-and-swap (``UPDATE … WHERE pk = … AND column = <the ciphertext read>``), so
    a row written meanwhile by the application is never overwritten with its older value; such
    a row is read again afterwards. Idempotent: a row already under the active key is left
    alone, so an interrupted rotation is finished by running it again."""
    label = model._meta.label
    names = [c.field for c in columns]
    manager = model._base_manager
    changed = checked = 0
    last: Any = None
    started = reported = time.monotonic()
    retry: list[Any] = []
    while True:
        rows_qs = manager.order_by("pk")
        if last is not None:
            rows_qs = rows_qs.filter(pk__gt=last)
        rows = list(rows_qs.values_list("pk", *names)[:batch])
        if not rows:
            break
        changed += _reencrypt_rows(manager, rows, columns, ring, retry)
        checked += len(rows)
        last = rows[-1][0]
        if time.monotonic() - reported >= 5:
            reported = time.monotonic()
            log(f"{label}: {checked} rows checked, {changed} re-encrypted …")
    for _ in range(10):  # rows written while we read them: read them again
        if not retry:
            break
        pks, retry = retry, []
        for i in range(0, len(pks), batch):
            rows = list(manager.filter(pk__in=pks[i:i + batch]).values_list("pk", *names))
            changed += _reencrypt_rows(manager, rows, columns, ring, retry)
    if retry:
        raise RotationError(f"{label}: {len(retry)} rows kept changing during re-encryption; "
                            "run the rotation again")
    if checked:
        log(f"{label}: {checked} rows checked, {changed} re-encrypted "
            f"({time.monotonic() - started:.1f} s)")
    return changed


def _reencrypt_rows(
    manager: models.Manager[Any], rows: list[tuple[Any, ...]], columns: list[EncryptedColumn],
    ring: crypto.Keyring, retry: list[Any],
) -> int:
    changed = 0
    with transaction.atomic():
        for pk, *blobs in rows:
            old: dict[str, bytes] = {}
            new: dict[str, bytes] = {}
            for column, blob in zip(columns, blobs, strict=True):
                if not blob:
                    continue
                blob = bytes(blob)
                if crypto.key_id_of(blob) != ring.active_field:
                    old[column.field] = blob
                    new[column.field] = crypto.encrypt(
                        crypto.decrypt(blob, column.aad, ring), column.aad, ring)
            if new:
                if manager.filter(pk=pk, **old).update(**new):
                    changed += 1
                else:
                    retry.append(pk)
    return changed


def reindex(
    ring: crypto.Keyring, batch: int = 1000, log: Callable[[str], None] = _quiet
) -> Reindexed:
    """Move every person (with their contact digest), every NIK lock and every desk contact to
    the active blind-index key. Locks go first (a lock written before locks kept their NIK is
    matched to its person while the person is still under the old index) and once more at the
    end (any written under the old key meanwhile)."""
    done = Reindexed()
    done.locks += _reindex_locks(ring, batch).locks
    done.people = _reindex_people(ring, batch, log)
    done.contacts, done.contacts_merged = reindex_contacts(ring, batch, log)
    last = _reindex_locks(ring, batch)
    done.locks += last.locks
    done.stuck_locks = last.stuck_locks
    return done


def _reindex_people(ring: crypto.Keyring, batch: int, log: Callable[[str], None]) -> int:
    """The importer tells an unchanged contact by its digest, keyed from the index key: it is
    recomputed here too, or the next import of an unchanged file would rewrite every person."""
    from kartu.registry.importer.rows import contact_digest, contact_key

    key = contact_key(ring)
    done = 0
    stalled = 0
    reported = time.monotonic()
    while True:
        people = list(Person.objects.exclude(nik_index_kid=ring.active_index)
                      .values_list("pk", "nik_cipher", "email_cipher", "phone_cipher")[:batch])
        if not people:
            return done
        moved = 0
        with transaction.atomic():
            for pk, nik_c, email_c, phone_c in people:
                nik = crypto.decrypt(nik_c, NIK_AAD, ring)
                email = crypto.decrypt(email_c, EMAIL_AAD, ring) if email_c else ""
                phone = crypto.decrypt(phone_c, PHONE_AAD, ring) if phone_c else ""
                # Compare-and-swap on the contact: a person updated meanwhile by an import
                # stays under the old key and is read again by the next round.
                moved += Person.objects.filter(
                    pk=pk, email_cipher=None if email_c is None else bytes(email_c),
                    phone_cipher=None if phone_c is None else bytes(phone_c),
                ).update(
                    nik_index=crypto.blind_index(nik, ring.active_index, ring),
                    nik_index_kid=ring.active_index,
                    contact_digest=contact_digest(email, phone, key),
                )
        done += moved
        stalled = 0 if moved else stalled + 1
        if stalled >= 10:
            raise RotationError("registry.Person: people kept changing during re-indexing; "
                                "run the rotation again")
        if time.monotonic() - reported >= 5:
            reported = time.monotonic()
            log(f"registry.Person: {done} people re-indexed …")


def reindex_contacts(
    ring: crypto.Keyring, batch: int = 1000, log: Callable[[str], None] = _quiet
) -> tuple[int, int]:
    """Move every desk contact to the active blind-index key, batch by batch (see
    :func:`reindex_contacts_batch`) until none is left under another key; returns how many
    contacts were re-indexed and how many duplicates were merged into an older contact.

    Online and idempotent: a contact already under the active key is not read again, so an
    interrupted rotation is finished by running it again."""
    moved = merged = stalled = 0
    reported = time.monotonic()
    while (step := reindex_contacts_batch(ring, batch)) is not None:
        moved += step[0]
        merged += step[1]
        stalled = 0 if any(step) else stalled + 1
        if stalled >= 10:
            raise RotationError("desk.Contact: contacts kept changing during re-indexing; "
                                "run the rotation again")
        if time.monotonic() - reported >= 5:
            reported = time.monotonic()
            log(f"desk.Contact: {moved} contacts re-indexed, {merged} merged …")
    if moved or merged:
        log(f"desk.Contact: {moved} contacts re-indexed, {merged} duplicates merged")
    return moved, merged


def reindex_contacts_batch(ring: crypto.Keyring, batch: int = 1000) -> tuple[int, int] | None:
    """Move up to ``batch`` contacts not yet under the active index key to it, in one
    transaction; returns (re-indexed, merged), or None once every contact is under it.

    The new index is computed from the decrypted address. A contact whose new index is already
    taken is the same sender's second contact (made under the new key while this one was under
    the old): the two are merged into the older one, which then takes the new index. Each row
    is written with a compare-and-swap on the index and key id read, so a row changed meanwhile
    (merged by a concurrent rotation) is left alone and read again by the next batch."""
    from kartu.desk import services as desk
    from kartu.desk.models import CONTACT_AAD, Contact, address_key

    rows = list(Contact.objects.exclude(address_index_kid=ring.active_index).order_by("pk")
                .values_list("pk", "channel", "address_index", "address_index_kid",
                             "address_cipher")[:batch])
    if not rows:
        return None
    moved = merged = 0
    to_active = {"address_index_kid": ring.active_index}
    with transaction.atomic():
        for pk, channel, index, kid, blob in rows:
            address = crypto.decrypt(blob, CONTACT_AAD, ring)
            new_index = crypto.blind_index(address_key(channel, address), ring.active_index, ring)
            try:
                with transaction.atomic():
                    moved += Contact.objects.filter(
                        pk=pk, address_index=index, address_index_kid=kid
                    ).update(address_index=new_index, **to_active)
                continue
            except IntegrityError:
                pass
            other = (Contact.objects.filter(channel=channel, address_index=new_index)
                     .values_list("pk", flat=True).first())
            if other is None:  # gone meanwhile: the next batch reads this one again
                continue
            kept = desk.merge_contacts(pk, other)
            if kept is None:  # both gone meanwhile (merged by a concurrent rotation)
                continue
            Contact.objects.filter(pk=kept).update(address_index=new_index, **to_active)
            moved += kept == pk
            merged += 1
    return moved, merged


def _reindex_locks(ring: crypto.Keyring, batch: int) -> Reindexed:
    done = Reindexed()
    last = 0
    while True:
        locks = list(NikLock.objects.filter(pk__gt=last).order_by("pk")
                     .values_list("pk", "nik_index", "nik_cipher")[:batch])
        if not locks:
            return done
        last = locks[-1][0]
        legacy = [index for _, index, blob in locks if not blob]
        # A lock without its NIK takes it from the person under the same index, if any.
        people = dict(Person.objects.filter(nik_index__in=legacy)
                      .values_list("nik_index", "nik_cipher")) if legacy else {}
        with transaction.atomic():
            for pk, index, blob in locks:
                update: dict[str, object] = {}
                if blob:
                    nik = crypto.decrypt(blob, LOCK_NIK_AAD, ring)
                elif index in people:
                    nik = crypto.decrypt(people[index], NIK_AAD, ring)
                    update["nik_cipher"] = crypto.encrypt(nik, LOCK_NIK_AAD, ring)
                else:
                    done.stuck_locks += 1
                    continue
                new_index = crypto.blind_index(nik, ring.active_index, ring)
                if new_index != index:
                    update["nik_index"] = new_index
                if not update:
                    continue
                try:
                    with transaction.atomic():
                        NikLock.objects.filter(pk=pk).update(**update)
                except IntegrityError:
                    # Locked again under the new index meanwhile: that lock is the one kept.
                    NikLock.objects.filter(pk=pk).delete()
                done.locks += 1


def status() -> dict[str, object]:
    ring = crypto.keyring()
    from kartu.desk.models import Contact

    by_index = {}
    contacts_by_index = {}
    for kid in ring.index_keys:
        by_index[kid] = Person.objects.filter(nik_index_kid=kid).count()
        contacts_by_index[kid] = Contact.objects.filter(address_index_kid=kid).count()
    return {
        "source": ring.source,
        "field_keys": list(ring.field_keys),
        "active_field_key": ring.active_field,
        "index_keys": list(ring.index_keys),
        "active_index_key": ring.active_index,
        "people_by_index_key": by_index,
        "contacts_by_index_key": contacts_by_index,
        "contacts_not_on_a_live_key": Contact.objects.exclude(
            address_index_kid__in=list(ring.index_keys)).count(),
        "locks_without_nik": NikLock.objects.filter(nik_cipher__isnull=True).count(),
    }
