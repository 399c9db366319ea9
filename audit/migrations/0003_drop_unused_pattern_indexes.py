"""Drop the audit table's `varchar_pattern_ops` ("_like") indexes that no query uses.

On PostgreSQL Django gives every indexed or unique CharField a second index for LIKE
prefix searches. Of the audit table's, only `action`'s serves a query (the trail's
`action=<prefix>.` filter, audit.selectors.audit_event_search); `actor`, `securable` and
`outcome` are filtered by equality (their plain index serves that), `hash` is only
compared whole (its unique index), and `request_id` is only searched by the admin's
case-insensitive `icontains`, which no btree index serves. Each index costs a write per
audit row, and bulk system work (a retention sweep) writes hundreds of thousands of rows.
The plain indexes and the unique constraint stay, so the model state does not change.
"""

from django.db import migrations

FIELDS = ("actor", "securable", "outcome", "request_id", "hash")


def _pattern_indexes(schema_editor, table):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = %s AND indexdef LIKE %s",
            [table, "%varchar_pattern_ops%"],
        )
        return cursor.fetchall()


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    model = apps.get_model("audit", "AuditEvent")
    table = model._meta.db_table
    quote = schema_editor.quote_name
    for name, definition in _pattern_indexes(schema_editor, table):
        column = definition.rsplit("(", 1)[1].split()[0].strip('"')
        if column in FIELDS:
            schema_editor.execute(f"DROP INDEX IF EXISTS {quote(name)}")


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    model = apps.get_model("audit", "AuditEvent")
    present = {
        definition.rsplit("(", 1)[1].split()[0].strip('"')
        for _, definition in _pattern_indexes(schema_editor, model._meta.db_table)
    }
    for name in FIELDS:
        field = model._meta.get_field(name)
        if field.column not in present:
            schema_editor.execute(schema_editor._create_like_index_sql(model, field))


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only")]
    operations = [migrations.RunPython(forward, backward)]
