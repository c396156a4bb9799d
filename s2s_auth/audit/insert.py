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

import datetime as dt
import sqlite3
import threading
from operator import itemgetter
from typing import Any

from django.db import connections, models, transaction
from django.db.backends.utils import CursorWrapper

__all__ = ["insert_rows", "rows_per_statement"]

#: Columns whose value the ORM sends unchanged when it is a ``str``.
_TEXT_FIELDS = (models.CharField, models.TextField)
_INTEGER_FIELDS = (
    models.IntegerField,
    models.BigIntegerField,
    models.PositiveIntegerField,
    models.PositiveBigIntegerField,
)
_STR_ONLY = {str}


def _adapter(field):
    """How the INSERT adapts a value of ``field`` that is not text: for the one type
    each column gets from :func:`~s2s_auth.audit.rows.build_row`, the backend's own
    adaptation that ``get_db_prep_save`` ends in, without the checks that cannot
    change such a value (a lazy string, an expression, a naive time, ``int()`` of an
    ``int``); any other value goes through ``get_db_prep_save`` itself."""
    kind = type(field)
    if kind is models.DateTimeField:  # aware: no warning, to_python returns it as is

        def adapt(value, connection):
            if type(value) is dt.datetime and value.tzinfo is dt.UTC:
                return connection.ops.adapt_datetimefield_value(value)
            return field.get_db_prep_save(value, connection)

    elif kind is models.JSONField:  # a dict: neither None, nor a Value, nor as_sql

        def adapt(value, connection):
            if type(value) is dict:
                return connection.ops.adapt_json_value(value, field.encoder)
            return field.get_db_prep_save(value, connection)

    elif kind in _INTEGER_FIELDS:  # an int: int(value) is value
        internal_type = field.get_internal_type()

        def adapt(value, connection):
            if type(value) is int:
                return connection.ops.adapt_integerfield_value(value, internal_type)
            return field.get_db_prep_save(value, connection)

    else:
        return field.get_db_prep_save
    return adapt


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
        text = [i for i, f in enumerate(self.fields) if type(f) in _TEXT_FIELDS]
        #: A row's values in column order; its text values.
        self.values = itemgetter(*[f.attname for f in self.fields])
        self.texts = itemgetter(*[self.fields[i].attname for i in text])
        self.text = text
        #: (index, adapter) of every column that is not text
        self.others = [(i, _adapter(f)) for i, f in enumerate(self.fields) if i not in text]
        self._sql: dict[int, str] = {}
        self._qmark: dict[int, str] = {}

    def sql(self, count: int, connection) -> str:
        """The statement for ``count`` rows."""
        sql = self._sql.get(count)
        if sql is None:
            values = connection.ops.bulk_insert_sql(self.fields, [self.placeholders] * count)
            sql = self._sql[count] = self.prefix + values
        return sql

    def qmark(self, count: int, raw_cursor) -> str:
        """SQLite: the statement for ``count`` rows as Django's cursor rewrites it
        (``?`` for ``%s``) before every execute, rewritten once."""
        sql = self._qmark.get(count)
        if sql is None:
            sql = self._qmark[count] = raw_cursor.convert_query(self._sql[count])
        return sql

    def params(self, rows: list[dict[str, Any]], connection) -> list[Any]:
        """The parameters of ``rows``, adapted as ``Model.save()`` adapts them: a ``str``
        for a text column unchanged, anything else by its field."""
        params: list[Any] = []
        for row in rows:
            values = list(self.values(row))
            if set(map(type, self.texts(row))) != _STR_ONLY:
                for i in self.text:
                    if type(values[i]) is not str:
                        values[i] = self.fields[i].get_db_prep_save(values[i], connection)
            for i, adapt in self.others:
                values[i] = adapt(values[i], connection)
            params += values
        return params


def _execute(cursor, statement: _Statement, rows: list[dict[str, Any]], connection) -> None:
    """Execute the INSERT of ``rows`` on ``cursor`` (a Django cursor of ``connection``).
    On SQLite with a plain cursor (no query logging, no ``execute_wrapper``) the
    statement already in ``?`` form goes to the DB-API cursor, with the same checks and
    error wrapping as Django's ``CursorWrapper.execute``."""
    sql = statement.sql(len(rows), connection)
    params = statement.params(rows, connection)
    raw = cursor.cursor
    if type(cursor) is not CursorWrapper or connection.execute_wrappers:
        cursor.execute(sql, params)
    elif isinstance(raw, sqlite3.Cursor) and hasattr(raw, "convert_query"):
        connection.validate_no_broken_transaction()
        with connection.wrap_database_errors:
            sqlite3.Cursor.execute(raw, statement.qmark(len(rows), raw), params)
    else:
        cursor.execute(sql, params)


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


def insert_rows(rows: list[dict[str, Any]], alias: str, connection=None, cursor=None) -> None:
    """INSERT ``rows`` (complete: chain fields and ``hash`` included) on ``alias``'s
    connection, in its current transaction; in autocommit, all of them or none (one
    statement, or a transaction around the statements when the backend limits how many
    values one may carry: SQLite's 999).
    ``connection``: another connection to ``alias``'s database, in autocommit (the
    group commit's), to which no more than :func:`rows_per_statement` rows are given;
    ``cursor``: a cursor of ``connection`` kept open (the batch connection's)."""
    if not rows:
        return
    if connection is not None:
        if len(rows) > rows_per_statement(connection):
            raise ValueError("more rows than one statement carries")
        statement = _statement(connection)
        if cursor is not None:
            _execute(cursor, statement, rows, connection)
            return
        with connection.cursor() as cursor:
            _execute(cursor, statement, rows, connection)
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
            _execute(cursor, statement, chunk, connection)
