"""The INSERT of audit rows: plain dicts in, one multi-row ``INSERT ... VALUES`` out.

Every audit record paid for a model instance, the ORM's INSERT compiler and a
``RETURNING id`` nobody reads: as much CPU as the INSERT itself. Here the statement
is built once per database vendor from :class:`~s2s_auth.models.AuditRecord`'s
``_meta`` (table, columns, Django's quoting and ``bulk_insert_sql``) and each value
is adapted the way the ORM adapts it (``Field.get_db_prep_save``; a ``str`` for a
plain text column is passed as it is, which is all that does for one). What reaches
the database is what ``Model.save()`` / ``bulk_create()`` would have sent.
"""

from __future__ import annotations

import threading
from typing import Any

from django.db import connections, models, transaction

__all__ = ["insert_rows", "rows_per_statement"]

#: Columns whose value the ORM sends unchanged when it is a ``str``.
_TEXT_FIELDS = (models.CharField, models.TextField)


class _Statement:
    """AuditRecord's INSERT for one database vendor."""

    def __init__(self, connection):
        from s2s_auth.models import AuditRecord

        meta = AuditRecord._meta
        quote = connection.ops.quote_name
        self.fields = [f for f in meta.concrete_fields if not f.primary_key]
        for field in self.fields:
            if getattr(field, "get_placeholder", None) is not None:  # e.g. a geometry
                raise NotImplementedError(f"{field.name}: a column with its own placeholder")
        columns = ", ".join(quote(f.column) for f in self.fields)
        self.prefix = f"INSERT INTO {quote(meta.db_table)} ({columns}) "
        self.placeholders = ["%s"] * len(self.fields)
        #: (attname, field, whether a str value passes unchanged), in column order
        self.preps = [(f.attname, f, type(f) in _TEXT_FIELDS) for f in self.fields]
        self._sql: dict[int, str] = {}

    def sql(self, count: int, connection) -> str:
        """The statement for ``count`` rows."""
        sql = self._sql.get(count)
        if sql is None:
            values = connection.ops.bulk_insert_sql(self.fields, [self.placeholders] * count)
            sql = self._sql[count] = self.prefix + values
        return sql

    def params(self, rows: list[dict[str, Any]], connection) -> list[Any]:
        params: list[Any] = []
        append = params.append
        for row in rows:
            for name, field, text in self.preps:
                value = row[name]
                if text and type(value) is str:
                    append(value)
                else:
                    append(field.get_db_prep_save(value, connection))
        return params


_statements: dict[str, _Statement] = {}
_statements_lock = threading.Lock()


def _statement(connection) -> _Statement:
    statement = _statements.get(connection.vendor)
    if statement is None:
        with _statements_lock:
            statement = _statements.setdefault(connection.vendor, _Statement(connection))
    return statement


_per_statement: dict[str, int] = {}


def rows_per_statement(connection) -> int:
    """How many rows one INSERT may carry on ``connection`` (SQLite: 999 values), at
    most 1,000."""
    size = _per_statement.get(connection.vendor)
    if size is None:
        fields = _statement(connection).fields
        size = _per_statement[connection.vendor] = max(
            1, connection.ops.bulk_batch_size(fields, [None] * 1000)
        )
    return size


def insert_rows(rows: list[dict[str, Any]], alias: str, connection=None) -> None:
    """INSERT ``rows`` (complete: chain fields and ``hash`` included) on ``alias``'s
    connection, in its current transaction; in autocommit, all of them or none (one
    statement, or a transaction around the statements when the backend limits how many
    values one may carry: SQLite's 999).
    ``connection``: another connection to ``alias``'s database, in autocommit (the
    group commit's), to which no more than :func:`rows_per_statement` rows are given."""
    if not rows:
        return
    if connection is not None:
        if len(rows) > rows_per_statement(connection):
            raise ValueError("more rows than one statement carries")
        statement = _statement(connection)
        with connection.cursor() as cursor:
            cursor.execute(statement.sql(len(rows), connection), statement.params(rows, connection))
        return
    connection = connections[alias]
    statement = _statement(connection)
    size = max(1, connection.ops.bulk_batch_size(statement.fields, rows)) if rows[1:] else 1
    chunks = [rows[i : i + size] for i in range(0, len(rows), size)]
    if len(chunks) > 1:
        block = transaction.atomic(using=alias, savepoint=False)
    else:  # as Model.save(): a failed INSERT in an open block marks it for rollback
        block = transaction.mark_for_rollback_on_error(using=alias)
    with block, connection.cursor() as cursor:
        for chunk in chunks:
            cursor.execute(
                statement.sql(len(chunk), connection), statement.params(chunk, connection)
            )
