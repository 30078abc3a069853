"""Fixtures of the security tests: the API tests' fixtures (tests/service/conftest.py: the real
app on a migrated database, a filesystem broker, teams "acme" and "globex" with keys), plus:

    other_auth      headers with `other_key` (team "globex")
    snapshot        snapshot() -> every row of every table and the broker's queued ids, to show
                    that a refused request changed nothing
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

from store.db import Database
from tests.service.conftest import (  # noqa: F401  (fixtures, re-exported for this folder)
    app,
    app_settings,
    auth,
    broker_dir,
    celery_app,
    claim,
    client,
    db_backend,
    key,
    other_key,
    pg_app_settings,
    published,
    submit,
)
from tests.service.support import published_ids

Snapshot = dict[str, Any]


# getfixturevalue: a parameter named like an imported fixture would shadow the import (F811).
@pytest.fixture
def other_auth(request: pytest.FixtureRequest) -> dict[str, str]:
    return {"Authorization": f"Bearer {request.getfixturevalue('other_key')}"}


def database_rows(database: Database) -> dict[str, list[str]]:
    """Every row of every table, as sorted reprs (JSON columns cannot be ordered by SQL)."""
    tables = inspect(database.engine).get_table_names()
    rows = {}
    with database.read() as session:
        for table in tables:
            result = session.execute(text(f'SELECT * FROM "{table}"'))
            rows[table] = sorted(repr(tuple(row)) for row in result)
    return rows


@pytest.fixture
def snapshot(database: Database, request: pytest.FixtureRequest) -> Callable[[], Snapshot]:
    folder: Path = request.getfixturevalue("broker_dir")
    return lambda: {"rows": database_rows(database), "queued": published_ids(folder)}
