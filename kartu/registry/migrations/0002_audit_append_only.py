"""Make the audit table append-only in the database itself.

UPDATE is refused on every backend; DELETE is refused on PostgreSQL (on SQLite Django's test
flush deletes rows, and a deletion is caught by the hash chain anyway).
"""

from django.db import migrations

SQLITE = """
CREATE TRIGGER registry_auditevent_no_update BEFORE UPDATE ON registry_auditevent
BEGIN SELECT RAISE(ABORT, 'registry_auditevent is append-only'); END;
"""
SQLITE_REVERSE = "DROP TRIGGER IF EXISTS registry_auditevent_no_update;"

POSTGRES = """
CREATE OR REPLACE FUNCTION registry_auditevent_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'registry_auditevent is append-only'; END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER registry_auditevent_no_change BEFORE UPDATE OR DELETE ON registry_auditevent
FOR EACH ROW EXECUTE FUNCTION registry_auditevent_append_only();
"""
POSTGRES_REVERSE = """
DROP TRIGGER IF EXISTS registry_auditevent_no_change ON registry_auditevent;
DROP FUNCTION IF EXISTS registry_auditevent_append_only();
"""


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        schema_editor.execute(SQLITE)
    elif vendor == "postgresql":
        schema_editor.execute(POSTGRES)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        schema_editor.execute(SQLITE_REVERSE)
    elif vendor == "postgresql":
        schema_editor.execute(POSTGRES_REVERSE)


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
