from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import leases, orm, series, snapshots
from store.db import Database
from store.errors import InvalidInput, StaleAttempt


def _write(
    database: Database, job_id: str, rows: list[series.MetricRow], attempt: int = 1
) -> None:
    with database.transaction() as session:
        series.write_metrics(session, job_id=job_id, attempt=attempt, rows=rows)


def _series(database: Database, job_id: str, **keywords: object) -> dict[str, list[tuple]]:
    with database.read() as session:
        found = series.query_series(session, job_id=job_id, **keywords)  # type: ignore[arg-type]
    return {s.name: list(zip(s.steps, s.values, strict=True)) for s in found}


def _snapshot(step: int) -> dict[str, object]:
    return {"step": step, "kind": "weight", "layer": "fc1", "depth": 0, "stats": {"mean": 0.0},
            "histogram": {"edges": [0.0, 1.0], "counts": [3]}}


def test_written_metrics_read_back_in_step_order(database: Database, running: str) -> None:
    _write(database, running, [(2, "loss", 0.5), (1, "loss", 0.9), (1, "accuracy", 0.1)])
    assert _series(database, running) == {
        "accuracy": [(1, 0.1)], "loss": [(1, 0.9), (2, 0.5)],
    }
    with database.read() as session:
        assert series.metric_names(session, job_id=running) == ["accuracy", "loss"]


def test_non_finite_values_come_back_as_none(database: Database, running: str) -> None:
    _write(database, running, [(1, "loss", math.nan), (2, "loss", math.inf), (3, "loss", 1.0)])
    assert _series(database, running, names=["loss"]) == {
        "loss": [(1, None), (2, None), (3, 1.0)]
    }


def test_a_write_from_an_old_attempt_is_refused_and_writes_nothing(
    database: Database, running: str, count_rows: Callable[[str], int]
) -> None:
    with pytest.raises(StaleAttempt):
        _write(database, running, [(1, "loss", 1.0)], attempt=2)
    with database.transaction() as session:
        leases.finish_job(session, job_id=running, attempt=1, status="succeeded")
    with pytest.raises(StaleAttempt):
        _write(database, running, [(2, "loss", 1.0)], attempt=1)
    with database.transaction() as session, pytest.raises(StaleAttempt):
        snapshots.write_snapshots(session, job_id=running, attempt=1, snapshots=[_snapshot(1)])
    assert count_rows("metrics") == count_rows("snapshots") == 0


def test_a_replayed_batch_adds_nothing(
    database: Database, running: str, count_rows: Callable[[str], int]
) -> None:
    batch = [(step, "loss", 1.0 / step) for step in range(1, 101)]
    _write(database, running, batch)
    _write(database, running, batch)
    _write(database, running, [*batch[:10], *batch[:10]])  # duplicates inside one batch too
    assert count_rows("metrics") == 100
    assert _series(database, running)["loss"][:2] == [(1, 1.0), (2, 0.5)]


def test_truncate_after_removes_what_a_resumed_attempt_rewrites(
    database: Database, running: str, count_rows: Callable[[str], int]
) -> None:
    _write(database, running, [(step, "loss", float(step)) for step in range(1, 11)])
    with database.transaction() as session:
        snapshots.write_snapshots(
            session, job_id=running, attempt=1, snapshots=[_snapshot(4), _snapshot(8)]
        )
        series.truncate_after(session, job_id=running, attempt=1, step=5)
    assert [step for step, _ in _series(database, running)["loss"]] == [1, 2, 3, 4, 5]
    assert count_rows("snapshots") == 1


def test_a_newer_attempt_overwrites_and_an_older_one_cannot(
    database: Database, running: str, claim: Callable[[str], int]
) -> None:
    _write(database, running, [(1, "loss", 1.0), (2, "loss", 2.0)])
    with database.transaction() as session:  # the reaper gives the job a second attempt
        leases.retry_or_fail(
            session, job_id=running, expected_attempt=1, max_attempts=3,
            now=orm.utcnow() + timedelta(seconds=3600),
        )
    assert claim(running) == 2
    _write(database, running, [(2, "loss", 20.0)], attempt=2)
    assert _series(database, running)["loss"] == [(1, 1.0), (2, 20.0)]


def test_downsampling_keeps_a_single_spike(database: Database, running: str) -> None:
    rows = [(step, "loss", 1.0 + (step % 7) * 1e-3) for step in range(100_000)]
    rows[61_234] = (61_234, "loss", 1e6)
    rows[70_001] = (70_001, "loss", -5.0)
    _write(database, running, rows)
    loss = _series(database, running, max_points=100)["loss"]
    assert len(loss) <= 100
    assert (61_234, 1e6) in loss and (70_001, -5.0) in loss
    assert [step for step, _ in loss] == sorted(step for step, _ in loss)
    assert loss[0][0] == 0 and loss[-1][0] == 99_999  # the ends are kept


def test_a_sparse_series_under_max_points_comes_back_whole(
    database: Database, running: str
) -> None:
    _write(database, running, [(step, "eval", float(step)) for step in range(0, 100_000, 200)])
    _write(database, running, [(step, "loss", float(step)) for step in range(0, 100_000, 50)])
    series = _series(database, running, max_points=1000)
    assert len(series["eval"]) == 500  # spans 100,000 steps but holds 500 points
    assert 900 < len(series["loss"]) <= 1000  # 2000 points: downsampled


def test_step_range_and_short_series(database: Database, running: str) -> None:
    _write(database, running, [(step, "loss", float(step)) for step in range(0, 1000, 10)])
    window = _series(database, running, start_step=100, end_step=150, max_points=1000)["loss"]
    assert window == [(step, float(step)) for step in range(100, 151, 10)]
    assert _series(database, running, names=["nothing"]) == {"nothing": []}
    with pytest.raises(InvalidInput):
        _series(database, running, max_points=3)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.lists(
        st.one_of(st.floats(-1e9, 1e9), st.just(math.nan)), min_size=1, max_size=120
    ),
    max_points=st.integers(4, 40),
)
def test_downsampling_properties(
    database: Database, running: str, values: list[float], max_points: int
) -> None:
    """Any series: at most max_points points, a subset of the original, in step order, with
    both ends, the global minimum, and a non-finite point (or else the maximum) kept."""
    rows = [(step, "loss", value) for step, value in enumerate(values)]
    with database.transaction() as session:
        series.truncate_after(session, job_id=running, attempt=1, step=-1)
        series.write_metrics(session, job_id=running, attempt=1, rows=rows)
    got = _series(database, running, max_points=max_points)["loss"]
    original = [(step, None if math.isnan(v) else v) for step, _, v in rows]
    assert len(got) <= max_points
    assert set(got) <= set(original)
    assert got[0] == original[0] and got[-1] == original[-1]
    assert [step for step, _ in got] == sorted({step for step, _ in got})
    finite = [value for _, value in original if value is not None]
    kept = [value for _, value in got]
    if finite:
        assert min(finite) in kept
    assert (None in kept) == (None in [value for _, value in original])
    if finite and None not in kept:
        assert max(finite) in kept
