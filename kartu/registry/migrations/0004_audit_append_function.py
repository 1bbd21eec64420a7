"""The audit append as one PostgreSQL function, so a verification writes its record in a single
round trip (``kartu.registry.audit.append``).

The function hashes exactly the line ``audit.compute_hash`` hashes: the id, the tab-joined,
escaped fields the caller sends as ``p_body``, and the previous hash. ``kartu audit verify``
recomputes every hash in Python, so a difference between the two would show at once (and the
tests run the chain check after appends on PostgreSQL).
"""

from django.db import migrations

POSTGRES = r"""
CREATE OR REPLACE FUNCTION kartu_audit_append(
    p_at timestamptz, p_action text, p_channel text, p_requester_ref text,
    p_subject_index text, p_person_id bigint, p_outcome text, p_reason text, p_agent text,
    p_memberships text, p_body text, p_unless_locked text[]
) RETURNS bigint AS $$
DECLARE
    v_last_id bigint;
    v_last_hash text;
    v_id bigint;
    v_hash text;
BEGIN
    IF cardinality(p_unless_locked) > 0 AND EXISTS (
        SELECT 1 FROM registry_niklock WHERE nik_index = ANY (p_unless_locked)
    ) THEN
        RETURN NULL;
    END IF;
    SELECT last_id, last_hash INTO v_last_id, v_last_hash
        FROM registry_audithead WHERE id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO registry_audithead (id, last_id, last_hash, count)
            VALUES (1, 0, repeat('0', 64), 0) ON CONFLICT (id) DO NOTHING;
        SELECT last_id, last_hash INTO v_last_id, v_last_hash
            FROM registry_audithead WHERE id = 1 FOR UPDATE;
    END IF;
    v_id := v_last_id + 1;
    v_hash := encode(sha256(convert_to(
        v_id::text || E'\t' || p_body || E'\t' || v_last_hash, 'UTF8')), 'hex');
    INSERT INTO registry_auditevent (id, at, action, channel, requester_ref, subject_index,
                                     person_id, outcome, reason, agent, memberships,
                                     prev_hash, hash)
        VALUES (v_id, p_at, p_action, p_channel, p_requester_ref, p_subject_index,
                p_person_id, p_outcome, p_reason, p_agent, p_memberships, v_last_hash, v_hash);
    UPDATE registry_audithead SET last_id = v_id, last_hash = v_hash, count = count + 1
        WHERE id = 1;
    RETURN v_id;
END;
$$ LANGUAGE plpgsql;
"""
POSTGRES_REVERSE = "DROP FUNCTION IF EXISTS kartu_audit_append(timestamptz, text, text, text, " \
    "text, bigint, text, text, text, text, text, text[]);"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_REVERSE)


class Migration(migrations.Migration):
    dependencies = [("registry", "0003_audit_head")]
    operations = [migrations.RunPython(forwards, backwards)]
