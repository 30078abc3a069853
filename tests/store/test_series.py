"""The chunk format (store/series): payloads round-trip, sketches hold each run's extremes,
merges keep the attempt rule, and a long series read from sketches keeps what must be seen."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from store import series
from store.db import Database
from store.series.codec import (
    CHUNK_STEPS,
    SKETCH_STEPS,
    Block,
    decode,
    encode,
    from_points,
    merge,
    sketch,
    sketch_points,
)

offsets = st.lists(st.integers(0, CHUNK_STEPS - 1), min_size=1, max_size=300, unique=True)
values = st.one_of(st.floats(-1e12, 1e12), st.just(math.nan), st.just(math.inf))


@given(offsets=offsets, data=st.data(), chunk=st.integers(0, 500))
def test_a_payload_round_trips_and_a_sketch_holds_each_runs_extremes(
    offsets: list[int], data: st.DataObject, chunk: int
) -> None:
    steps = np.array(offsets, np.int64) + chunk * CHUNK_STEPS
    found = np.array(data.draw(st.lists(values, min_size=len(steps), max_size=len(steps))))
    block = from_points(steps, found, attempt=3)
    back = decode(chunk, encode(chunk, block))
    assert back.steps.tolist() == block.steps.tolist() == sorted(steps.tolist())
    assert np.array_equal(back.values, block.values, equal_nan=True)
    assert back.attempts.tolist() == [3] * len(steps)
    kept_steps, kept_values, drawn = sketch_points([chunk], [sketch(chunk, block)])
    assert drawn.tolist() == [len(kept_steps)]
    runs = (block.steps - chunk * CHUNK_STEPS) // SKETCH_STEPS
    assert set(kept_steps.tolist()) <= set(block.steps.tolist())
    for run in np.unique(runs):
        mine = block.take(runs == run)
        in_run = kept_values[(kept_steps - chunk * CHUNK_STEPS) // SKETCH_STEPS == run]
        finite = mine.values[np.isfinite(mine.values)]
        if len(finite):
            assert finite.min() in in_run
        if len(finite) < len(mine):
            assert np.isnan(in_run).any()  # a non-finite point stands for the run's highest
        else:
            assert finite.max() in in_run


def test_a_merge_keeps_the_stored_point_of_the_same_attempt_and_takes_a_newer_one() -> None:
    def block(steps: list[int], value: float, attempt: int) -> Block:
        return from_points(np.array(steps, np.int64), np.full(len(steps), value), attempt)

    replayed = merge(block([1, 2], 1.0, 1), block([2, 3], 9.0, 1))
    assert replayed.values.tolist() == [1.0, 1.0, 9.0]
    retried = merge(block([1, 2], 1.0, 1), block([2, 3], 9.0, 2))
    assert retried.values.tolist() == [1.0, 9.0, 9.0]
    assert retried.attempts.tolist() == [1, 2, 2]


def test_a_long_series_read_from_sketches_keeps_ends_extremes_and_the_first_nan(
    database: Database, running: str
) -> None:
    total = 300_000
    rows = [(step, "loss", 2.0 + math.sin(step / 500)) for step in range(total)]
    rows[123_457] = (123_457, "loss", 40.0)
    rows[200_001] = (200_001, "loss", -7.0)
    rows[250_000] = (250_000, "loss", math.nan)
    rows[250_003] = (250_003, "loss", math.inf)
    with database.transaction() as session:
        series.write_metrics(session, job_id=running, attempt=1, rows=rows)
    with database.read() as session:
        (loss,) = series.query_series(session, job_id=running, names=["loss"], max_points=1000)
        (window,) = series.query_series(session, job_id=running, names=["loss"],
                                         start_step=100_000, end_step=260_000, max_points=300)
    points = dict(zip(loss.steps, loss.values, strict=True))
    assert 900 < len(points) <= 1000
    assert loss.steps[0] == 0 and loss.steps[-1] == total - 1
    assert points[123_457] == 40.0 and points[200_001] == -7.0
    assert points[250_000] is None  # the onset of the non-finite values
    assert all(points[step] == rows[step][2] for step in points if points[step] is not None)
    assert window.steps[0] == 100_000 and window.steps[-1] == 260_000
    assert len(window.steps) <= 300 and 40.0 in window.values and None in window.values


def test_a_chunk_its_sketch_cannot_draw_exactly_is_opened_when_the_series_is_short(
    database: Database, running: str
) -> None:
    steps = [0, 5000, 5001, 5002, 5003, 9000, 20_000]  # four points in one 64-step run
    with database.transaction() as session:
        series.write_metrics(session, job_id=running, attempt=1,
                              rows=[(step, "loss", float(step % 7)) for step in steps])
    with database.read() as session:
        (loss,) = series.query_series(session, job_id=running, names=["loss"], max_points=10)
    assert loss.steps == steps
