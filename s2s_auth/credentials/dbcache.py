"""``ReplayDatabaseCache``: Django's database cache with an ``add()`` of one statement.

The embedded replay store (no Redis) is a table in the service's own database. Django's
``DatabaseCache.add()`` costs a transaction of three or four statements per call
(``SELECT COUNT(*)`` for the cull check, ``SELECT`` of the key, then ``INSERT`` or
``UPDATE``), on every service JWT, signed request and client assertion. Here
``add()`` is a single upsert, atomic in the database across every process and host
that shares it::

    INSERT INTO <table> (cache_key, value, expires) VALUES (...)
    ON CONFLICT (cache_key) DO UPDATE SET value = excluded.value, expires = excluded.expires
    WHERE <table>.expires < <now>

It affects one row when the key was absent or expired (the caller won) and none when
a live entry holds it (a replay): of two concurrent ``add()`` of one key exactly one
returns True. ``set()`` is the same upsert without the ``WHERE``, ``touch()`` one
``UPDATE``; ``get()`` and ``incr()`` are Django's (``incr`` is ``get`` + ``set``, not
atomic, as in Django; the throttles use ``get`` and ``set``). SQLite >= 3.24 and
PostgreSQL; on any other database every method is Django's own.

The table is Django's (``createcachetable`` makes it; the backend is a subclass, so
``migrate`` and ``s2s_auth.E020`` treat it as the database cache it is).

**Culling.** There is no ``COUNT(*)`` per write. Each process deletes the expired rows
(one ``DELETE`` on the indexed ``expires`` column) after every ``SWEEP_EVERY`` writes
(default 1000) or ``SWEEP_SECONDS`` (default 60), whichever comes first.
**Live rows are never culled**: a replay store that forgot a live jti or nonce would
accept its replay, so ``MAX_ENTRIES`` and ``CULL_FREQUENCY`` do not drop entries. The
table holds the keys still live (calls per second times their lifetime) plus at most
one sweep interval of expired ones; when ``OPTIONS["MAX_ENTRIES"]`` is given, a sweep
that leaves more live rows than that logs a warning.

Errors are not swallowed (Django's ``add()`` returns False on any database error):
a store that cannot answer raises, and the replay check turns that into a 503.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import pickle
import sqlite3
import threading
import time
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.db import DatabaseCache
from django.db import DatabaseError, connections, models, router, transaction
from django.utils.timezone import now as tz_now

from s2s_auth.core import sqlite_turns

__all__ = ["ReplayDatabaseCache"]

logger = logging.getLogger("s2s_auth.replay")

#: Databases whose ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` this backend uses.
UPSERT_VENDORS = frozenset(
    {"postgresql", "sqlite"} if sqlite3.sqlite_version_info >= (3, 24) else {"postgresql"}
)


class _Sweeps:
    """When this process last deleted the expired rows of each (database, table)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._writes: dict[tuple[str, str], int] = {}
        self._last: dict[tuple[str, str], float] = {}

    def due(self, where: tuple[str, str], every: int, seconds: float) -> bool:
        """Count one write; True (and start a new interval) when a sweep is due."""
        now = time.monotonic()
        with self._lock:
            writes = self._writes.get(where, 0) + 1
            last = self._last.setdefault(where, now)
            if writes < every and now - last < seconds:
                self._writes[where] = writes
                return False
            self._writes[where] = 0
            self._last[where] = now
            return True


_sweeps = _Sweeps()


