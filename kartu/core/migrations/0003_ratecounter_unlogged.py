"""On PostgreSQL the rate-limit counters live in an UNLOGGED table.

A counter is a few bytes that only matter for the next hour, and it is bumped on every
verification: in an ordinary table each bump waits for a WAL flush at commit. An unlogged
table writes no WAL, so a transaction that only touched it commits without waiting (and
PostgreSQL does that on its own). The price: after a crash of the database server the table
comes back empty, so the limits start afresh - exactly what happens to the same counters in
Redis without persistence, the other store kartu supports.
"""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE core_ratecounter SET UNLOGGED")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE core_ratecounter SET LOGGED")


class Migration(migrations.Migration):
    dependencies = [("core", "0002_onetimecode")]
    operations = [migrations.RunPython(forwards, backwards)]
