"""Create the audit chain's head row up front, so the first two concurrent appends cannot both
try to create it."""

from django.db import migrations

GENESIS = "0" * 64


def create_head(apps, schema_editor):
    AuditHead = apps.get_model("registry", "AuditHead")
    AuditHead.objects.get_or_create(pk=1, defaults={"last_id": 0, "last_hash": GENESIS, "count": 0})


class Migration(migrations.Migration):
    dependencies = [("registry", "0002_audit_append_only")]
    operations = [migrations.RunPython(create_head, migrations.RunPython.noop)]
