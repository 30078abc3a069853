"""Metric series stored in chunks: one row per (job, name, block of CHUNK_STEPS steps).

Each row holds the block's points as arrays (step offsets, values, the attempt that wrote each
point) in one payload, compressed where that pays, beside a summary of the block (its first and
last step, the number of points, its lowest and highest finite point, its first non-finite one)
and a sketch (the lowest and highest point of each run of SKETCH_STEPS steps). A downsampled
read of a long series reads sketches, not points: O(points returned) bytes, whatever the length.

Per-step metric series: fenced, idempotent batch writes, and shape-keeping reads.

The public API of the series lives here; the points live in chunks (chunks.py, codec.py). The
guarantees of one row per point stay: one value per (job, name, step); a replayed batch changes
nothing (a point is overwritten only by a newer attempt); truncate_after removes what a resumed
attempt will write again; every write is fenced by (job id, attempt).

A series longer than max_points is downsampled with MinMaxLTTB, keeping its ends, its extremes
and its first non-finite point (store/series/downsample.py). A long series is downsampled from
the chunks' summaries (each chunk's lowest, highest and first non-finite point), so the read
costs O(max_points) rows whatever the series' length; only the two end chunks are opened.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from gradlab_contract.models import MetricSeries
from sqlalchemy import delete
from sqlalchemy.orm import Session

from store import orm
from store._sql import fence
from store.errors import InvalidInput
from store.series import chunks
from store.series.codec import (
    CHUNK_STEPS,
    Block,
    concat,
    from_points,
    merge,
    sketch_points,
    split,
)
from store.series.downsample import keep_shape

MetricRow = tuple[int, str, float]  # (step, name, value)
MIN_POINTS = 4  # both ends, the lowest and the highest point
FIRST_STEP, LAST_STEP = -(2**31), 2**31 - 1
# Up to this many points per point asked for, a series is read whole and downsampled in memory
# (MinMaxLTTB's own pre-selection ratio); beyond, from the chunks' summaries.
_WHOLE_RATIO = 4


def write_metrics(
    session: Session, *, job_id: str, attempt: int, rows: Iterable[MetricRow]
) -> int:
    """Store a batch of (step, name, value) for the job's current attempt; return points sent.

    Fenced: raises StaleAttempt (writing nothing) unless `attempt` is current and running.
    A replayed batch changes nothing; non-finite values are stored as NaN and read as None.
    Within a batch, the last value sent for a step wins. Three statements whatever the batch:
    the fence, one read of the chunks it touches, one upsert of them.
    """
    fence(session, job_id=job_id, attempt=attempt)
    by_name: dict[str, dict[int, float]] = {}
    for step, name, value in rows:
        by_name.setdefault(name, {})[step] = value
    incoming: dict[chunks.Key, Block] = {}
    for name, points in by_name.items():
        steps = np.fromiter(points.keys(), np.int64, len(points))
        values = np.fromiter(points.values(), np.float64, len(points))
        for chunk, block in split(from_points(steps, values, attempt)).items():
            incoming[(name, chunk)] = block
    stored = chunks.load(session, job_id=job_id, keys=incoming, lock=True)
    merged = {key: merge(stored[key], block) if key in stored else block
              for key, block in incoming.items()}
    chunks.save(session, job_id=job_id, attempt=attempt, blocks=merged)
    return sum(len(points) for points in by_name.values())


def truncate_after(session: Session, *, job_id: str, attempt: int, step: int) -> None:
    """Delete metrics and snapshots past `step`: a retry resuming from its checkpoint at `step`
    will record them again (fenced by the new attempt)."""
    fence(session, job_id=job_id, attempt=attempt)
    blocks = chunks.load(session, job_id=job_id, keys=chunks.after(session, job_id=job_id,
                                                                   step=step))
    kept = {key: block.take(block.steps <= step) for key, block in blocks.items()}
    chunks.save(session, job_id=job_id, attempt=attempt, blocks=kept)
    session.execute(
        delete(orm.Snapshot).where(orm.Snapshot.job_id == job_id, orm.Snapshot.step > step),
        execution_options={"synchronize_session": False},
    )


def metric_names(session: Session, *, job_id: str) -> list[str]:
    """The job's metric names, sorted."""
    return chunks.names(session, job_id=job_id)


