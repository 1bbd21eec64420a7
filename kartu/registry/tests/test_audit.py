"""The audit chain notices an edited, deleted, reordered or cut-off record and says where."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from kartu.registry import audit
from kartu.registry.models import AuditEvent, AuditHead

pytestmark = [pytest.mark.django_db, pytest.mark.backends]


def make_chain(n: int = 5) -> list[AuditEvent]:
    return [
        audit.append(action="verify", channel="email", requester_ref=f"email:#{i}",
                     outcome="not_verified", reason="dob_mismatch", subject_index=f"{i:032x}")
        for i in range(n)
    ]


def drop_guard() -> None:
    """What an attacker with database access would do first."""
    with connection.cursor() as cur:
        if connection.vendor == "sqlite":
            cur.execute("DROP TRIGGER registry_auditevent_no_update")
        else:
            cur.execute("DROP TRIGGER registry_auditevent_no_change ON registry_auditevent")


def test_an_intact_chain_verifies():
    events = make_chain()
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
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
