from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from gradlab_contract.models import Histogram, Layer, Snapshot

from store import snapshots
from store.db import Database
from store.errors import InvalidInput, StaleAttempt


def _snapshot(
    step: int, kind: str = "gradient", layer: str = "fc1", depth: int = 0
) -> Snapshot:
    histogram = Histogram(edges=[-1.0, 0.0, 1.0], counts=[2, 3])
    return Snapshot(
        step=step, kind=kind, layer=layer, depth=depth,  # type: ignore[arg-type]
        stats={"mean": 0.1, "std": math.nan, "max": math.inf},
        histogram=histogram,
        log_histogram=histogram if kind == "gradient" else None,
    )


def _write(database: Database, job_id: str, items: list[object], attempt: int = 1) -> int:
    with database.transaction() as session:
        return snapshots.write_snapshots(
            session, job_id=job_id, attempt=attempt, snapshots=items
        )


def test_training_dataclasses_are_stored_and_read_as_api_models(
    database: Database, running: str
) -> None:
    _write(database, running, [_snapshot(10)])
    with database.read() as session:
        page = snapshots.query_snapshots(session, job_id=running)
    (stored,) = page.items
    assert stored.stats == {"mean": 0.1, "std": None, "max": None}
    assert stored.histogram == Histogram(edges=[-1.0, 0.0, 1.0], counts=[2, 3])
    assert stored.log_histogram == stored.histogram and page.next_cursor is None


def test_replays_add_nothing_and_old_attempts_are_fenced(
    database: Database, running: str, count_rows: Callable[[str], int]
) -> None:
    batch = [_snapshot(10), _snapshot(10, kind="weight"), _snapshot(20)]
    assert _write(database, running, batch) == 3
    _write(database, running, batch)
    with pytest.raises(StaleAttempt):
        _write(database, running, [_snapshot(30)], attempt=7)
    assert count_rows("snapshots") == 3


def test_pages_follow_step_kind_and_depth_with_filters(database: Database, running: str) -> None:
    items = [
        _snapshot(step, kind, layer, depth)
        for step in (0, 50, 100)
        for kind in ("activation", "gradient")
        for depth, layer in enumerate(("fc1", "fc2", "out"))
    ]
    _write(database, running, list(reversed(items)))
    seen, cursor = [], None
    while True:
        with database.read() as session:
            page = snapshots.query_snapshots(session, job_id=running, limit=4, cursor=cursor)
        seen += [(s.step, s.kind, s.depth) for s in page.items]
        if not (cursor := page.next_cursor):
            break
    assert seen == [(s.step, s.kind, s.depth) for s in items]
    with database.read() as session:
        one_layer = snapshots.query_snapshots(
            session, job_id=running, kind="gradient", layer="fc2", start_step=50
        )
        at_step = snapshots.query_snapshots(session, job_id=running, step=100, kind="activation")
        steps = snapshots.snapshot_steps(session, job_id=running)
    assert [(s.step, s.layer) for s in one_layer.items] == [(50, "fc2"), (100, "fc2")]
    assert [s.layer for s in at_step.items] == ["fc1", "fc2", "out"]
    assert steps == [0, 50, 100]


def test_a_bad_cursor_or_snapshot_is_invalid_input(database: Database, running: str) -> None:
    with database.read() as session, pytest.raises(InvalidInput):
        snapshots.query_snapshots(session, job_id=running, cursor="WyJhIl0")
    with pytest.raises(InvalidInput):
        _write(database, running, [{"step": 1, "kind": "bias"}])


def test_layers_are_stored_once_per_name(database: Database, running: str) -> None:
    layers = [
        Layer(name="out", type="linear", shape=[3, 64], parameters=195, depth=1),
        Layer(name="fc1", type="linear", shape=[64, 2], parameters=192, depth=0),
    ]
    with database.transaction() as session:
        snapshots.write_layers(session, job_id=running, attempt=1, layers=layers)
        snapshots.write_layers(session, job_id=running, attempt=1, layers=layers)
    with database.read() as session:
        stored = snapshots.list_layers(session, job_id=running)
    assert stored == [
        Layer(name="fc1", type="linear", shape=[64, 2], parameters=192, depth=0),
        Layer(name="out", type="linear", shape=[3, 64], parameters=195, depth=1),
    ]
