"""Rotating the field-encryption and blind-index keys without downtime.

Field keys: a new key becomes active (new writes use it), every ciphertext made with another key
is re-encrypted in small transactions, and old keys stay readable in the key file.

Blind-index keys: the new key is added beside the old one; every process re-reads the key file
within a few seconds and from then on looks NIKs up under *both* keys; each person is re-indexed
under the new key (with any lock on their NIK); then the old key is removed. A lookup finds the
person at every moment of the rotation.

With keys given through the environment the file cannot be changed by us: put the new key first
in ``KARTU_FIELD_KEYS`` / ``KARTU_BLIND_INDEX_KEYS`` (old ones after it), restart the processes,
run ``kartu keys rotate``, then drop the old entries.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from kartu.core import crypto
from kartu.registry.models import EMAIL_AAD, NIK_AAD, PHONE_AAD, NikLock, Person

ENCRYPTED_FIELDS = (("nik_cipher", NIK_AAD), ("email_cipher", EMAIL_AAD),
                    ("phone_cipher", PHONE_AAD))


@dataclass
class RotationReport:
    field_key: str = ""
    index_key: str = ""
    reencrypted: int = 0
    reindexed: int = 0

    def text(self) -> str:
        return (
            f"active field key {self.field_key}: {self.reencrypted} people re-encrypted; "
            f"active index key {self.index_key}: {self.reindexed} people re-indexed"
        )


def _next_kid(existing: dict[str, object], prefix: str) -> str:
    n = 1
    while f"{prefix}{n}" in existing:
        n += 1
    return f"{prefix}{n}"


def _from_file() -> bool:
    return not (settings.KARTU_FIELD_KEYS or settings.KARTU_BLIND_INDEX_KEYS)


def _wait_for_processes(log: Callable[[str], None]) -> None:
    wait = crypto.RELOAD_SECONDS * 2 + 0.5
    log(f"waiting {wait:.1f} s for running processes to load the new keys …")
    time.sleep(wait)


def rotate(
    *, field: bool = True, index: bool = True, log: Callable[[str], None] = print,
    batch: int = 1000, wait: bool = True,
) -> RotationReport:
    path = Path(settings.KARTU_KEYS_FILE)
    report = RotationReport()
    crypto.keyring()  # creates the key file on first use
    if _from_file():
        data = crypto.read_keys_file(path)
        if field:
            keys = data["field"]["keys"]
            assert isinstance(keys, dict)
            kid = _next_kid(keys, "f")
            keys[kid] = crypto.new_key()
            data["field"]["active"] = kid
            log(f"new field key {kid} is active")
        if index:
            keys = data["index"]["keys"]
            assert isinstance(keys, dict)
            kid = _next_kid(keys, "i")
            keys[kid] = crypto.new_key()
            data["index"]["active"] = kid
            log(f"new blind-index key {kid} added beside {', '.join(k for k in keys if k != kid)}")
        crypto.write_keys_file(path, data)
        if wait:
            _wait_for_processes(log)
    ring = crypto.reload_keyring()
    report.field_key, report.index_key = ring.active_field, ring.active_index
    if field:
        report.reencrypted = reencrypt(ring, batch)
    if index:
        report.reindexed = reindex(ring, batch)
        if _from_file():
            data = crypto.read_keys_file(path)
            data["index"]["keys"] = {ring.active_index: data["index"]["keys"][ring.active_index]}  # type: ignore[index]
            crypto.write_keys_file(path, data)
            crypto.reload_keyring()
            log("old blind-index keys removed")
        elif len(ring.index_keys) > 1:
            log("done: now remove the old entries from KARTU_BLIND_INDEX_KEYS")
    return report


def reencrypt(ring: crypto.Keyring, batch: int = 1000) -> int:
    """Re-encrypt every person whose ciphertexts use a key other than the active one."""
    done = 0
    last = 0
    while True:
        people = list(Person.objects.filter(pk__gt=last).order_by("pk")
                      .only("pk", *(f for f, _ in ENCRYPTED_FIELDS))[:batch])
        if not people:
            return done
        with transaction.atomic():
            for person in people:
                changed = []
                for name, aad in ENCRYPTED_FIELDS:
                    blob = getattr(person, name)
                    if blob and crypto.key_id_of(blob) != ring.active_field:
                        setattr(person, name, crypto.encrypt(crypto.decrypt(blob, aad, ring),
                                                             aad, ring))
                        changed.append(name)
                if changed:
                    person.save(update_fields=changed)
                    done += 1
        last = people[-1].pk


def reindex(ring: crypto.Keyring, batch: int = 1000) -> int:
    """Move every person (and the lock on their NIK) to the active blind-index key."""
    done = 0
    while True:
        people = list(Person.objects.exclude(nik_index_kid=ring.active_index)
                      .only("pk", "nik_index", "nik_cipher")[:batch])
        if not people:
            return done
        with transaction.atomic():
            for person in people:
                nik = crypto.decrypt(person.nik_cipher, NIK_AAD, ring)
                new_index = crypto.blind_index(nik, ring.active_index, ring)
                NikLock.objects.filter(nik_index=person.nik_index).update(nik_index=new_index)
                Person.objects.filter(pk=person.pk).update(
                    nik_index=new_index, nik_index_kid=ring.active_index
                )
                done += 1


def status() -> dict[str, object]:
    ring = crypto.keyring()
    by_index = {}
    for kid in ring.index_keys:
        by_index[kid] = Person.objects.filter(nik_index_kid=kid).count()
    return {
        "source": ring.source,
        "field_keys": list(ring.field_keys),
        "active_field_key": ring.active_field,
        "index_keys": list(ring.index_keys),
        "active_index_key": ring.active_index,
        "people_by_index_key": by_index,
    }
