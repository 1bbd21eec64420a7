"""Key rotation re-encrypts and re-indexes while lookups keep working."""

from __future__ import annotations

import shutil

import pytest

from kartu.core import crypto
from kartu.registry import keys, services
from kartu.registry.models import NIK_AAD, NikLock, Person

pytestmark = [pytest.mark.django_db, pytest.mark.backends]


@pytest.fixture
def own_keys_file(settings, tmp_path):
    original = settings.KARTU_KEYS_FILE
    path = tmp_path / "keys.json"
    crypto.keyring()
    shutil.copy(original, path)
    settings.KARTU_KEYS_FILE = path
    crypto.reload_keyring()
    yield path
    settings.KARTU_KEYS_FILE = original
    crypto.reload_keyring()


SITI = dict(nik="3174055708900003", full_name="Siti Nurhaliza", birth_place="Jakarta",
            birth_date="1990-08-17")


def test_rotation_moves_every_row_to_the_new_keys(own_keys_file, loaded_registry):
    old_ring = crypto.keyring()
    services.verify_identity(services.parse_claim(**{**SITI, "birth_place": "Medan"}), "x:1")
    services.verify_identity(services.parse_claim(**{**SITI, "birth_place": "Medan"}), "x:2")
    services.verify_identity(services.parse_claim(**{**SITI, "birth_place": "Medan"}), "x:3")
    assert NikLock.objects.count() == 1
    report = keys.rotate(log=lambda _: None, wait=False)
    ring = crypto.keyring()
    assert ring.active_field != old_ring.active_field
    assert list(ring.index_keys) == [ring.active_index] != [old_ring.active_index]
    assert report.reencrypted == 2 and report.reindexed == 2
    for person in Person.objects.all():
        assert crypto.key_id_of(person.nik_cipher) == ring.active_field
        assert person.nik_index == crypto.blind_index(crypto.decrypt(person.nik_cipher, NIK_AAD))
    # the lock followed its NIK to the new index, and lookups still work
    assert services.is_locked(SITI["nik"])
    services.clear_nik_lock(SITI["nik"], by="agent:a")
    assert services.verify_identity(services.parse_claim(**SITI), "x:4").verified


def test_lookups_work_in_the_middle_of_an_index_rotation(own_keys_file, loaded_registry):
    # add a new index key but do not re-index yet: both keys are live
    data = crypto.read_keys_file(own_keys_file)
    data["index"]["keys"]["i9"] = crypto.new_key()  # type: ignore[index]
    data["index"]["active"] = "i9"
    crypto.write_keys_file(own_keys_file, data)
    crypto.reload_keyring()
    assert services.verify_identity(services.parse_claim(**SITI), "x:1").verified
    keys.reindex(crypto.keyring())
    assert services.verify_identity(services.parse_claim(**SITI), "x:2").verified
