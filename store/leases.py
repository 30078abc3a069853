"""A job's life on the worker side: claim, lease renewal, checkpoints, the fenced finish, and the
reaper's recovery of jobs whose worker died.

Each attempt at a job has a number; `claim_job` starts attempt n+1, and every later write names
its attempt. A write from an attempt that is no longer current raises StaleAttempt and changes
nothing (fencing): a worker presumed dead that wakes up cannot overwrite its successor's work.

Times come from the caller's clock (`now`, default: this host's UTC clock), so hosts that share
a database need synchronised clocks; the lease (default 60 s) absorbs small skew.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from gradlab_contract.models import TERMINAL_STATUSES, JobStatus
from gradlab_contract.spec import JobSpec
from sqlalchemy import case, func, literal, select, update
from sqlalchemy.orm import Session

from store import events, jobs, orm
from store._codec import json_safe
from store._sql import fence
from store.errors import InvalidInput, NotFound, QuotaExceeded, StaleAttempt

RetryOutcome = Literal["requeued", "failed", "cancelled", "skipped"]


@dataclass(frozen=True)
class JobState:
    """What a worker needs to run (or resume) a job."""

    id: str
    team_id: str
    status: str
    attempt: int
    spec: JobSpec
    total_steps: int
    progress_step: int
    checkpoint_step: int | None  # resume from here; None: start from scratch
    cancel_requested: bool
    study_id: str | None  # a study's job is sent to the study queue (taskqueue.queue_for)
    started_at: datetime | None = None  # the first attempt's start: the time limit counts from it


@dataclass(frozen=True)
class ExpiredLease:
    job_id: str
    attempt: int
    study_id: str | None


@dataclass(frozen=True)
class QueuedJob:
    """A queued job to send to the broker again, with what routes it (taskqueue.queue_for)."""

    job_id: str
    study_id: str | None


def _now(now: datetime | None) -> datetime:
    return now if now is not None else orm.utcnow()


def load_job_state(session: Session, *, job_id: str) -> JobState:
    """Any team's job, by id: the worker gets ids from the broker, never from a team."""
    row = session.get(orm.Job, job_id)
    if row is None:
        raise NotFound(f"job {job_id} not found")
    return JobState(
        id=row.id, team_id=row.team_id, status=row.status, attempt=row.attempt,
        spec=JobSpec.model_validate(row.spec), total_steps=row.total_steps,
        progress_step=row.progress_step, checkpoint_step=row.checkpoint_step,
        cancel_requested=row.cancel_requested, study_id=row.study_id, started_at=row.started_at,
    )


def claim_job(
    session: Session,
    *,
    job_id: str,
    worker: str,
    device: str,
    lease_seconds: float,
    now: datetime | None = None,
    max_running: int | None = None,
) -> int | None:
    """Move a queued job to running under a new attempt and return its number.

    None when the job is not queued (another worker has it, it was cancelled, it is done): one
    conditional UPDATE, so of two racing claimers exactly one wins.

    max_running (the team's quota of running jobs) raises QuotaExceeded when the job's team
    already runs that many; the job stays queued, unchanged, for a later claim. Claims of one
    team are serialised (store.jobs.lock_team), so racing workers cannot both take its last slot.
    """
    if max_running is not None:
        _check_running_quota(session, job_id=job_id, max_running=max_running)
    now = _now(now)
    stmt = (
        update(orm.Job)
        .where(orm.Job.id == job_id, orm.Job.status == JobStatus.QUEUED)
        .values(
            status=JobStatus.RUNNING, attempt=orm.Job.attempt + 1, worker=worker, device=device,
            lease_expires_at=now + timedelta(seconds=lease_seconds), heartbeat_at=now,
            # The first attempt's start; a retry keeps it, so durations count the lost time.
            started_at=func.coalesce(orm.Job.started_at, literal(now, orm.UTCDateTime())),
        )
        .returning(orm.Job.attempt)
        .execution_options(synchronize_session=False)
    )
    attempt = session.execute(stmt).scalar_one_or_none()
    if attempt is not None:
        events.status_changed(session, job_id=job_id)
    return attempt


