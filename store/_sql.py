"""SQL the repositories share: the attempt fence and the dialect's upsert."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from gradlab_contract.models import JobStatus
from sqlalchemy import ColumnElement, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store import events, orm
from store.errors import Conflict, NotFound, StaleAttempt


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


Keyed = TypeVar("Keyed", orm.Job, orm.Study)


def find_replay(
    session: Session, model: type[Keyed], *, team_id: str, key: str, request_hash: str | None
) -> Keyed | None:
    """The row an earlier request with this Idempotency-Key made (None: no such request); the
    same key with another request body raises Conflict."""
    query = select(model).where(model.team_id == team_id, model.idempotency_key == key)
    row = session.scalars(query).one_or_none()
    if row is not None and row.request_hash != request_hash:
        raise Conflict(
            "this Idempotency-Key was used with a different request body", field="Idempotency-Key"
        )
    return row


def insert_once(session: Session, row: Keyed) -> Keyed:
    """Insert `row`, or return the row a racing request with the same Idempotency-Key inserted
    first: the unique (team_id, idempotency_key) refuses the second insert, which then reads the
    first (Conflict if the bodies differ). Without a key an IntegrityError is raised as it is."""
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        if row.idempotency_key is None:
            raise
        first = find_replay(session, type(row), team_id=row.team_id, key=row.idempotency_key,
                            request_hash=row.request_hash)
        if first is None:
            raise
        return first
    return row


def cancel_jobs(session: Session, *where: ColumnElement[bool]) -> None:
    """Cancel the jobs `where` selects: a queued one at once, a running one by the cooperative
    flag its worker reads with each lease renewal; a finished one is left as it is."""
    jobs = update(orm.Job).where(*where)
    cancelled = session.scalars(
        jobs.where(orm.Job.status == JobStatus.QUEUED)
        .values(status=JobStatus.CANCELLED, cancel_requested=True, finished_at=orm.utcnow())
        .returning(orm.Job.id).execution_options(synchronize_session=False)).all()
    for job_id in cancelled:  # each ending is an event (streams, webhooks)
        events.status_changed(session, job_id=job_id)
    session.execute(jobs.where(orm.Job.status == JobStatus.RUNNING).values(cancel_requested=True))
    session.flush()
