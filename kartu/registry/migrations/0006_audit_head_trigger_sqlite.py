"""On SQLite the audit append is one ``INSERT … SELECT`` (kartu.registry.audit): it reads the
head, hashes the line with the ``kartu_sha256_hex`` function every connection registers, and
this trigger moves the head in the same statement. (PostgreSQL does all of it in the
``kartu_audit_append`` function of migration 0004.)"""

from django.db import migrations

SQLITE = """
CREATE TRIGGER IF NOT EXISTS registry_auditevent_move_head AFTER INSERT ON registry_auditevent
BEGIN
    UPDATE registry_audithead SET last_id = NEW.id, last_hash = NEW.hash, count = count + 1
    WHERE id = 1;
END;
"""
SQLITE_REVERSE = "DROP TRIGGER IF EXISTS registry_auditevent_move_head;"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(SQLITE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(SQLITE_REVERSE)


class Migration(migrations.Migration):
    dependencies = [("registry", "0005_plain_key_indexes")]
    operations = [migrations.RunPython(forwards, backwards)]
