"""Key rotation re-encrypts and re-indexes while lookups keep working."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db.models import BinaryField

from conftest import add_active_key
from kartu.core import crypto
from kartu.registry import keys, services
from kartu.registry.importer import import_csv
from kartu.registry.models import LOCK_NIK_AAD, NIK_AAD, NikLock, Person

pytestmark = [pytest.mark.django_db, pytest.mark.backends]


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
    assert report.reencrypted_by_model["registry.Person"] == 2 and report.reindexed == 2
    assert report.locks_reindexed == 1 and not report.stuck_locks
    for person in Person.objects.all():
        assert crypto.key_id_of(person.nik_cipher) == ring.active_field
        assert person.nik_index == crypto.blind_index(crypto.decrypt(person.nik_cipher, NIK_AAD))
    # the lock followed its NIK to the new index, and lookups still work
    assert services.is_locked(SITI["nik"])
    services.clear_nik_lock(SITI["nik"], by="agent:a")
    assert services.verify_identity(services.parse_claim(**SITI), "x:4").verified


def test_lookups_work_in_the_middle_of_an_index_rotation(own_keys_file, loaded_registry):
    add_active_key(own_keys_file, "index")  # not re-indexed yet: both keys are live
    assert services.verify_identity(services.parse_claim(**SITI), "x:1").verified
    keys.reindex(crypto.keyring())
    assert services.verify_identity(services.parse_claim(**SITI), "x:2").verified


UNKNOWN = dict(SITI, nik="3174055708900004")  # well-formed, not in the registry


def fail_three_times(claim_fields: dict[str, str], requester: str) -> None:
    for i in range(3):
        services.verify_identity(services.parse_claim(**{**claim_fields, "birth_place": "Medan"}),
                                 f"{requester}:{i}")


def test_an_index_rotation_keeps_every_lock_known_nik_or_not(own_keys_file, loaded_registry):
    fail_three_times(SITI, "x")
    fail_three_times(UNKNOWN, "y")
    assert NikLock.objects.count() == 2
    assert all(lock.nik_cipher for lock in NikLock.objects.all())
    keys.rotate(field=False, log=lambda _: None, wait=False)
    assert len(crypto.keyring().index_keys) == 1  # the old index key is gone
    # both stay locked: a rotation does not tell an unknown NIK from a known one
    assert services.is_locked(SITI["nik"]) and services.is_locked(UNKNOWN["nik"])
    for fields in (SITI, UNKNOWN):
        result = services.verify_identity(services.parse_claim(**fields), "z:1")
        assert (result.verified, result.reason) == (False, "nik_locked")


def test_a_lock_is_checked_under_every_live_index_key(own_keys_file, loaded_registry):
    fail_three_times(UNKNOWN, "y")
    add_active_key(own_keys_file, "index")  # the lock is still under the old key
    assert services.is_locked(UNKNOWN["nik"])
    result = services.verify_identity(services.parse_claim(**UNKNOWN), "z:1")
    assert result.reason == "nik_locked"


def test_old_locks_without_their_nik_keep_the_old_index_key_live(
    own_keys_file, loaded_registry, monkeypatch, capsys
):
    # Locks written before the NIK was kept in them: one on a registered NIK, one not.
    ring = crypto.keyring()
    old_kid = ring.active_index
    NikLock.objects.create(nik_index=crypto.blind_index(SITI["nik"]))
    NikLock.objects.create(nik_index=crypto.blind_index(UNKNOWN["nik"]))
    monkeypatch.setattr(keys, "_wait_for_processes", lambda log: None)
    with pytest.raises(CommandError, match="not finished"):
        call_command("keys", "rotate", "--index")
    out = capsys.readouterr().out
    assert "cannot be moved to the new index" in out and old_kid in out
    ring = crypto.keyring()
    assert old_kid in ring.index_keys and ring.active_index != old_kid  # old key still live
    # the registered NIK's lock took its NIK from the person and moved
    siti_lock = NikLock.objects.get(nik_index=crypto.blind_index(SITI["nik"], ring.active_index))
    assert crypto.decrypt(siti_lock.nik_cipher, LOCK_NIK_AAD) == SITI["nik"]
    assert services.is_locked(SITI["nik"]) and services.is_locked(UNKNOWN["nik"])
    # once the old lock is cleared, running the rotation again finishes it (no further key)
    new_kid = ring.active_index
    services.clear_nik_lock(UNKNOWN["nik"], by="agent:a")
    report = keys.rotate(field=False, log=lambda _: None, wait=False)
    assert not report.stuck_locks
    assert list(crypto.keyring().index_keys) == [new_kid]
    assert services.is_locked(SITI["nik"])


def test_a_rotation_refreshes_the_contact_digest(own_keys_file, registry_csv):
    import_csv(registry_csv, progress=False)
    keys.rotate(field=False, log=lambda _: None, wait=False)
    before = list(Person.objects.order_by("pk").values_list("pk", "email_cipher", "updated_at"))
    again = import_csv(registry_csv, progress=False)
    assert (again.people_added, again.people_updated) == (0, 0)
    after = list(Person.objects.order_by("pk").values_list("pk", "email_cipher", "updated_at"))
    assert after == before


def test_key_ids_are_never_reused(own_keys_file, loaded_registry):
    assert keys._next_kid({"keys": {"i2": ""}, "retired": ["i1", "i7"]}, "i") == "i8"
    assert keys._next_kid({"keys": {"i2": "", "x10": ""}}, "i") == "i3"
    start = int(crypto.keyring().active_index[1:])
    seen = {crypto.keyring().active_index}
    for _ in range(3):
        keys.rotate(field=False, log=lambda _: None, wait=False)
        kid = crypto.keyring().active_index
        assert kid not in seen
        seen.add(kid)
    assert crypto.keyring().active_index == f"i{start + 3}"
    retired = crypto.read_keys_file(own_keys_file)["index"]["retired"]
    assert retired == [f"i{n}" for n in range(start, start + 3)]


def _make_every_kind_of_ciphertext() -> None:
    """At least one row in every encrypted column of the project."""
    from kartu.card import keys as card_keys
    from kartu.card import services as cards
    from kartu.desk import services as desk
    from kartu.registry.models import Membership

    fail_three_times(UNKNOWN, "y")  # a NIK lock
    card_keys.reset_cache()
    cards.current_card(Membership.objects.get(kpj="10987654321"))  # a card and a signing key
    message = desk.receive(desk.Inbound("email", "siti@contoh.id", "<m1@contoh.id>", "halo",
                                        datetime(2025, 1, 1, tzinfo=UTC)), enqueue=False)
    assert message is not None
    message.extracted = {"nik": SITI["nik"]}
    message.save()
    conversation = message.conversation
    conversation.state = {"nik": SITI["nik"]}
    conversation.save()


def _key_ids_in_use() -> dict[str, set[str]]:
    """Field key ids found in every ``*_cipher`` column of every model (found independently of
    the rotation's own list)."""
    used: dict[str, set[str]] = {}
    for model in apps.get_models():
        for f in model._meta.concrete_fields:
            if isinstance(f, BinaryField) and f.name.endswith("_cipher"):
                blobs = model._base_manager.exclude(**{f"{f.name}__isnull": True}) \
                    .values_list(f.name, flat=True)
                used[f"{model._meta.label}.{f.name}"] = {crypto.key_id_of(b) for b in blobs if b}
    return used


def test_an_index_rotation_moves_the_desk_contacts_too(own_keys_file, loaded_registry):
    """Contacts are keyed by a blind index of their address: the rotation moves them, or every
    returning sender would get a second contact once the old key is gone (see
    kartu/desk/tests/test_contact_rotation.py for lookups mid-rotation and merges)."""
    from kartu.desk.models import CONTACT_AAD, Contact

    _make_every_kind_of_ciphertext()
    old = crypto.keyring().active_index
    assert keys.status()["contacts_by_index_key"] == {old: 1}
    report = keys.rotate(field=False, log=lambda _: None, wait=False)
    ring = crypto.keyring()
    contact = Contact.objects.get()
    assert contact.address_index == crypto.blind_index(
        "email:" + crypto.decrypt(contact.address_cipher, CONTACT_AAD))
    assert contact.address_index_kid == ring.active_index != old
    assert report.contacts_reindexed == 1 and "1 contacts re-indexed" in report.text()
    state = keys.status()
    assert state["contacts_by_index_key"] == {ring.active_index: 1}
    assert state["contacts_not_on_a_live_key"] == 0


def test_a_field_rotation_reencrypts_every_encrypted_column(own_keys_file, loaded_registry):
    from kartu.card import keys as card_keys

    _make_every_kind_of_ciphertext()
    old = crypto.keyring().active_field
    before = _key_ids_in_use()
    assert all(kids == {old} for kids in before.values()), before  # every column has rows
    lines: list[str] = []
    report = keys.rotate(index=False, log=lines.append, wait=False)
    new = crypto.keyring().active_field
    assert new != old
    assert _key_ids_in_use() == {name: {new} for name in before}
    assert report.reencrypted_by_model["desk.Message"] == 1
    assert any(line.startswith("desk.Message: 1 rows checked") for line in lines)
    # idempotent: a second pass finds nothing to do
    assert sum(keys.reencrypt_all(crypto.keyring()).values()) == 0
    card_keys.reset_cache()


def test_reencryption_does_not_overwrite_a_row_written_meanwhile(own_keys_file, loaded_registry,
                                                                 monkeypatch):
    _make_every_kind_of_ciphertext()
    from kartu.desk.models import Message

    message = Message.objects.get()
    add_active_key(own_keys_file, "field")
    real_encrypt = crypto.encrypt
    wrote = []

    def encrypt_while_the_bot_writes(plaintext, aad, ring=None):  # type: ignore[no-untyped-def]
        if aad == b"kartu:desk.message.text" and not wrote:
            wrote.append(1)
            Message.objects.filter(pk=message.pk).update(
                text_cipher=real_encrypt("diubah", aad))
        return real_encrypt(plaintext, aad, ring)

    monkeypatch.setattr(crypto, "encrypt", encrypt_while_the_bot_writes)
    keys.reencrypt_all(crypto.keyring())
    message.refresh_from_db()
    assert message.text == "diubah"
    assert crypto.key_id_of(message.text_cipher) == crypto.keyring().active_field


def test_a_rotation_refuses_to_start_with_an_unlisted_binary_column(own_keys_file, monkeypatch):
    listed = keys.encrypted_columns()
    monkeypatch.setattr(keys, "encrypted_columns",
                        lambda: tuple(c for c in listed if c.model != "desk.Message"))
    before = crypto.read_keys_file(own_keys_file)
    with pytest.raises(keys.RotationError, match=r"desk\.Message\.text_cipher is not listed"):
        keys.rotate(log=lambda _: None, wait=False)
    assert crypto.read_keys_file(own_keys_file) == before  # no key was added


@pytest.mark.parametrize("rotated", ["index", "field"])
@pytest.mark.django_db(transaction=True)
def test_a_rotation_that_starts_during_an_import_stops_it_cleanly(
    own_keys_file, tmp_path, monkeypatch, rotated
):
    """Rows written under the old index after the re-index passed them would be unfindable
    once the old key goes (or duplicate a person already moved); rows encrypted under the old
    field key after the re-encryption passed them would become unreadable once it is dropped.
    The import stops at the first chunk after the rotation's new key, and running it again
    afterwards completes it."""
    from kartu.registry import demo, importer

    path = tmp_path / "demo.csv"
    rows = demo.write_csv_file(path, 120)
    real_apply = importer._apply_chunk
    calls = {"n": 0}

    def apply_then_rotate(*args, **kwargs):
        calls["n"] += 1
        real_apply(*args, **kwargs)
        if calls["n"] == 1:  # a rotation starts (and finishes) after the first chunk
            keys.rotate(field=rotated == "field", index=rotated == "index",
                        log=lambda _: None, wait=False)

    monkeypatch.setattr(importer, "_apply_chunk", apply_then_rotate)
    with pytest.raises(importer.ImportFileError, match="rotation started during the import"):
        import_csv(path, progress=False, parallel=False, chunk_size=40)
    assert calls["n"] == 2  # the second chunk was refused, nothing of it written
    assert Person.objects.count() == len({p.nik for p in Person.objects.all()}) > 0
    monkeypatch.setattr(importer, "_apply_chunk", real_apply)
    again = import_csv(path, progress=False, parallel=False, chunk_size=40)
    assert again.rejected == 0
    assert len(crypto.keyring().index_keys) == 1
    people = list(Person.objects.all())
    assert len({p.nik for p in people}) == len(people)  # no NIK twice
    assert all(p.nik_index == crypto.blind_index(p.nik) for p in people)
    assert {crypto.key_id_of(p.nik_cipher) for p in people} == {crypto.keyring().active_field}
    assert Person.objects.count() == len(people) and again.rows == rows


def test_old_locks_that_keep_an_old_index_key_live_do_not_block_imports(
    own_keys_file, loaded_registry, tmp_path
):
    """A lock written before locks kept their NIK, on a NIK not in the registry, keeps the old
    index key live after a rotation; people are all moved, so imports must go on."""
    from kartu.registry import demo

    NikLock.objects.create(nik_index=crypto.blind_index("3174055708900099"), nik_cipher=None)
    report = keys.rotate(field=False, log=lambda _: None, wait=False)
    assert report.stuck_locks == 1 and len(crypto.keyring().index_keys) == 2
    path = tmp_path / "demo.csv"
    rows = demo.write_csv_file(path, 20)
    summary = import_csv(path, progress=False)
    assert summary.rows == rows and summary.rejected == 0
    ring = crypto.keyring()
    assert not Person.objects.exclude(nik_index_kid=ring.active_index).exists()


@pytest.mark.parametrize("rotated", ["index", "field"])
@pytest.mark.django_db(transaction=True)
def test_a_rotation_waits_for_an_open_import_chunk_even_with_nothing_to_move(
    own_keys_file, tmp_path, monkeypatch, rotated
):
    """A first import into an empty registry: the rotation (run while the first chunk's
    transaction is open) has no row to move, so it must wait for the chunk explicitly;
    otherwise the chunk commits its people under the key the rotation just retired."""
    import threading

    from django.db import connections

    from kartu.registry import demo, importer
    from kartu.registry.importer.writing import Writer

    path = tmp_path / "demo.csv"
    demo.write_csv_file(path, 90)
    real = Writer.existing_people
    rotation: list[threading.Thread] = []
    errors: list[BaseException] = []

    def rotate_in_another_thread() -> None:
        try:
            keys.rotate(field=rotated == "field", index=rotated == "index",
                        log=lambda _: None, wait=False)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def existing_people(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not rotation:  # first chunk, inside its transaction: a rotation starts now
            rotation.append(threading.Thread(target=rotate_in_another_thread))
            rotation[0].start()
            rotation[0].join(timeout=1.5)  # it must wait for this chunk, not finish
            assert rotation[0].is_alive()
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Writer, "existing_people", existing_people)
    with pytest.raises(importer.ImportFileError, match="rotation started during the import"):
        import_csv(path, progress=False, parallel=False, chunk_size=40)
    rotation[0].join(timeout=60)
    assert not rotation[0].is_alive() and not errors
    monkeypatch.setattr(Writer, "existing_people", real)
    import_csv(path, progress=False, parallel=False, chunk_size=40)
    ring = crypto.reload_keyring()
    people = list(Person.objects.all())
    assert len({p.nik for p in people}) == len(people) > 0
    assert {crypto.key_id_of(p.nik_cipher) for p in people} == {ring.active_field}
    assert {p.nik_index_kid for p in people} == {ring.active_index}
