"""The event log of jobs and studies: what the event streams replay and webhooks deliver.

Each state change appends its event in its own transaction, so the log is exactly as true as
the rows it describes, and a stream resumes from any id (`Last-Event-ID`) by reading what
follows it: nothing lives only in a broker. A publisher (Redis pub/sub) may announce new events
to wake the streams early; without one they poll this table.

Types (the SSE `event:` names): `status` (every status change, with the reason of an ending),
`progress` (steps done, at the heartbeat's pace), `metrics` (the latest value of each tracked
metric, at the reporter's flush pace: a throttle by construction), `findings` (the live or
final diagnosis' codes changed), `study` (a study's last job ended).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gradlab_contract.models import TERMINAL_STATUSES
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from store import orm
from store._codec import json_safe

# The metrics a `metrics` event carries (the per-layer update ratios stay in /metrics).
STREAMED_METRICS = frozenset(
    {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_auc", "grad_norm", "lr"}
)
MAX_PAGE = 500
LIVE_ONLY = ("progress", "metrics")  # dropped when the job ends (status_changed)
# Called after a transaction that appended events commits (job ids, study ids); see
# store.db.Database.on_events. Kept in session.info until then.
_PENDING = "gradlab_events"


@dataclass(frozen=True)
class EventRecord:
    id: int
    type: str
    job_id: str | None
    study_id: str | None
    data: dict[str, Any]
    created_at: datetime


def append(
    session: Session, *, team_id: str, job_id: str | None, study_id: str | None, type: str,
    data: dict[str, Any],
) -> int:
    row = orm.Event(team_id=team_id, job_id=job_id, study_id=study_id, type=type,
                    data=json_safe(data))
    session.add(row)
    session.flush()
    pending: set[tuple[str | None, str | None]] = session.info.setdefault(_PENDING, set())
    pending.add((job_id, study_id))
    from store import webhooks  # webhooks imports this module

    webhooks.enqueue_deliveries(session, event=row)
    return row.id


def taken_pending(session: Session) -> set[tuple[str | None, str | None]]:
    """The (job id, study id) pairs this session appended events for; cleared."""
    pending: set[tuple[str | None, str | None]] = session.info.pop(_PENDING, set())
    return pending


_JOB_COLUMNS = (
    orm.Job.team_id, orm.Job.study_id, orm.Job.status, orm.Job.attempt, orm.Job.error,
    orm.Job.stop_reason, orm.Job.stopped_early, orm.Job.best_step, orm.Job.progress_step,
    orm.Job.total_steps, orm.Job.summary,
)


def status_changed(session: Session, *, job_id: str) -> None:
    """Append the job's status as it now is (call after the UPDATE, in its transaction); a
    terminal one may end its study."""
    row = session.execute(select(*_JOB_COLUMNS).where(orm.Job.id == job_id)).one_or_none()
    if row is None:
        return
    data = {"status": row.status, "attempt": row.attempt,
            "progress": {"step": row.progress_step, "total_steps": row.total_steps}}
    if row.status in TERMINAL_STATUSES:
        # The summary too: the last metric events may be dropped before a stream reads them.
        data |= {"error": row.error, "stop_reason": row.stop_reason,
                 "stopped_early": row.stopped_early, "best_step": row.best_step,
                 "summary": dict(row.summary or {})}
    append(session, team_id=row.team_id, job_id=job_id, study_id=row.study_id, type="status",
           data=data)
    if row.status in TERMINAL_STATUSES:
        # Progress and metric events only announced what the job's rows hold: once it has
        # ended they go, so a job keeps a handful of events, not one a second of its life.
        session.execute(delete(orm.Event).where(orm.Event.job_id == job_id,
                                                orm.Event.type.in_(LIVE_ONLY)))
    if row.status in TERMINAL_STATUSES and row.study_id is not None:
        _maybe_study_finished(session, team_id=row.team_id, study_id=row.study_id)


def progress(session: Session, *, job_id: str, step: int) -> None:
    _append_for_job(session, job_id, "progress", lambda row: {
        "step": step, "total_steps": row.total_steps})


def metrics(session: Session, *, job_id: str, rows: list[tuple[int, str, float]]) -> None:
    """A `metrics` event with the latest (step, value) of each streamed metric in `rows`."""
    latest: dict[str, tuple[int, float]] = {}
    for step, name, value in rows:
        if name in STREAMED_METRICS and (name not in latest or latest[name][0] <= step):
            latest[name] = (step, value)
    if latest:
        points = {name: {"step": step, "value": value} for name, (step, value) in latest.items()}
        _append_for_job(session, job_id, "metrics", lambda _: {
            "step": max(step for step, _ in latest.values()), "points": points})


def findings_changed(
    session: Session, *, job_id: str, before: set[str], found: list[dict[str, Any]], final: bool
) -> None:
    """A `findings` event when the set of codes changed (or the diagnosis became final)."""
    codes = {item["code"] for item in found}
    if codes == before and not final:
        return
    brief = [{key: item.get(key) for key in ("code", "severity", "title", "layer", "step")}
             for item in found]
    _append_for_job(session, job_id, "findings", lambda _: {
        "final": final, "new": sorted(codes - before), "findings": brief})


def _append_for_job(
    session: Session, job_id: str, type: str, make: Callable[[Any], dict[str, Any]]
) -> None:
    row = session.execute(select(*_JOB_COLUMNS).where(orm.Job.id == job_id)).one_or_none()
    if row is not None:
        append(session, team_id=row.team_id, job_id=job_id, study_id=row.study_id, type=type,
               data=make(row))


def _maybe_study_finished(session: Session, *, team_id: str, study_id: str) -> None:
    """Append the study's `study` event once its last job has ended. The study row is locked
    first (PostgreSQL), so of two jobs ending together the second sees the first's status."""
    locked = select(orm.Study.id).where(orm.Study.id == study_id).with_for_update()
    if session.execute(locked).one_or_none() is None:
        return
    counted = session.execute(select(orm.Job.status, func.count())
                              .where(orm.Job.study_id == study_id).group_by(orm.Job.status))
    counts = {str(status): int(count) for status, count in counted}
    if any(status not in TERMINAL_STATUSES for status in counts):
        return
    done = select(orm.Event.id).where(orm.Event.study_id == study_id, orm.Event.job_id.is_(None),
                                      orm.Event.type == "study")
    if session.execute(done.limit(1)).first() is not None:
        return
    append(session, team_id=team_id, job_id=None, study_id=study_id, type="study",
           data={"status": "finished", "counts": counts})


def read_after(
    session: Session, *, team_id: str, after: int, job_id: str | None = None,
    study_id: str | None = None, limit: int = MAX_PAGE,
) -> list[EventRecord]:
    """The events of a job (or of a study and its jobs) with ids above `after`, oldest first."""
    query = select(orm.Event).where(orm.Event.team_id == team_id, orm.Event.id > after)
    if job_id is not None:
        query = query.where(orm.Event.job_id == job_id)
    if study_id is not None:
        query = query.where(orm.Event.study_id == study_id)
    rows = session.scalars(query.order_by(orm.Event.id).limit(limit))
    return [EventRecord(row.id, row.type, row.job_id, row.study_id, dict(row.data),
                        row.created_at) for row in rows]
