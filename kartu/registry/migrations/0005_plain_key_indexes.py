"""Plain unique constraints instead of unique=True / db_index=True on the looked-up keys: on
PostgreSQL those add a second, ``varchar_pattern_ops`` index per column that kartu never uses
(no LIKE on blind indexes or KPJ numbers) and that every import row and audit record paid for.
The audit hash loses its unique index (the chain check does not need it).

SQLite rebuilds the audit table for these changes, which drops its append-only trigger: it is
created again at the end.
"""

from django.db import migrations, models

SQLITE_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS registry_auditevent_no_update BEFORE UPDATE ON registry_auditevent
BEGIN SELECT RAISE(ABORT, 'registry_auditevent is append-only'); END;
"""


def restore_sqlite_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(SQLITE_TRIGGER)


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0004_audit_append_function"),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(max_length=64),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="subject_index",
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.AlterField(
            model_name="membership",
            name="kpj",
            field=models.CharField(max_length=11, verbose_name="nomor KPJ"),
        ),
        migrations.AlterField(
            model_name="niklock",
            name="nik_index",
            field=models.CharField(max_length=32),
        ),
        migrations.AlterField(
            model_name="person",
            name="nik_index",
            field=models.CharField(max_length=32),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["subject_index"], name="registry_audit_subject_idx"),
        ),
        migrations.AddConstraint(
            model_name="membership",
            constraint=models.UniqueConstraint(
                fields=("kpj",), name="registry_membership_kpj_uniq"
            ),
        ),
        migrations.AddConstraint(
            model_name="niklock",
            constraint=models.UniqueConstraint(
                fields=("nik_index",), name="registry_niklock_nik_index_uniq"
            ),
        ),
        migrations.AddConstraint(
            model_name="person",
            constraint=models.UniqueConstraint(
                fields=("nik_index",), name="registry_person_nik_index_uniq"
            ),
        ),
        migrations.RunPython(restore_sqlite_trigger, migrations.RunPython.noop),
    ]
