"""Jobs as the API sees them: create (idempotently), read, list, cancel, count.

The worker's and the reaper's side of a job (claims, leases, fenced finishing) is store.leases.

Cancelling is idempotent: a queued job is cancelled at once, a running job gets the cooperative
cancel flag its worker reads with each lease renewal, and a finished job is returned unchanged
(no Conflict), so a client that retries a cancel sees the same answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from gradlab_contract.models import ACTIVE_STATUSES, TERMINAL_STATUSES, Job, JobPage, JobStatus
from gradlab_contract.spec import JobSpec
from sqlalchemy import ColumnElement, delete, func, select, tuple_
from sqlalchemy.orm import Session

from store import events, orm
from store._codec import check_limit, decode_cursor, encode_cursor, json_safe
from store._sql import cancel_jobs, find_replay, insert_once
from store.errors import InvalidInput, NotFound, QuotaExceeded

MAX_PAGE = 500


class CreatedJob(NamedTuple):
    job: Job
    created: bool  # False: an earlier request with the same idempotency key made it


class TeamCounts(NamedTuple):
    queued: int
    running: int


def _to_job(row: orm.Job) -> Job:
    return Job.model_validate(
        {
            "id": row.id, "name": row.name, "status": row.status, "spec": row.spec,
            "attempt": row.attempt, "summary": row.summary, "error": row.error,
            "progress": {"step": row.progress_step, "total_steps": row.total_steps},
            "cancel_requested": row.cancel_requested, "worker": row.worker, "device": row.device,
            "parent_id": row.parent_id, "created_at": row.created_at,
            "artifact_errors": row.artifact_errors or {},
            "stop_reason": row.stop_reason, "stopped_early": bool(row.stopped_early),
            "best_step": row.best_step,
            "started_at": row.started_at, "finished_at": row.finished_at,
        }
    )


def create_job(
    session: Session,
    *,
    team_id: str,
    spec: JobSpec,
    total_steps: int,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    parent_id: str | None = None,
    max_queued: int | None = None,
) -> CreatedJob:
    """Add a queued job (the caller commits, then enqueues), or return the one an earlier
    request with the same idempotency key made.

    The same key with a different request_hash raises Conflict. Two racing requests with one key
    make one row: the unique (team_id, idempotency_key) constraint refuses the second insert,
    which then returns the first's job. max_queued (the team's quota) raises QuotaExceeded; a
    replay of an existing job is never refused by it. Concurrent submits cannot both take the
    last slot (see reserve_queued).
    """
    if idempotency_key is not None:
        existing = find_replay(session, orm.Job, team_id=team_id, key=idempotency_key,
                               request_hash=request_hash)
        if existing is not None:
            return CreatedJob(_to_job(existing), created=False)
    if max_queued is not None:
        reserve_queued(session, team_id=team_id, max_queued=max_queued)
    if parent_id is not None:
        get_job(session, team_id=team_id, job_id=parent_id)
    row = orm.Job(
        team_id=team_id, name=spec.name, spec=json_safe(spec.model_dump(mode="json")),
        total_steps=total_steps, idempotency_key=idempotency_key, request_hash=request_hash,
        parent_id=parent_id,
    )
    stored = insert_once(session, row)
    if stored is row:
        events.status_changed(session, job_id=row.id)
    return CreatedJob(_to_job(stored), created=stored is row)


def replayed_job(
    session: Session, *, team_id: str, idempotency_key: str, request_hash: str | None
) -> Job | None:
    """The team's job made with this key, Conflict when it was made by another request, or None;
    the API looks it up before its caps, so that a replay is never refused by them."""
    row = find_replay(session, orm.Job, team_id=team_id, key=idempotency_key,
                      request_hash=request_hash)
    return None if row is None else _to_job(row)


def get_job(session: Session, *, team_id: str, job_id: str) -> Job:
    """The team's job; another team's job is NotFound as well, so ids cannot be probed."""
    return _to_job(_team_row(session, team_id, job_id))


def _team_row(session: Session, team_id: str, job_id: str, *, lock: bool = False) -> orm.Job:
    query = select(orm.Job).where(orm.Job.id == job_id, orm.Job.team_id == team_id)
    row = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if row is None:
        raise NotFound(f"job {job_id} not found", field="job_id")
    return row


def list_jobs(
    session: Session,
    *,
    team_id: str,
    status: str | None = None,
    name: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> JobPage:
    """The team's jobs, newest first; `name` matches exactly. Pass next_cursor for the next page."""
    check_limit(limit, MAX_PAGE)
    conditions: list[ColumnElement[bool]] = [orm.Job.team_id == team_id]
    if status is not None:
        conditions.append(orm.Job.status == status)
    if name is not None:
        conditions.append(orm.Job.name == name)
    if cursor is not None:
        created_at, job_id = decode_cursor(cursor, (str, str))
        after = _parse_time(created_at)
        conditions.append(tuple_(orm.Job.created_at, orm.Job.id) < tuple_(after, job_id))
    query = (
        select(orm.Job)
        .where(*conditions)
        .order_by(orm.Job.created_at.desc(), orm.Job.id.desc())
        .limit(limit + 1)
    )
    rows = list(session.scalars(query))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at.isoformat(), rows[-1].id)
    return JobPage(items=[_to_job(row) for row in rows], next_cursor=next_cursor)


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput("cursor", "not a cursor returned by this API") from None
    if moment.tzinfo is None:
        raise InvalidInput("cursor", "not a cursor returned by this API")
    return moment