def _check_running_quota(session: Session, *, job_id: str, max_running: int) -> None:
    team_id = session.scalar(
        select(orm.Job.team_id).where(orm.Job.id == job_id, orm.Job.status == JobStatus.QUEUED)
    )
    if team_id is None:
        return  # not claimable anyway: the claim's UPDATE answers None
    jobs.lock_team(session, team_id=team_id)
    running = jobs.team_counts(session, team_id=team_id).running
    if running >= max_running:
        raise QuotaExceeded(f"the team runs {running} jobs, the most it may run at once")


def renew_lease(
    session: Session,
    *,
    job_id: str,
    attempt: int,
    lease_seconds: float,
    progress_step: int | None = None,
    now: datetime | None = None,
) -> bool:
    """Extend the lease (and record progress); return whether a cancel was requested.

    Raises StaleAttempt when the attempt is not current or the job is not running: the worker
    must stop, its job belongs to someone else now.
    """
    now = _now(now)
    values: dict[str, Any] = {
        "lease_expires_at": now + timedelta(seconds=lease_seconds), "heartbeat_at": now,
    }
    if progress_step is not None:
        values["progress_step"] = progress_step
    cancel = _fenced_update(session, job_id, attempt, values, orm.Job.cancel_requested)
    return bool(cancel)


def finish_job(
    session: Session,
    *,
    job_id: str,
    attempt: int,
    status: str,
    summary: dict[str, float | None] | None = None,
    error: str | None = None,
    progress_step: int | None = None,
    now: datetime | None = None,
    stop_reason: str | None = None,
    stopped_early: bool = False,
    best_step: int | None = None,
) -> None:
    """Record the end of the attempt: succeeded, failed, cancelled or diverged (fenced).
    stop_reason says why it ended before its last step (early stopping, a stop_on finding)."""
    if status not in TERMINAL_STATUSES:
        raise InvalidInput("status", f"{status!r} is not one of {sorted(TERMINAL_STATUSES)}")
    values: dict[str, Any] = {
        "status": status, "error": error, "finished_at": _now(now), "lease_expires_at": None,
        "stop_reason": stop_reason, "stopped_early": stopped_early, "best_step": best_step,
    }
    if summary is not None:
        values["summary"] = json_safe(summary)
    if progress_step is not None:
        values["progress_step"] = progress_step
    _fenced_update(session, job_id, attempt, values, orm.Job.id)
    events.status_changed(session, job_id=job_id)


def record_checkpoint(session: Session, *, job_id: str, attempt: int, step: int) -> None:
    """Note that a checkpoint for `step` is complete on disk: a retry resumes from it (fenced)."""
    _fenced_update(session, job_id, attempt, {"checkpoint_step": step}, orm.Job.id)


def release_job(
    session: Session,
    *,
    job_id: str,
    attempt: int,
    progress_step: int | None = None,
    now: datetime | None = None,
) -> str:
    """Hand a running job back to the queue (its worker is shutting down), fenced; return the
    new status: "queued", or "cancelled" when a cancel was requested meanwhile.

    The caller commits, then sends the id to the broker; the next claim is attempt n+1 and
    resumes from the checkpoint, with no wait for the lease to run out. A release counts as an
    attempt (claims are what `attempt` counts): attempt numbers only grow, which is what
    fences out whatever the released attempt might still write.
    """
    now = _now(now)
    cancelled = orm.Job.cancel_requested.is_(True)
    values: dict[str, Any] = {
        # .value: literal() would infer an SQL Enum from the member and bind its name.
        "status": case((cancelled, literal(JobStatus.CANCELLED.value)),
                       else_=literal(JobStatus.QUEUED.value)),
        "finished_at": case((cancelled, literal(now, orm.UTCDateTime())), else_=None),
        "worker": None, "lease_expires_at": None, "heartbeat_at": None, "enqueued_at": now,
    }
    if progress_step is not None:
        values["progress_step"] = progress_step
    status = str(_fenced_update(session, job_id, attempt, values, orm.Job.status))
    events.status_changed(session, job_id=job_id)
    return status


def _fenced_update(
    session: Session, job_id: str, attempt: int, values: dict[str, Any], returned: Any
) -> Any:
    """One UPDATE guarded by (id, attempt, running); no row means the attempt was fenced out."""
    stmt = (
        update(orm.Job)
        .where(orm.Job.id == job_id, orm.Job.attempt == attempt,
               orm.Job.status == JobStatus.RUNNING)
        .values(values)
        .returning(returned)
        .execution_options(synchronize_session=False)
    )
    result = session.execute(stmt).first()
    if result is None:
        fence(session, job_id=job_id, attempt=attempt)  # raises NotFound or StaleAttempt
        raise StaleAttempt(f"job {job_id} attempt {attempt} is fenced out")
    return result[0]


