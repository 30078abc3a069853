from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import select, text

from service.http.problems import status_of
from store import orm
from store.db import Database
from store.errors import Unavailable
from store.settings import Settings

SQLITE_ONLY = pytest.mark.parametrize("db_backend", ["sqlite"])


@SQLITE_ONLY
def test_sqlite_runs_in_wal_with_foreign_keys_and_a_busy_timeout(database: Database) -> None:
    with database.read() as session:
        pragma = {
            name: session.execute(text(f"PRAGMA {name}")).scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout")
        }
    assert pragma == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 30_000}


@SQLITE_ONLY
def test_sqlite_writers_queue_instead_of_failing(database: Database, running: str) -> None:
    """Read-then-write from many threads: BEGIN IMMEDIATE serialises them, none is lost.
    (On PostgreSQL the same code would need a row lock.)"""
    errors: list[Exception] = []

    def bump() -> None:
        try:
            for _ in range(10):
                with database.transaction() as session:
                    job = session.get(orm.Job, running)
                    assert job is not None
                    job.progress_step += 1
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    with database.read() as session:  # a reader is not blocked by the writers
        session.execute(select(orm.Job.progress_step)).all()
    for thread in threads:
        thread.join()
    assert errors == []
    with database.read() as session:
        assert session.get(orm.Job, running).progress_step == 40  # type: ignore[union-attr]


def test_an_unreachable_database_is_unavailable(settings: Settings) -> None:
    down = Settings(
        home=settings.home, database_url="postgresql://nobody@127.0.0.1:1/none", _env_file=None
    )
    database = Database.from_settings(down)
    with pytest.raises(Unavailable) as raised:
        database.ping()
    # The error knows no HTTP; the service's one handler answers it with 503.
    assert status_of(raised.value) == 503
    with pytest.raises(Unavailable), database.transaction() as session:
        session.execute(text("SELECT 1"))


def test_timestamps_are_aware_utc_and_naive_ones_are_refused(
    database: Database, make_job: Callable[..., str]
) -> None:
    job_id = make_job()
    with database.read() as session:
        created = session.get(orm.Job, job_id).created_at  # type: ignore[union-attr]
    assert created.utcoffset() is not None and created.utcoffset().total_seconds() == 0
    with pytest.raises(Exception, match="naive datetime"), database.transaction() as session:
        session.get(orm.Job, job_id).heartbeat_at = datetime(2024, 1, 1)  # type: ignore[union-attr]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_opens_its_own_connections(database: Database) -> None:
    database.ping()  # the parent's pool now holds a connection
    assert database.engine.pool.checkedin() == 1
    pid = os.fork()
    if pid == 0:  # the child: must not reuse the parent's socket
        code = 1
        try:
            fresh = database.engine.pool.checkedin() == 0
            database.ping()
            code = 0 if fresh else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    database.ping()  # the parent's connection still works
