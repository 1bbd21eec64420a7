"""The audit chain notices an edited, deleted, reordered or cut-off record and says where."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from kartu.registry import audit
from kartu.registry.models import AuditEvent, AuditHead, NikLock

pytestmark = [pytest.mark.django_db, pytest.mark.backends]


def make_chain(n: int = 5) -> list[AuditEvent]:
    ids = [
        audit.append(action="verify", channel="email", requester_ref=f"email:#{i}",
                     outcome="not_verified", reason="dob_mismatch", subject_index=f"{i:032x}")
        for i in range(n)
    ]
    return list(AuditEvent.objects.filter(pk__in=ids).order_by("pk"))


def drop_guard() -> None:
    """What an attacker with database access would do first."""
    with connection.cursor() as cur:
        if connection.vendor == "sqlite":
            cur.execute("DROP TRIGGER registry_auditevent_no_update")
        else:
            cur.execute("DROP TRIGGER registry_auditevent_no_change ON registry_auditevent")


def test_an_intact_chain_verifies():
    events = make_chain()
    assert [e.pk for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == audit.GENESIS
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    assert all(audit.compute_hash(e) == e.hash for e in events)
    report = audit.verify_chain()
    assert report.ok and report.checked == 5


def test_the_database_refuses_to_update_audit_rows():
    make_chain(2)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=1).update(outcome="disclosed")


def test_an_edited_record_is_found():
    make_chain()
    drop_guard()
    AuditEvent.objects.filter(pk=3).update(reason="")
    report = audit.verify_chain()
    assert report.problems == ["record 3: contents were edited after it was written"]


def test_a_deleted_record_is_found():
    make_chain()
    drop_guard()
    with connection.cursor() as cur:
        cur.execute("DELETE FROM registry_auditevent WHERE id = 2")
    problems = audit.verify_chain().problems
    assert problems[0].startswith("record 3: expected record 2 here (records missing)")
    assert any("record 3: does not follow" in p for p in problems)


def test_reordered_records_are_found():
    make_chain()
    drop_guard()
    a, b = AuditEvent.objects.get(pk=2), AuditEvent.objects.get(pk=3)
    fields = ["at", "requester_ref", "subject_index", "prev_hash"]
    for f in fields:  # swap the contents of records 2 and 3
        va, vb = getattr(a, f), getattr(b, f)
        AuditEvent.objects.filter(pk=2).update(**{f: vb})
        AuditEvent.objects.filter(pk=3).update(**{f: va})
    problems = audit.verify_chain().problems
    assert any(p.startswith("record 2:") for p in problems)


def test_records_cut_off_the_end_are_found():
    make_chain()
    drop_guard()
    with connection.cursor() as cur:
        cur.execute("DELETE FROM registry_auditevent WHERE id >= 4")
    problems = audit.verify_chain().problems
    assert problems and problems[0].startswith("end of chain: the log ends at record 3")


def test_audit_verify_command_exit_status(capsys):
    make_chain(3)
    call_command("audit", "verify")
    assert "intact: 3 records" in capsys.readouterr().out
    drop_guard()
    AuditEvent.objects.filter(pk=1).update(channel="x")
    with pytest.raises(SystemExit) as exit_:
        call_command("audit", "verify")
    assert exit_.value.code == 1
    assert "record 1: contents were edited" in capsys.readouterr().out


def test_head_tracks_the_last_record():
    events = make_chain(3)
    head = AuditHead.objects.get(pk=1)
    assert (head.last_id, head.last_hash, head.count) == (3, events[-1].hash, 3)


def test_a_person_sees_only_their_own_history():
    audit.append(action="disclose", channel="email", requester_ref="email:#1",
                 outcome="disclosed", person_id=7)
    audit.append(action="verify", channel="x", requester_ref="x:#2", outcome="not_verified",
                 person_id=8)
    audit.append(action="lock", channel="x", requester_ref="x:#2", outcome="done", person_id=7)
    assert [e.channel for e in audit.for_person(7)] == ["email"]


def test_the_writer_hashes_what_the_checker_hashes_even_for_awkward_fields():
    # On PostgreSQL the hash is computed by the kartu_audit_append function, on SQLite in
    # Python; either way the checker (Python) must recompute the same value.
    for text in ("tab\there", "back\\slash", "Budi Śantoso — agen", "", "a\\tb"):
        audit.append(action="verify", channel="desk", requester_ref=f"agent:{text}",
                     outcome="verified", agent=text, reason=text[:32], memberships="1,2")
    events = list(AuditEvent.objects.order_by("pk"))
    assert [e.agent for e in events] == ["tab\there", "back\\slash", "Budi Śantoso — agen", "",
                                         "a\\tb"]
    assert all(audit.compute_hash(e) == e.hash for e in events)
    assert audit.verify_chain().ok


def test_unless_locked_writes_nothing_for_a_locked_nik():
    NikLock.objects.create(nik_index="a" * 32)
    assert audit.append(action="disclose", channel="email", requester_ref="email:#1",
                        outcome="disclosed", unless_locked=["b" * 32, "a" * 32]) is None
    assert not AuditEvent.objects.exists()
    first = audit.append(action="disclose", channel="email", requester_ref="email:#1",
                         outcome="disclosed", unless_locked=["c" * 32])
    assert first == 1 and AuditEvent.objects.get().pk == 1
    assert audit.verify_chain().ok


def test_append_is_atomic_on_its_own_and_joins_a_callers_transaction():
    audit.append(action="verify", channel="email", requester_ref="email:#1", outcome="verified")

    def caller_that_fails_after_the_append() -> None:
        with transaction.atomic():
            audit.append(action="verify", channel="email", requester_ref="email:#2",
                         outcome="verified")
            raise RuntimeError("the caller fails after the append")

    with pytest.raises(RuntimeError):
        caller_that_fails_after_the_append()
    assert list(AuditEvent.objects.values_list("requester_ref", flat=True)) == ["email:#1"]
    assert AuditHead.objects.get(pk=1).count == 1
    assert audit.verify_chain().ok


def test_a_missing_head_row_is_made_again_by_the_next_append():
    AuditHead.objects.all().delete()
    assert audit.append(action="verify", channel="email", requester_ref="email:#1",
                        outcome="verified") == 1
    assert AuditHead.objects.get(pk=1).count == 1
    assert audit.verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_keep_one_unbroken_chain():
    """Writers in several threads (each its own connection): every record is kept, ids run
    1..n without a gap, and the chain and the head agree."""
    import threading

    from django.db import connections

    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(25):
                audit.append(action="verify", channel="email", requester_ref=f"email:#{n}-{i}",
                             outcome="not_verified", reason="dob_mismatch")
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()  # this thread's connection: the test DB must drop

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == list(range(1, 101))
    report = audit.verify_chain()
    assert report.ok and report.checked == 100, report.problems


def test_no_record_is_dropped_when_another_writer_makes_the_missing_head(monkeypatch):
    """With no head row (a test flush deletes it), the first statement writes nothing; if
    another writer makes the head before this one looks, the record must still be written
    (it used to be taken for a locked NIK and silently dropped)."""
    from kartu.core import sql

    if connection.vendor != "sqlite":
        pytest.skip("on PostgreSQL kartu_audit_append makes a missing head itself, locked")
    AuditHead.objects.all().delete()
    real = sql.hot_cursor
    statements = {"n": 0}

    class racing_cursor(real):  # type: ignore[misc, valid-type]
        def __exit__(self, *exc):  # type: ignore[no-untyped-def]
            super().__exit__(*exc)
            statements["n"] += 1
            if statements["n"] == 1:  # "another writer" makes the head right after
                AuditHead.objects.create(pk=1, last_id=0, last_hash=audit.GENESIS, count=0)

    monkeypatch.setattr(sql, "hot_cursor", racing_cursor)
    record_id = audit.append(action="verify", channel="email", requester_ref="email:#1",
                             outcome="not_verified", reason="dob_mismatch")
    assert record_id == 1 and AuditEvent.objects.count() == 1
    assert audit.verify_chain().ok
