"""Store benchmark on PostgreSQL: downsampled metric reads and metric ingestion.

    .venv/bin/python bench/store_bench.py [--pg postgresql://postgres@127.0.0.1:5432/test]

Creates a temporary database (dropped at the end), migrates it, and prints:
- the p50 time of query_series over a 100,000-step series with max_points=1000, against
  returning the raw series, and their ratio;
- ingestion in rows/s with 1000-row batches (one transaction each) against one row per
  transaction.
Figures only, no assertions: they depend on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable

import psycopg
from gradlab_contract.spec import JobSpec
from sqlalchemy import make_url

from store import jobs, leases, migrate, series, teams
from store.db import Database
from store.settings import Settings

STEPS = 100_000
QUERIES = 30


def _p50_ms(run: Callable[[], object], repeats: int = QUERIES) -> float:
    run()  # warm the cache and the connection pool
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _running_jobs(database: Database, count: int) -> list[str]:
    spec = JobSpec.model_validate({"data": {"dataset": "spiral"}})
    with database.transaction() as session:
        team = teams.create_team(session, name="bench")
        ids = [
            jobs.create_job(session, team_id=team.id, spec=spec, total_steps=STEPS).job.id
            for _ in range(count)
        ]
    for job_id in ids:
        with database.transaction() as session:
            leases.claim_job(
                session, job_id=job_id, worker="bench", device="cpu", lease_seconds=3600
            )
    return ids


def _ingest(database: Database, job_id: str, rows: int, batch: int) -> float:
    """Rows per second writing `rows` loss values in transactions of `batch` rows."""
    values = [(step, "loss", 1.0 / (step + 1)) for step in range(rows)]
    started = time.perf_counter()
    for offset in range(0, rows, batch):
        with database.transaction() as session:
            series.write_metrics(
                session, job_id=job_id, attempt=1, rows=values[offset : offset + batch]
            )
    return rows / (time.perf_counter() - started)


def _vacuum(url: str) -> None:
    """What autovacuum does to a finished job's rows: sets the visibility map (index-only reads)."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE metric_chunks")


def run(database: Database, url: str) -> None:
    batched_job, single_job, read_job = _running_jobs(database, 3)
    batched = _ingest(database, batched_job, rows=STEPS, batch=1000)
    single = _ingest(database, single_job, rows=2000, batch=1)
    print(f"ingest, 1000-row batches  : {batched:10,.0f} rows/s")
    print(f"ingest, one row per commit: {single:10,.0f} rows/s   ({batched / single:.0f}x slower)")

    rows = [(step, "loss", 1.0 + (step % 97) / 97) for step in range(STEPS)]
    rows[54_321] = (54_321, "loss", 1e6)  # a spike the downsampled series must keep
    for offset in range(0, STEPS, 5000):
        batch = rows[offset : offset + 5000]
        with database.transaction() as session:
            series.write_metrics(session, job_id=read_job, attempt=1, rows=batch)
    _vacuum(url)

    def query(max_points: int) -> Callable[[], object]:
        def once() -> object:
            with database.read() as session:
                return series.query_series(
                    session, job_id=read_job, names=["loss"], max_points=max_points
                )
        return once

    (downsampled,) = query(1000)()  # type: ignore[misc]
    assert 1e6 in downsampled.values
    sampled_ms = _p50_ms(query(1000))
    raw_ms = _p50_ms(query(STEPS))
    print(f"query {STEPS:,} steps, max_points=1000: p50 {sampled_ms:7.1f} ms "
          f"({len(downsampled.steps)} points, spike kept)")
    print(f"query {STEPS:,} steps, raw            : p50 {raw_ms:7.1f} ms")
    print(f"downsampled / raw time ratio         : {sampled_ms / raw_ms:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="maintenance database of the server to benchmark")
    admin = make_url(parser.parse_args().pg)
    admin_dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"gradlab_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = admin.set(database=name).render_as_string(hide_password=False)
    try:
        settings = Settings(home=f"/tmp/{name}", database_url=url, _env_file=None)
        migrate.upgrade(settings)
        database = Database.from_settings(settings)
        try:
            run(database, settings.database_url)
        finally:
            database.close()
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
