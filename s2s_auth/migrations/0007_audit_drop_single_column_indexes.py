"""Drop AuditRecord's own indexes on ``outcome`` and ``principal``.

The composite indexes ``(outcome, time)`` and ``(principal, time)`` start with those
columns and serve the same lookups (the admin's filters, ``principal = …``), so the
single-column ones (and PostgreSQL's ``…_like`` twins) only cost every audit INSERT.
``AlterField`` would do it on PostgreSQL, but on SQLite Django rebuilds the whole table
to change an index: here the indexes are found by introspection and dropped (and
recreated on the way back) by name, with no table rewrite.
"""

from django.db import migrations, models

COLUMNS = ("outcome", "principal")


def _own_indexes(schema_editor, model, column):
    """Names of the non-unique indexes on exactly ``column``."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return sorted(
        name
        for name, info in constraints.items()
        if info["index"]
        and not info["unique"]
        and not info["primary_key"]
        and info["columns"] == [column]
    )


def drop(apps, schema_editor):
    model = apps.get_model("s2s_auth", "AuditRecord")
    for column in COLUMNS:
        for name in _own_indexes(schema_editor, model, column):
            schema_editor.execute(schema_editor._delete_index_sql(model, name))


def create(apps, schema_editor):
    model = apps.get_model("s2s_auth", "AuditRecord")
    for column in COLUMNS:
        if not _own_indexes(schema_editor, model, column):
            field = model._meta.get_field(column)
            for sql in schema_editor._field_indexes_sql(model, field):
                schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("s2s_auth", "0006_clientkey"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(drop, create)],
            state_operations=[
                migrations.AlterField(
                    model_name="auditrecord",
                    name="outcome",
                    field=models.CharField(
                        choices=[("accepted", "accepted"), ("refused", "refused")], max_length=8
                    ),
                ),
                migrations.AlterField(
                    model_name="auditrecord",
                    name="principal",
                    field=models.CharField(
                        blank=True, help_text="SPIFFE ID of the caller.", max_length=255
                    ),
                ),
            ],
        ),
    ]
