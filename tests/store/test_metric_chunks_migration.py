"""The migration to chunked series moves every metric row, and its downgrade moves them back:
on SQLite and on PostgreSQL."""

from __future__ import annotations

import math

from alembic import command
from sqlalchemy import text

from store import migrate, series
from store.db import Database, make_engine
from store.settings import Settings
from tests.store.test_migrations import empty_settings  # noqa: F401  (the fixture, both backends)

BEFORE = "73356f23d5ac"
CHUNKED = "0070958c8e31"

# Two jobs; a long series crossing chunks with a gap, a NaN and a rewrite by attempt 2.
ROWS = [("j1", "loss", step, 1.0 / (step + 1), 1 if step < 1500 else 2)
        for step in [*range(0, 1200), *range(1500, 2600, 3)]]
ROWS += [("j1", "loss_nan", 7, None, 1), ("j1", "loss_nan", 8, 0.5, 1),
         ("j2", "val_accuracy", 100, 0.25, 1), ("j2", "val_accuracy", 5000, 0.75, 1)]


def _insert_old_rows(database: Database) -> None:
    with database.transaction() as session:
        session.execute(text("INSERT INTO teams (id, name, created_at) VALUES "
                             "('t', 'acme', CURRENT_TIMESTAMP)"))
        for job_id in ("j1", "j2"):
            session.execute(text(
                "INSERT INTO jobs (id, team_id, name, status, spec, attempt, progress_step, "
                "total_steps, summary, created_at, enqueued_at, cancel_requested) VALUES "
                "(:id, 't', 'x', 'running', '{}', 2, 0, 0, '{}', CURRENT_TIMESTAMP, "
                "CURRENT_TIMESTAMP, false)"), {"id": job_id})
        session.execute(
            text("INSERT INTO metrics (job_id, name, step, value, attempt) "
                 "VALUES (:job_id, :name, :step, :value, :attempt)"),
            [dict(zip(("job_id", "name", "step", "value", "attempt"), row, strict=True))
             for row in ROWS],
        )


def _old_rows(database: Database) -> list[tuple]:
    with database.read() as session:
        return sorted(tuple(row) for row in session.execute(
            text("SELECT job_id, name, step, value, attempt FROM metrics")))


def test_rows_move_into_chunks_and_back(empty_settings: Settings) -> None:  # noqa: F811
    database = Database(make_engine(empty_settings))
    try:
        migrate.upgrade(empty_settings, BEFORE)
        _insert_old_rows(database)
        migrate.upgrade(empty_settings, CHUNKED)
        with database.read() as session:
            points = series.all_points(session, job_id="j1")
            long_loss = series.query_series(session, job_id="j1", names=["loss"],
                                             max_points=100_000)[0]
        expected = sorted((name, step, value, attempt)
                          for job, name, step, value, attempt in ROWS if job == "j1")
        assert sorted(points) == expected
        assert long_loss.steps == [step for _, name, step, *_ in ROWS if name == "loss"]
        assert math.isclose(long_loss.values[-1] or 0, 1.0 / 2599)
        command.downgrade(migrate.alembic_config(empty_settings), BEFORE)
        assert _old_rows(database) == sorted(ROWS)
    finally:
        database.close()

