"""Per-step metric series: fenced, idempotent batch writes, and spike-keeping reads.

A long series is downsampled in the database: the step range is cut into (max_points - 2) // 2
equal buckets and each bucket keeps its lowest and its highest point, so a one-step spike
survives any zoom level (averaging or striding would hide it). The first and last points are kept
too: a live chart must end at the latest value. A non-finite value (stored as NULL) counts as the
highest point of its bucket: a divergence is the spike that matters most.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from gradlab_contract.models import MetricSeries
from sqlalchemy import ColumnElement, and_, delete, func, select, text
from sqlalchemy.orm import Session

from store import orm
from store._codec import finite_or_none
from store._sql import dialect_of, fence, upsert_newer_attempt
from store.errors import InvalidInput

MetricRow = tuple[int, str, float]  # (step, name, value)
MIN_POINTS = 4  # one bucket's low and high, and the two ends

_SERIES = "job_id = :job_id AND name = :name AND step BETWEEN :first AND :last"
_BUCKET = "CAST(step - :first AS BIGINT) * :buckets / :span"
# One pass, no sort: PostgreSQL compares arrays element by element, so min(ARRAY[value, step])
# is the lowest point of a bucket with its step. NULL (non-finite) becomes +Infinity for the
# max, and an array holding NULL sorts above every finite one for the min.
_PG_BUCKETS = text(
    f"""
    SELECT min(ARRAY[value, step]), max(ARRAY[coalesce(value, 'Infinity'::float8), step]),
           count(*)
    FROM metrics WHERE {_SERIES} GROUP BY {_BUCKET}
    """
)
# SQLite takes a bare column (step) from the row that holds the min() or max() of a group.
_SQLITE_BUCKETS = text(
    f"""
    SELECT step, min(value), count(*) FROM metrics WHERE {_SERIES} GROUP BY {_BUCKET}
    UNION ALL
    SELECT step, max(coalesce(value, 9e999)), 0 FROM metrics WHERE {_SERIES} GROUP BY {_BUCKET}
    """
)


def write_metrics(
    session: Session, *, job_id: str, attempt: int, rows: Iterable[MetricRow]
) -> int:
    """Store a batch of (step, name, value) for the job's current attempt; return rows sent.

    Fenced: raises StaleAttempt (writing nothing) unless `attempt` is current and running.
    A replayed batch adds nothing; non-finite values are stored as NULL.
    """
    fence(session, job_id=job_id, attempt=attempt)
    # One row per key: PostgreSQL refuses to touch a row twice in one INSERT .. ON CONFLICT.
    latest = {(name, step): value for step, name, value in rows}
    payload = [
        {"job_id": job_id, "name": name, "step": step, "value": finite_or_none(value),
         "attempt": attempt}
        for (name, step), value in latest.items()
    ]
    upsert_newer_attempt(session, orm.Metric, payload, ("job_id", "name", "step"))
    return len(payload)


def truncate_after(session: Session, *, job_id: str, attempt: int, step: int) -> None:
    """Delete metrics and snapshots past `step`: a retry resuming from its checkpoint at `step`
    will record them again (fenced by the new attempt)."""
    fence(session, job_id=job_id, attempt=attempt)
    for model in (orm.Metric, orm.Snapshot):
        session.execute(
            delete(model).where(model.job_id == job_id, model.step > step),
            execution_options={"synchronize_session": False},
        )


def metric_names(session: Session, *, job_id: str) -> list[str]:
    """The job's metric names, sorted.

    A loose index scan (one index probe per name) rather than DISTINCT, which would read every
    row of every series.
    """
    names = text(
        """
        WITH RECURSIVE names(name) AS (
            SELECT min(name) FROM metrics WHERE job_id = :job_id
            UNION ALL
            SELECT (SELECT min(m.name) FROM metrics AS m
                    WHERE m.job_id = :job_id AND m.name > names.name)
            FROM names WHERE names.name IS NOT NULL
        )
        SELECT name FROM names WHERE name IS NOT NULL
        """
    )
    return list(session.scalars(names, {"job_id": job_id}))


def query_series(
    session: Session,
    *,
    job_id: str,
    names: Sequence[str] | None = None,
    start_step: int | None = None,
    end_step: int | None = None,
    max_points: int = 1000,
) -> list[MetricSeries]:
    """Series of the job in step order, each at most max_points long (spikes kept).

    names=None means every series; a requested name with no points comes back empty.
    Non-finite values come back as None.
    """
    if max_points < MIN_POINTS:
        raise InvalidInput("max_points", f"must be at least {MIN_POINTS}, got {max_points}")
    if start_step is not None and end_step is not None and end_step < start_step:
        raise InvalidInput("end_step", "must not be below start_step")
    wanted = list(names) if names is not None else metric_names(session, job_id=job_id)
    first = start_step if start_step is not None else -(2**31)
    last = end_step if end_step is not None else 2**31 - 1
    return [_series(session, _Range(job_id, name, first, last), max_points) for name in wanted]


@dataclass(frozen=True)
class _Range:
    """One series between two steps."""

    job_id: str
    name: str
    first: int
    last: int

    def params(self) -> dict[str, object]:
        return {"job_id": self.job_id, "name": self.name, "first": self.first, "last": self.last}


def _series(session: Session, requested: _Range, max_points: int) -> MetricSeries:
    ends = _ends(session, requested)
    points = ends
    if ends:
        found = replace(requested, first=ends[0][0], last=ends[-1][0])
        # Steps are unique, so a span of max_points steps cannot hold more points.
        dense = found.last - found.first + 1 > max_points
        sampled = _bucketed(session, found, ends, max_points) if dense else None
        points = sampled if sampled is not None else _raw(session, found)
    return MetricSeries(
        name=requested.name, steps=[step for step, _ in points], values=[v for _, v in points]
    )


def _ends(session: Session, series: _Range) -> list[tuple[int, float | None]]:
    """The first and the last point in the range: two index probes, no scan."""
    table = orm.Metric.__table__.c
    in_range = and_(
        table.job_id == series.job_id,
        table.name == series.name,
        table.step.between(series.first, series.last),
    )
    first = select(func.min(table.step)).where(in_range).scalar_subquery()
    last = select(func.max(table.step)).where(in_range).scalar_subquery()
    return _raw(session, series, steps=table.step.in_([first, last]))


def _raw(
    session: Session, series: _Range, steps: ColumnElement[bool] | None = None
) -> list[tuple[int, float | None]]:
    table = orm.Metric.__table__.c  # Core columns: no ORM bookkeeping for 100,000 rows
    query = (
        select(table.step, table.value)
        .where(
            table.job_id == series.job_id,
            table.name == series.name,
            steps if steps is not None else table.step.between(series.first, series.last),
        )
        .order_by(table.step)
    )
    return [(step, value) for step, value in session.execute(query)]


def _bucketed(
    session: Session, series: _Range, ends: list[tuple[int, float | None]], max_points: int
) -> list[tuple[int, float | None]] | None:
    """Each bucket's lowest and highest point and both ends, in step order; None when the range
    holds no more than max_points points after all (a sparse series), which are then sent as is.
    """
    buckets = (max_points - 2) // 2
    bound = {**series.params(), "buckets": buckets, "span": series.last - series.first + 1}
    points: dict[int, float | None] = {}
    total = 0
    if dialect_of(session) == "postgresql":
        for low, high, count in session.execute(_PG_BUCKETS, bound):
            total += count
            for value, step in (low, high):
                points[int(step)] = value
    else:
        for step, value, count in session.execute(_SQLITE_BUCKETS, bound):
            total += count
            points[step] = value
    if total <= max_points:
        return None
    points.update(ends)
    return sorted((step, finite_or_none(value)) for step, value in points.items())
