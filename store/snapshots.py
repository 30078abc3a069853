"""Per-layer distribution snapshots and the model's layer table: fenced, idempotent writes and
keyset-paged reads.

Writers hand over the contract's records (Snapshot, Layer: what the training core reports) or
plain dicts of the same fields; either is validated before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gradlab_contract.models import Layer, Snapshot, SnapshotPage
from pydantic import BaseModel, ValidationError
from sqlalchemy import ColumnElement, select, tuple_
from sqlalchemy.orm import Session

from store import orm
from store._codec import check_limit, decode_cursor, encode_cursor, json_safe
from store._sql import fence, upsert_newer_attempt
from store.errors import InvalidInput

MAX_PAGE = 1000
# Page order: by step, then kind, then from the input layer to the output layer.
_ORDER = (orm.Snapshot.step, orm.Snapshot.kind, orm.Snapshot.depth, orm.Snapshot.layer)


def _as_dict(item: Any) -> dict[str, Any]:
    if isinstance(item, BaseModel):
        return item.model_dump()
    if isinstance(item, Mapping):
        return dict(item)
    raise InvalidInput("snapshots", f"cannot store a {type(item).__name__}")


def _validated(model: type[Snapshot] | type[Layer], item: Any) -> Any:
    try:
        return model.model_validate(_as_dict(item))
    except ValidationError as error:
        raise InvalidInput(model.__name__.lower(), str(error).splitlines()[0]) from None


def write_snapshots(
    session: Session, *, job_id: str, attempt: int, snapshots: Iterable[Any]
) -> int:
    """Store snapshots for the current attempt (fenced); a replayed batch adds nothing.

    Returns the number of distinct (kind, layer, step) rows sent; the last of duplicates wins.
    """
    fence(session, job_id=job_id, attempt=attempt)
    rows: dict[tuple[str, str, int], dict[str, Any]] = {}
    for item in snapshots:
        snapshot: Snapshot = _validated(Snapshot, item)
        rows[(snapshot.kind, snapshot.layer, snapshot.step)] = {
            "job_id": job_id, "kind": snapshot.kind, "layer": snapshot.layer,
            "step": snapshot.step, "depth": snapshot.depth, "attempt": attempt,
            "stats": json_safe(snapshot.stats),
            "histogram": json_safe(snapshot.histogram.model_dump()),
            "log_histogram": json_safe(snapshot.log_histogram.model_dump())
            if snapshot.log_histogram else None,
        }
    keys = ("job_id", "kind", "layer", "step")
    upsert_newer_attempt(session, orm.Snapshot, list(rows.values()), keys)
    return len(rows)


def write_layers(session: Session, *, job_id: str, attempt: int, layers: Iterable[Any]) -> int:
    """Store the model's layers for the current attempt (fenced, idempotent)."""
    fence(session, job_id=job_id, attempt=attempt)
    rows = {}
    for item in layers:
        layer: Layer = _validated(Layer, item)
        rows[layer.name] = {"job_id": job_id, "attempt": attempt, **layer.model_dump()}
    upsert_newer_attempt(session, orm.Layer, list(rows.values()), ("job_id", "name"))
    return len(rows)


def list_layers(session: Session, *, job_id: str) -> list[Layer]:
    """The job's layers from input to output."""
    query = (
        select(orm.Layer)
        .where(orm.Layer.job_id == job_id)
        .order_by(orm.Layer.depth, orm.Layer.name)
    )
    return [
        Layer(name=row.name, type=row.type, shape=row.shape, parameters=row.parameters,
              depth=row.depth)
        for row in session.scalars(query)
    ]


def snapshot_steps(session: Session, *, job_id: str, kind: str | None = None) -> list[int]:
    """The steps at which the job has snapshots, ascending (for a step slider)."""
    query = select(orm.Snapshot.step).where(orm.Snapshot.job_id == job_id)
    if kind is not None:
        query = query.where(orm.Snapshot.kind == kind)
    return list(session.scalars(query.distinct().order_by(orm.Snapshot.step)))


def query_snapshots(
    session: Session,
    *,
    job_id: str,
    kind: str | None = None,
    layer: str | None = None,
    step: int | None = None,
    start_step: int | None = None,
    end_step: int | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> SnapshotPage:
    """Snapshots by step, kind and depth; filters combine. Pass next_cursor for the next page."""
    check_limit(limit, MAX_PAGE)
    query = select(orm.Snapshot).where(*_filters(job_id, kind, layer, step, start_step, end_step))
    if cursor is not None:
        after = decode_cursor(cursor, (int, str, int, str))
        query = query.where(tuple_(*_ORDER) > tuple_(*after))
    rows = list(session.scalars(query.order_by(*_ORDER).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(last.step, last.kind, last.depth, last.layer)
    return SnapshotPage(items=[_to_snapshot(row) for row in rows], next_cursor=next_cursor)


def _filters(
    job_id: str,
    kind: str | None,
    layer: str | None,
    step: int | None,
    start_step: int | None,
    end_step: int | None,
) -> list[ColumnElement[bool]]:
    conditions = [orm.Snapshot.job_id == job_id]
    for column, value in ((orm.Snapshot.kind, kind), (orm.Snapshot.layer, layer)):
        if value is not None:
            conditions.append(column == value)
    if step is not None:
        conditions.append(orm.Snapshot.step == step)
    if start_step is not None:
        conditions.append(orm.Snapshot.step >= start_step)
    if end_step is not None:
        conditions.append(orm.Snapshot.step <= end_step)
    return conditions


def _to_snapshot(row: orm.Snapshot) -> Snapshot:
    return Snapshot.model_validate(
        {
            "step": row.step, "kind": row.kind, "layer": row.layer, "depth": row.depth,
            "stats": row.stats, "histogram": row.histogram, "log_histogram": row.log_histogram,
        }
    )