def expired_jobs(
    session: Session, *, now: datetime | None = None, limit: int = 100
) -> list[ExpiredLease]:
    """Running jobs whose lease ran out (their worker is presumed dead), oldest lease first."""
    query = (
        select(orm.Job.id, orm.Job.attempt, orm.Job.study_id)
        .where(orm.Job.status == JobStatus.RUNNING, orm.Job.lease_expires_at < _now(now))
        .order_by(orm.Job.lease_expires_at)
        .limit(limit)
    )
    return [ExpiredLease(*row) for row in session.execute(query)]


def running_jobs_of(session: Session, *, worker: str) -> list[ExpiredLease]:
    """The running jobs claimed by this worker process ("host:pid"): its parent hands them back
    at once when it sees the process die, rather than wait for their leases to run out."""
    query = select(orm.Job.id, orm.Job.attempt, orm.Job.study_id).where(
        orm.Job.status == "running", orm.Job.worker == worker
    )
    return [ExpiredLease(*row) for row in session.execute(query)]


def retry_or_fail(
    session: Session,
    *,
    job_id: str,
    expected_attempt: int,
    max_attempts: int,
    now: datetime | None = None,
    lease_expired: bool = True,
) -> RetryOutcome:
    """Recover a job that lost its worker: queue it again, or fail it after max_attempts losses.

    The reaper calls it for a lease that ran out (a dead host); a worker's main process calls it
    at once, with `lease_expired=False`, when it sees the pool process that ran the attempt die
    (kill -9, out of memory). Only these losses count against max_attempts: a graceful release
    (release_job) does not.

    "requeued": status queued again (the caller commits, then sends the id to the broker; the
    next claim is attempt n+1 and resumes from the checkpoint). "failed": "worker lost n times".
    "cancelled": a cancel was requested, so it is not retried. "skipped": nothing to do now;
    the lease was renewed meanwhile, the attempt moved on, or (PostgreSQL) the row is locked by
    another reaper or by a write in flight (SKIP LOCKED: the next round looks again).
    """
    now = _now(now)
    query = select(orm.Job).where(orm.Job.id == job_id).with_for_update(skip_locked=True)
    row = session.scalars(query).one_or_none()
    if (
        row is None
        or row.status != JobStatus.RUNNING
        or row.attempt != expected_attempt
        or (lease_expired and row.lease_expires_at is not None and row.lease_expires_at >= now)
    ):
        return "skipped"
    row.lease_expires_at, row.heartbeat_at = None, None
    row.losses += 1
    if row.cancel_requested:
        row.status, row.finished_at = JobStatus.CANCELLED, now
        outcome: RetryOutcome = "cancelled"
    elif row.losses >= max_attempts:
        row.status, row.finished_at = JobStatus.FAILED, now
        row.error = f"worker lost {row.losses} times"
        outcome = "failed"
    else:
        row.status, row.worker, row.enqueued_at = JobStatus.QUEUED, None, now
        outcome = "requeued"
    session.flush()
    events.status_changed(session, job_id=job_id)
    return outcome


def queued_jobs_older_than(
    session: Session, *, seconds: float, now: datetime | None = None, limit: int = 100
) -> list[QueuedJob]:
    """Jobs queued but last sent to the broker over `seconds` ago (the broker may have lost
    them). Re-send them, then call mark_enqueued so they wait another period."""
    cutoff = _now(now) - timedelta(seconds=seconds)
    query = (
        select(orm.Job.id, orm.Job.study_id)
        .where(orm.Job.status == JobStatus.QUEUED, orm.Job.enqueued_at < cutoff)
        .order_by(orm.Job.enqueued_at)
        .limit(limit)
    )
    return [QueuedJob(job_id, study_id) for job_id, study_id in session.execute(query)]


def mark_enqueued(session: Session, *, job_ids: list[str], now: datetime | None = None) -> None:
    if job_ids:
        stmt = (
            update(orm.Job)
            .where(orm.Job.id.in_(job_ids), orm.Job.status == JobStatus.QUEUED)
            .values(enqueued_at=_now(now))
            .execution_options(synchronize_session=False)
        )
        session.execute(stmt)
