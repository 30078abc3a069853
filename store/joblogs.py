"""A job's log: the worker's lines about it, for `GET /v1/jobs/{id}/logs` and `gradlab logs`.

Capped per job: past `cap` lines only errors are kept (up to twice the cap), and the first line
dropped is replaced by a note saying so, so a runaway warning cannot fill the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from gradlab_contract.live import JobLogLine, JobLogPage
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from store import orm

MAX_PAGE = 2000
MAX_MESSAGE_CHARS = 8000


@dataclass(frozen=True)
class LogLine:
    job_id: str
    attempt: int | None
    level: str
    message: str


def append_lines(session: Session, *, lines: list[LogLine], cap: int) -> None:
    """Store lines (of any jobs) within each job's cap."""
    counts: dict[str, int] = {}
    rows = []
    for line in lines:
        if line.job_id not in counts:
            counts[line.job_id] = session.scalar(
                select(func.count()).select_from(orm.JobLog)
                .where(orm.JobLog.job_id == line.job_id)) or 0
        count = counts[line.job_id]
        level, message = line.level, line.message[:MAX_MESSAGE_CHARS]
        if count == cap and level not in ("ERROR", "CRITICAL"):
            level, message = "WARNING", f"log capped at {cap} lines: later lines are dropped"
        elif count > cap and (level not in ("ERROR", "CRITICAL") or count >= 2 * cap):
            continue
        counts[line.job_id] = count + 1
        rows.append({"job_id": line.job_id, "attempt": line.attempt, "level": level,
                     "message": message, "created_at": orm.utcnow()})
    if rows:
        session.execute(insert(orm.JobLog), rows)


def read_lines(session: Session, *, job_id: str, after: int = 0, limit: int = 500) -> JobLogPage:
    rows = list(session.scalars(
        select(orm.JobLog).where(orm.JobLog.job_id == job_id, orm.JobLog.id > after)
        .order_by(orm.JobLog.id).limit(min(limit, MAX_PAGE))))
    capped = session.scalar(select(func.count()).select_from(orm.JobLog).where(
        orm.JobLog.job_id == job_id, orm.JobLog.message.like("log capped at %")))
    lines = [JobLogLine(id=row.id, attempt=row.attempt, level=row.level, message=row.message,
                        at=row.created_at) for row in rows]
    return JobLogPage(lines=lines, next_after=rows[-1].id if rows else after,
                      truncated=bool(capped))
