"""When retention archived a version moves onto the version row.

A retention sweep archived a version with an UPDATE of the version and an upsert of its
`VersionRetention` row (a second row and its index entries per archived version, about half
a million at 1M versions); the delete rule then read the archive time back through a
correlated subquery. Now the archiving UPDATE sets `ModelVersion.archived_at` itself, the
delete rule reads the row it already scans, and `VersionRetention` only tracks file removal.
Its `archived_at` values are copied over before the column goes; its `policy` (which policy
archived the version) is also recorded by each archive's audit event, so it goes too.
"""

from django.db import migrations, models


def copy_forward(apps, schema_editor):
    ModelVersion = apps.get_model("registry", "ModelVersion")
    VersionRetention = apps.get_model("registry", "VersionRetention")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"UPDATE {ModelVersion._meta.db_table} AS v SET archived_at = r.archived_at "
            f"FROM {VersionRetention._meta.db_table} AS r "
            "WHERE r.version_id = v.id AND r.archived_at IS NOT NULL"
        )
        return
    for version_id, when in VersionRetention.objects.filter(archived_at__isnull=False).values_list(
        "version_id", "archived_at"
    ):
        ModelVersion.objects.filter(pk=version_id).update(archived_at=when)


def copy_backward(apps, schema_editor):
    ModelVersion = apps.get_model("registry", "ModelVersion")
    VersionRetention = apps.get_model("registry", "VersionRetention")
    for version_id, when in ModelVersion.objects.filter(archived_at__isnull=False).values_list(
        "pk", "archived_at"
    ):
        VersionRetention.objects.update_or_create(
            version_id=version_id, defaults={"archived_at": when}
        )


class Migration(migrations.Migration):
    dependencies = [("registry", "0005_modelversion_fillfactor")]
    operations = [
        migrations.AddField(
            model_name="modelversion",
            name="archived_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(copy_forward, copy_backward),
        migrations.RemoveField(model_name="versionretention", name="archived_at"),
        migrations.RemoveField(model_name="versionretention", name="policy"),
    ]
