"""Reading and writing chunk rows: the only SQL that knows the metric_chunks table."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import cast

from sqlalchemy import Table, delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store import orm
from store._sql import dialect_of
from store.series.codec import Block, Summary, chunk_of, decode, encode, summarize

_TABLE = cast(Table, orm.MetricChunk.__table__)
_C = _TABLE.c
_SUMMARY = (_C.chunk, _C.first_step, _C.last_step, _C.count, _C.low_step, _C.low_value,
            _C.high_step, _C.high_value, _C.nonfinite_step)
PAGE_CHUNKS = 128  # chunks per query when a whole series is streamed


def load(
    session: Session, *, job_id: str, name: str, chunks: Iterable[int], lock: bool = False
) -> dict[int, Block]:
    """The blocks of these chunks that exist. lock: hold them until the transaction ends
    (PostgreSQL), so that two writers cannot merge into the same block at once."""
    wanted = sorted(set(chunks))
    if not wanted:
        return {}
    query = select(_C.chunk, _C.payload).where(
        _C.job_id == job_id, _C.name == name, _C.chunk.in_(wanted)
    )
    if lock:
        query = query.with_for_update()
    return {chunk: decode(chunk, payload) for chunk, payload in session.execute(query)}


def save(session: Session, *, job_id: str, name: str, attempt: int,
         blocks: dict[int, Block]) -> None:
    """Insert or replace these blocks; an empty block deletes its row."""
    empty = [chunk for chunk, block in blocks.items() if len(block) == 0]
    if empty:
        session.execute(delete(_TABLE).where(
            _C.job_id == job_id, _C.name == name, _C.chunk.in_(empty)))
    rows = [_row(job_id, name, attempt, chunk, block)
            for chunk, block in blocks.items() if len(block)]
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


def _row(job_id: str, name: str, attempt: int, chunk: int, block: Block) -> dict[str, object]:
    summary = summarize(block)
    return {"job_id": job_id, "name": name, "chunk": chunk, **vars(summary),
            "attempt": int(max(attempt, block.attempts.max())), "payload": encode(chunk, block)}


def summaries(
    session: Session, *, job_id: str, name: str, first: int, last: int
) -> list[tuple[int, Summary]]:
    """(chunk, summary) of every chunk of the series that holds a step in [first, last]."""
    query = (
        select(*_SUMMARY)
        .where(_C.job_id == job_id, _C.name == name, _C.chunk.between(
            chunk_of(first), chunk_of(last)), _C.last_step >= first, _C.first_step <= last)
        .order_by(_C.chunk)
    )
    return [(row[0], Summary(*row[1:])) for row in session.execute(query)]


def first_chunks_reaching(
    session: Session, *, job_ids: Sequence[str], name: str, value: float, from_above: bool
) -> list[tuple[str, int]]:
    """(job id, chunk) of each job's first chunk of `name` holding a point at or below `value`
    (from_above) or at or above it."""
    reaches = _C.low_value <= value if from_above else _C.high_value >= value
    query = (select(_C.job_id, func.min(_C.chunk))
             .where(_C.job_id.in_(list(job_ids)), _C.name == name, reaches)
             .group_by(_C.job_id))
    return [(job_id, int(chunk)) for job_id, chunk in session.execute(query)]


def after(session: Session, *, job_id: str, step: int) -> list[tuple[str, int]]:
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
