"""Drop the model version table's index on `model_id` alone.

The unique constraint `uniq_model_version` is an index on (model_id, version), whose leading
column answers every lookup, join and cascade by model that the single-column index did. A row
that cannot be updated in place (a retention sweep moves most of the versions it archives or
deletes to another page) and every new version wrote an entry in both; now in one.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('registry', '0006_modelversion_archived_at'),
    ]

    operations = [
        migrations.AlterField(
            model_name='modelversion',
            name='model',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='versions', to='registry.registeredmodel'),
        ),
    ]