class ReplayDatabaseCache(DatabaseCache):
    """Django's ``DatabaseCache``, its writes one statement each; see the module."""

    def __init__(self, table, params):
        super().__init__(table, params)
        options = params.get("OPTIONS", {})
        self._sweep_every = max(1, int(options.get("SWEEP_EVERY", 1000)))
        self._sweep_seconds = float(options.get("SWEEP_SECONDS", 60))
        self._warn_above = int(options["MAX_ENTRIES"]) if "MAX_ENTRIES" in options else None
        self._sql: dict[str, tuple[str, str, str]] = {}
        self._expires_converters: dict[str, tuple] = {}
        self._selects: dict[tuple[str, int], str] = {}

    # -- the cache API --------------------------------------------------------------

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        key = self.make_and_validate_key(key, version=version)
        db = router.db_for_write(self.cache_model_class)
        if connections[db].vendor not in UPSERT_VENDORS:
            return self._base_set("add", key, value, timeout)
        return self._upsert(db, "add", key, value, timeout)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        key = self.make_and_validate_key(key, version=version)
        db = router.db_for_write(self.cache_model_class)
        if connections[db].vendor not in UPSERT_VENDORS:
            self._base_set("set", key, value, timeout)
        else:
            self._upsert(db, "set", key, value, timeout)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        key = self.make_and_validate_key(key, version=version)
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        if connection.vendor not in UPSERT_VENDORS:
            return self._base_set("touch", key, None, timeout)
        now, expires = self._now_and_expiry(connection, timeout)
        with self._statement(db) as cursor:
            cursor.execute(self._statements(connection)[2], [expires, key, now])
            return cursor.rowcount == 1

    def get_many(self, keys, version=None):
        """Django's ``get_many`` (and so ``get``: the throttles read with it on every
        token request), without the expression, its field and the SQL built per call."""
        if not keys:
            return {}
        db = router.db_for_read(self.cache_model_class)
        connection = connections[db]
        if connection.vendor not in UPSERT_VENDORS:
            return super().get_many(keys, version=version)
        key_map = {self.make_and_validate_key(key, version=version): key for key in keys}
        with connection.cursor() as cursor:
            cursor.execute(self._select(connection, len(key_map)), list(key_map))
            rows = cursor.fetchall()
        expression, converters = self._converters(connection)
        now = tz_now()
        result, expired = {}, []
        for key, value, expires in rows:
            for converter in converters:
                expires = converter(expires, expression, connection)
            if expires < now:
                expired.append(key)
            else:
                pickled = base64.b64decode(connection.ops.process_clob(value).encode())
                result[key_map.get(key)] = pickle.loads(pickled)  # noqa: S301 - as Django's
        self._base_delete_many(expired)
        return result

    def _select(self, connection, count: int) -> str:
        """The SELECT of ``count`` keys (built once per vendor and count)."""
        sql = self._selects.get((connection.vendor, count))
        if sql is None:
            q = connection.ops.quote_name
            placeholders = ", ".join(["%s"] * count)
            sql = (
                f"SELECT {q('cache_key')}, {q('value')}, {q('expires')} "  # noqa: S608
                f"FROM {q(self._table)} WHERE {q('cache_key')} IN ({placeholders})"
            )
            if len(self._selects) < 64:  # the counts callers use, not every count
                self._selects[(connection.vendor, count)] = sql
        return sql

    def _converters(self, connection) -> tuple:
        """The ``expires`` column's converters (Django builds them per call)."""
        found = self._expires_converters.get(connection.vendor)
        if found is None:
            expression = models.Expression(output_field=models.DateTimeField())
            converters = connection.ops.get_db_converters(
                expression
            ) + expression.get_db_converters(connection)
            found = self._expires_converters[connection.vendor] = (expression, converters)
        return found

    # -- one statement per write ----------------------------------------------------

    def _upsert(self, db: str, mode: str, key: str, value, timeout) -> bool:
        connection = connections[db]
        now, expires = self._now_and_expiry(connection, timeout)
        pickled = pickle.dumps(value, self.pickle_protocol)
        encoded = base64.b64encode(pickled).decode("latin1")
        add_sql, set_sql, _ = self._statements(connection)
        with self._statement(db) as cursor:
            if mode != "add":
                cursor.execute(set_sql, [key, encoded, expires])
                written = True
            elif connection.vendor == "postgresql":
                cursor.execute(add_sql, [key, encoded, expires, encoded, expires, key, now])
                written = cursor.fetchone()[0] == 1
            else:
                cursor.execute(add_sql, [key, encoded, expires, now])
                written = cursor.rowcount == 1
        if _sweeps.due((db, self._table), self._sweep_every, self._sweep_seconds):
            self._sweep(db, now)
        return written

    def _now_and_expiry(self, connection, timeout):
        """(now, expires) adapted for the database, truncated to the second like Django's."""
        timeout = self.get_backend_timeout(timeout)
        now = tz_now().replace(microsecond=0)
        if timeout is None:
            expires = datetime.max
        else:
            expires = datetime.fromtimestamp(timeout, tz=UTC if settings.USE_TZ else None)
        adapt = connection.ops.adapt_datetimefield_value
        return adapt(now), adapt(expires.replace(microsecond=0))

    def _statements(self, connection) -> tuple[str, str, str]:
        """The add, set and touch SQL for this connection's quoting (built once).

        PostgreSQL's ``add`` is not the upsert but one statement of two parts: an
        ``INSERT ... ON CONFLICT DO NOTHING`` (an absent key) and an ``UPDATE`` of the
        row only when it expired. ``DO UPDATE ... WHERE`` false would still lock the
        live row, and a row lock is a write: every replay would wait for a WAL flush
        (~4 ms here against 0.2 ms). Concurrent adds still have one winner: a second
        ``INSERT`` waits for the first and does nothing, a second ``UPDATE`` waits for
        the row lock and finds the row live again. (Should a sweep delete an expired
        row between the two parts, that one call answers "seen": never a second win.)
        """
        sql = self._sql.get(connection.vendor)
        if sql is None:
            q = connection.ops.quote_name
            table, key, value, expires = q(self._table), q("cache_key"), q("value"), q("expires")
            insert = f"INSERT INTO {table} ({key}, {value}, {expires}) VALUES (%s, %s, %s) "  # noqa: S608
            upsert = (
                f"{insert}ON CONFLICT ({key}) DO UPDATE SET {value} = excluded.{value}, "
                f"{expires} = excluded.{expires}"
            )
            if connection.vendor == "postgresql":
                add = (
                    f"WITH inserted AS ({insert}ON CONFLICT ({key}) DO NOTHING RETURNING 1), "  # noqa: S608
                    f"renewed AS (UPDATE {table} SET {value} = %s, {expires} = %s "
                    f"WHERE {key} = %s AND {expires} < %s RETURNING 1) "
                    "SELECT (SELECT COUNT(*) FROM inserted) + (SELECT COUNT(*) FROM renewed)"
                )
            else:
                add = f"{upsert} WHERE {table}.{expires} < %s"
            sql = (
                add,
                upsert,
                f"UPDATE {table} SET {expires} = %s WHERE {key} = %s AND {expires} >= %s",  # noqa: S608
            )
            self._sql[connection.vendor] = sql
        return sql

    @contextlib.contextmanager
    def _statement(self, db: str):
        """A cursor for writing; inside the caller's transaction, in a savepoint, so that
        a failing statement cannot break that transaction (PostgreSQL aborts it
        otherwise); in autocommit on a SQLite file, in a turn among its writers
        (:mod:`s2s_auth.core.sqlite_turns`)."""
        connection = connections[db]
        if connection.in_atomic_block:
            block = transaction.atomic(using=db)
        else:
            block = sqlite_turns.turn(connection)
        with block, connection.cursor() as cursor:
            yield cursor

    # -- culling --------------------------------------------------------------------

    def _sweep(self, db: str, now) -> None:
        """Delete the expired rows; a failure is logged and left to the next sweep."""
        connection = connections[db]
        try:
            with self._statement(db) as cursor:
                self._delete_expired(cursor, connection, now)
                if self._warn_above is not None:
                    table = connection.ops.quote_name(self._table)
                    cursor.execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608
                    live = cursor.fetchone()[0]
                    if live > self._warn_above:
                        logger.warning(
                            "replay store %s: %d live entries, more than MAX_ENTRIES=%d "
                            "(live entries are never culled)",
                            self._table,
                            live,
                            self._warn_above,
                        )
        except DatabaseError as exc:
            logger.warning("replay store %s: sweep failed (%s)", self._table, type(exc).__name__)

    def _cull(self, db, cursor, now, num):
        """Django's cull (on databases without the upsert): expired rows only."""
        connection = connections[db]
        self._delete_expired(cursor, connection, connection.ops.adapt_datetimefield_value(now))

    def _delete_expired(self, cursor, connection, now) -> None:
        table = connection.ops.quote_name(self._table)
        expires = connection.ops.quote_name("expires")
        cursor.execute(f"DELETE FROM {table} WHERE {expires} < %s", [now])  # noqa: S608
