"""SQL the repositories share: the attempt fence and the dialect's upsert."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gradlab_contract.models import JobStatus
from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store import orm
from store.errors import NotFound, StaleAttempt


def dialect_of(session: Session) -> str:
    return session.get_bind().dialect.name


def fence(session: Session, *, job_id: str, attempt: int) -> None:
    """Raise StaleAttempt unless `attempt` is the job's current one and the job is running.

    On PostgreSQL the job row stays share-locked until the caller's transaction ends, so the
    reaper (which takes it FOR UPDATE to start a new attempt) cannot slip in between this check
    and the writes it guards. SQLite needs no lock: a write transaction holds the database's.
    """
    query = (
        select(orm.Job.attempt, orm.Job.status)
        .where(orm.Job.id == job_id)
        .with_for_update(read=True)
    )
    row = session.execute(query).one_or_none()
    if row is None:
        raise NotFound(f"job {job_id} not found")
    if row.attempt != attempt or row.status != JobStatus.RUNNING:
        raise StaleAttempt(
            f"job {job_id} is {row.status} at attempt {row.attempt}; "
            f"attempt {attempt} is fenced out"
        )


def upsert_newer_attempt(
    session: Session, model: type[orm.Base], rows: Sequence[dict[str, Any]], keys: Sequence[str]
) -> None:
    """Insert rows; a row whose key exists is overwritten only by a newer attempt.

    So a replayed batch changes nothing, while a retried job's rows replace the lost attempt's.
    One executemany: psycopg pipelines it, sqlite3 runs it in one prepared statement.
    """
    if not rows:
        return
    table = model.__table__
    assert isinstance(table, Table)
    module = postgresql if dialect_of(session) == "postgresql" else sqlite
    stmt = module.insert(table)
    updates = {name: stmt.excluded[name] for name in rows[0] if name not in keys}
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys), set_=updates, where=table.c.attempt < stmt.excluded.attempt
    )
    session.execute(stmt, list(rows))
