"""Migration 0007: AuditRecord keeps the indexes its queries use, and no index on
``outcome`` or ``principal`` alone (each costs every INSERT); it goes back and forth."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from s2s_auth.models import AuditRecord

TABLE = AuditRecord._meta.db_table
BEFORE = [("s2s_auth", "0006_clientkey")]


def _index_columns() -> list[list[str]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, TABLE)
    return sorted(
        info["columns"]
        for info in constraints.values()
        if info["index"] and not info["primary_key"] and not info["unique"]
    )


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def _latest():
    executor = MigrationExecutor(connection)
    return [key for key in executor.loader.graph.leaf_nodes() if key[0] == "s2s_auth"]


@pytest.mark.django_db(transaction=True)
def test_only_the_indexes_queries_use_and_the_migration_reverses():
    latest = _latest()
    after = _index_columns()
    assert ["outcome"] not in after and ["principal"] not in after
    assert ["outcome", "time"] in after and ["principal", "time"] in after
    assert ["time"] in after and ["mechanism"] in after
    try:
        _migrate(BEFORE)
        before = _index_columns()
        assert ["outcome"] in before and ["principal"] in before
    finally:
        _migrate(latest)
    assert _index_columns() == after
