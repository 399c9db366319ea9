"""Two audit indexes that cost a write per row and served no query as built.

`request_id`: no query filters on it (the trail's search and export filter by actor, action,
securable, outcome and time; the admin searches it with a case-insensitive `icontains`, which
no btree index serves), so its index goes. `outcome`: the trail filters on it, but of its three
values SUCCESS is nearly every row, which the planner reads by the primary key, not through an
index; the rare DENIED and FAILURE rows are what one looks for. A partial index on the rows that
are not SUCCESS serves those (`outcome = 'DENIED'` implies the index's condition) and costs
nothing when a SUCCESS row, such as each of a retention sweep's hundreds of thousands, is written.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0003_drop_unused_pattern_indexes'),
    ]

    operations = [
        migrations.AlterField(
            model_name='auditevent',
            name='outcome',
            field=models.CharField(choices=[('SUCCESS', 'Success'), ('DENIED', 'Denied'), ('FAILURE', 'Failure')], max_length=16),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='request_id',
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(condition=models.Q(('outcome', 'SUCCESS'), _negated=True), fields=['outcome'], name='audit_outcome_not_success'),
        ),
    ]
