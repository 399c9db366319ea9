"""Leave room in the model version table's pages for updates in place.

A version row changes a few times in its life (status when its files are sealed, lifecycle
and stage when archived or deleted, by hand or by retention), never in an indexed column.
With free space on its page PostgreSQL updates such a row "HOT": the new row version goes on
the same page and none of the table's four indexes is written. With the default fillfactor
(100) COPY- and INSERT-filled pages are full, so every update moved the row to another page
and wrote an entry in every index: a retention sweep updates hundreds of thousands of rows.
Applies to pages written from now on; `VACUUM FULL registry_modelversion` (or pg_repack)
applies it to an existing table.
"""

from django.db import migrations

TABLE = "registry_modelversion"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} SET (fillfactor = 85)")


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("registry", "0004_retention")]
    operations = [migrations.RunPython(forward, backward)]