def query_series(
    session: Session,
    *,
    job_id: str,
    names: Sequence[str] | None = None,
    start_step: int | None = None,
    end_step: int | None = None,
    max_points: int = 1000,
) -> list[MetricSeries]:
    """Series of the job in step order, each at most max_points long (shape and spikes kept).

    names=None means every series; a requested name with no points comes back empty.
    Non-finite values come back as None.
    """
    if max_points < MIN_POINTS:
        raise InvalidInput("max_points", f"must be at least {MIN_POINTS}, got {max_points}")
    if start_step is not None and end_step is not None and end_step < start_step:
        raise InvalidInput("end_step", "must not be below start_step")
    wanted = list(names) if names is not None else metric_names(session, job_id=job_id)
    span = _Range(job_id, FIRST_STEP if start_step is None else start_step,
                  LAST_STEP if end_step is None else end_step)
    found = chunks.summaries(session, job_id=job_id, names=wanted, first=span.first,
                             last=span.last)
    return [_series(session, span, name, found.get(name, []), max_points) for name in wanted]


def stream_blocks(
    session: Session, *, job_id: str, name: str, start_step: int | None = None,
    end_step: int | None = None,
) -> Iterator[Block]:
    """Every point of one series in step order, a chunk at a time (for a full export)."""
    first = FIRST_STEP if start_step is None else start_step
    last = LAST_STEP if end_step is None else end_step
    for page in chunks.pages(session, job_id=job_id, name=name, first=first, last=last):
        for block in page:
            inside = block.take((block.steps >= first) & (block.steps <= last))
            if len(inside):
                yield inside


def first_steps_reaching(
    session: Session, *, job_ids: Sequence[str], name: str, value: float, from_above: bool
) -> dict[str, int]:
    """job id -> the first step at which its series `name` reached `value` (at or below it when
    from_above, else at or above); jobs that never did are absent. The chunks' summaries find
    each job's first chunk that does; only that chunk is opened."""
    found: dict[str, int] = {}
    for job_id, chunk in chunks.first_chunks_reaching(
        session, job_ids=job_ids, name=name, value=value, from_above=from_above
    ):
        block = chunks.load(session, job_id=job_id, keys=[(name, chunk)])[(name, chunk)]
        reached = block.values <= value if from_above else block.values >= value
        found[job_id] = int(block.steps[np.argmax(reached)])
    return found


def all_points(
    session: Session, *, job_id: str
) -> list[tuple[str, int, float | None, int]]:
    """Every stored point of the job as (name, step, value or None, attempt that wrote it): what
    the chaos and migration tests compare, point by point."""
    found: list[tuple[str, int, float | None, int]] = []
    for name in metric_names(session, job_id=job_id):
        for block in stream_blocks(session, job_id=job_id, name=name):
            found.extend(
                (name, step, None if value != value else value, attempt)
                for step, value, attempt in zip(block.steps.tolist(), block.values.tolist(),
                                                block.attempts.tolist(), strict=True)
            )
    return found


def count_points(session: Session, *, job_id: str | None = None) -> int:
    """How many points are stored (of one job, or of all)."""
    return chunks.count_points(session, job_id=job_id)


@dataclass(frozen=True)
class _Range:
    job_id: str
    first: int
    last: int

    def clip(self, block: Block) -> Block:
        if len(block) and self.first <= block.steps[0] and block.steps[-1] <= self.last:
            return block
        return block.take((block.steps >= self.first) & (block.steps <= self.last))


def _series(session: Session, span: _Range, name: str, found: list[chunks.Sketched],
            max_points: int) -> MetricSeries:
    """The end chunks are opened (they hold the ends, and the range may cut them); the others
    give their sketches, which are their points exactly when no 64-step run of theirs holds more
    than two. A chunk drawn inexactly is opened when the range holds few points (up to
    _WHOLE_RATIO * max_points) or the sketches give fewer points than asked for."""
    ends = _whole(session, span, name, sorted({found[0][0], found[-1][0]}) if found else [])
    middle = found[1:-1]
    steps, values, drawn = sketch_points([c for c, _, _ in middle], [s for _, _, s in middle])
    counts = np.array([count for _, count, _ in middle], np.intp)
    inexact = np.flatnonzero(drawn < counts)
    points = concat([ends, Block(steps, values, np.zeros(len(steps), np.int64))])
    total = len(ends) + int(counts.sum())
    if len(inexact) and (total <= _WHOLE_RATIO * max_points or len(points) < max_points):
        opened = _whole(session, span, name, [middle[i][0] for i in inexact])
        sketched = ~np.isin(steps // CHUNK_STEPS, [middle[i][0] for i in inexact])
        points = concat([ends, opened, Block(steps[sketched], values[sketched],
                                             np.zeros(int(sketched.sum()), np.int64))])
    if len(points) > max_points:
        points = points.take(keep_shape(points.steps, points.values, max_points))
    return MetricSeries(
        name=name, steps=points.steps.tolist(),
        values=[None if v != v else v for v in points.values.tolist()],  # NaN -> None
    )


def _whole(session: Session, span: _Range, name: str, wanted: list[int]) -> Block:
    blocks = chunks.load(session, job_id=span.job_id, keys=[(name, chunk) for chunk in wanted])
    return span.clip(concat([blocks[key] for key in sorted(blocks)]))
