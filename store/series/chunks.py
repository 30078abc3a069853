"""Reading and writing chunk rows: the only SQL that knows the metric_chunks table."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import cast

from sqlalchemy import Table, delete, func, select, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store import orm
from store._sql import dialect_of
from store.series.codec import Block, chunk_of, decode, row_fields

Key = tuple[str, int]  # (series name, chunk)

_TABLE = cast(Table, orm.MetricChunk.__table__)
_C = _TABLE.c
PAGE_CHUNKS = 32  # chunks per query when a whole series is streamed


def load(
    session: Session, *, job_id: str, keys: Iterable[Key], lock: bool = False
) -> dict[Key, Block]:
    """The blocks of these (name, chunk) that exist. lock: hold their rows until the transaction
    ends (PostgreSQL), so that two writers cannot merge into the same block at once."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    query = select(_C.name, _C.chunk, _C.payload).where(
        _C.job_id == job_id, tuple_(_C.name, _C.chunk).in_(wanted)
    )
    if lock:
        query = query.with_for_update()
    return {(name, chunk): decode(chunk, payload)
            for name, chunk, payload in session.execute(query)}


def save(session: Session, *, job_id: str, attempt: int, blocks: dict[Key, Block]) -> None:
    """Insert or replace these blocks; an empty block deletes its row."""
    empty = [key for key, block in blocks.items() if len(block) == 0]
    if empty:
        session.execute(delete(_TABLE).where(
            _C.job_id == job_id, tuple_(_C.name, _C.chunk).in_(empty)))
    rows = [{"job_id": job_id, "name": name, **row_fields(chunk, block),
             "attempt": int(max(attempt, block.attempts.max()))}
            for (name, chunk), block in blocks.items() if len(block)]
    if not rows:
        return
    module = postgresql if dialect_of(session) == "postgresql" else sqlite
    stmt = module.insert(_TABLE)
    keys = ("job_id", "name", "chunk")
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={column: stmt.excluded[column] for column in rows[0] if column not in keys},
    )
    session.execute(stmt, rows)


Sketched = tuple[int, int, bytes]  # (chunk, points it holds, sketch)


def summaries(
    session: Session, *, job_id: str, names: Sequence[str], first: int, last: int
) -> dict[str, list[Sketched]]:
    """name -> (chunk, count, sketch) of each chunk of the series with a step in [first,
    last], in step order: one query for all the series."""
    query = (
        select(_C.name, _C.chunk, _C.count, _C.sketch)
        .where(_C.job_id == job_id, _C.name.in_(list(names)),
               _C.chunk.between(chunk_of(first), chunk_of(last)),
               _C.last_step >= first, _C.first_step <= last)
        .order_by(_C.name, _C.chunk)
    )
    found: dict[str, list[Sketched]] = {}
    for row in session.execute(query):
        found.setdefault(row[0], []).append((row[1], row[2], row[3]))
    return found


def first_chunks_reaching(
    session: Session, *, job_ids: Sequence[str], name: str, value: float, from_above: bool
) -> list[Key]:
    """(job id, chunk) of each job's first chunk of `name` holding a point at or below `value`
    (from_above) or at or above it."""
    reaches = _C.low_value <= value if from_above else _C.high_value >= value
    query = (select(_C.job_id, func.min(_C.chunk))
             .where(_C.job_id.in_(list(job_ids)), _C.name == name, reaches)
             .group_by(_C.job_id))
    return [(job_id, int(chunk)) for job_id, chunk in session.execute(query)]


def after(session: Session, *, job_id: str, step: int) -> list[Key]:
    """(name, chunk) of every chunk of the job that holds a step past `step`."""
    query = select(_C.name, _C.chunk).where(_C.job_id == job_id, _C.last_step > step)
    return [(name, chunk) for name, chunk in session.execute(query)]


def pages(
    session: Session, *, job_id: str, name: str, first: int, last: int
) -> Iterator[list[Block]]:
    """The series' blocks in step order, PAGE_CHUNKS at a time (keyset pages: no OFFSET)."""
    start = chunk_of(first)
    while True:
        query = (
            select(_C.chunk, _C.payload)
            .where(_C.job_id == job_id, _C.name == name,
                   _C.chunk.between(start, chunk_of(last)))
            .order_by(_C.chunk).limit(PAGE_CHUNKS)
        )
        found = [(chunk, decode(chunk, payload)) for chunk, payload in session.execute(query)]
        if not found:
            return
        yield [block for _, block in found]
        start = found[-1][0] + 1


def names(session: Session, *, job_id: str) -> list[str]:
    """The job's series names, sorted: a loose index scan (one probe of the primary key per
    name) rather than DISTINCT, which would read every chunk of every series."""
    query = text(
        """
        WITH RECURSIVE names(name) AS (
            SELECT min(name) FROM metric_chunks WHERE job_id = :job_id
            UNION ALL
            SELECT (SELECT min(m.name) FROM metric_chunks AS m
                    WHERE m.job_id = :job_id AND m.name > names.name)
            FROM names WHERE names.name IS NOT NULL
        )
        SELECT name FROM names WHERE name IS NOT NULL
        """
    )
    return list(session.scalars(query, {"job_id": job_id}))


def count_points(session: Session, *, job_id: str | None) -> int:
    query = select(func.coalesce(func.sum(_C.count), 0))
    if job_id is not None:
        query = query.where(_C.job_id == job_id)
    return int(session.execute(query).scalar_one())