def request_cancel(session: Session, *, team_id: str, job_id: str) -> Job:
    """Cancel a queued job now, flag a running one, leave a finished one as it is."""
    row = _team_row(session, team_id, job_id, lock=True)
    cancel_jobs(session, orm.Job.id == row.id)
    session.refresh(row)
    return _to_job(row)


def delete_finished_job(session: Session, *, team_id: str, job_id: str) -> bool:
    """Delete a finished job of the team; its metrics, snapshots, layers, findings and artifact
    rows go with it (ON DELETE CASCADE). False when no such finished job exists."""
    stmt = delete(orm.Job).where(
        orm.Job.id == job_id, orm.Job.team_id == team_id,
        orm.Job.status.in_(sorted(TERMINAL_STATUSES)),
    ).returning(orm.Job.id)
    return session.execute(stmt).first() is not None


def count_by_status(session: Session) -> dict[str, int]:
    """Jobs per status over all teams (for /metrics); every status is present."""
    query = select(orm.Job.status, func.count()).group_by(orm.Job.status)
    counts: dict[str, int] = dict.fromkeys(JobStatus, 0)
    counts.update({status: count for status, count in session.execute(query)})
    return counts


def oldest_queued_created_at(session: Session) -> datetime | None:
    """When the longest-waiting queued job was submitted (for /metrics); None when none waits.

    created_at, not enqueued_at: the reconciler renews enqueued_at each time it re-sends an id,
    which would hide how long the job has really waited."""
    query = select(func.min(orm.Job.created_at)).where(orm.Job.status == JobStatus.QUEUED)
    return session.execute(query).scalar_one_or_none()


def team_counts(session: Session, *, team_id: str) -> TeamCounts:
    """The team's queued and running jobs, for its quotas."""
    query = (
        select(orm.Job.status, func.count())
        .where(orm.Job.team_id == team_id, orm.Job.status.in_(ACTIVE_STATUSES))
        .group_by(orm.Job.status)
    )
    counts = dict(session.execute(query).all())
    return TeamCounts(queued=counts.get(JobStatus.QUEUED, 0),
                      running=counts.get(JobStatus.RUNNING, 0))


def lock_team(session: Session, *, team_id: str) -> None:
    """Serialise the team's quota checks until the transaction ends.

    Counting and then inserting (or claiming) is a race under READ COMMITTED: two transactions
    both count one free slot and both take it. On PostgreSQL the team's row is locked FOR NO
    KEY UPDATE, which makes a second checker wait for the first's commit, and then count again,
    but does not conflict with the key-share locks that inserting rows referencing the team
    (jobs, keys, uploads) takes. On SQLite the statement locks nothing: a write transaction
    (store.db, BEGIN IMMEDIATE) already holds the database's only write lock.
    Lock order: the team, then its jobs; nothing locks a job and then its team.
    """
    query = select(orm.Team.id).where(orm.Team.id == team_id).with_for_update(key_share=True)
    session.execute(query)


def reserve_queued(
    session: Session, *, team_id: str, max_queued: int, adding: int = 1, studies: bool = False
) -> None:
    """Raise QuotaExceeded unless the team may queue `adding` more jobs; call it in the write
    transaction that inserts them (it holds the team's lock until that commits). Single jobs and
    study jobs (`studies`) have quotas of their own, so a study does not use up the other."""
    lock_team(session, team_id=team_id)
    of_studies = orm.Job.study_id.is_not(None) if studies else orm.Job.study_id.is_(None)
    query = select(func.count()).where(orm.Job.team_id == team_id,
                                       orm.Job.status == JobStatus.QUEUED, of_studies)
    queued = session.execute(query).scalar_one()
    if queued + adding > max_queued:
        kind = "study jobs" if studies else "jobs"
        raise QuotaExceeded(f"the team has {queued} queued {kind}; {adding} more would pass "
                            f"the most it may have, {max_queued}")


def jobs_by_id(session: Session, *, job_ids: list[str]) -> list[Job]:
    """Any team's jobs with these ids (for the service's own bookkeeping: remedy children and
    heal rounds, whose ids it took from rows of the same team), in no particular order."""
    if not job_ids:
        return []
    return [_to_job(row) for row in session.scalars(select(orm.Job).where(orm.Job.id.in_(job_ids)))]
