"""Metric reads over HTTP right after a long job ends, and ingestion, on both backends.

    .venv/bin/python bench/query_latency.py [--steps 1000000] [--backends sqlite,postgresql]

For each backend: a fresh database (SQLite file, or a new PostgreSQL database dropped at the
end), migrated; the real API (`gradlab-server api`, uvicorn) in its own process; one job whose
series a worker would write, written through the store's real write path (claim, then fenced
`series.write_metrics` transactions of BATCH_STEPS steps, as the worker's reporter flushes):
three per-step series (train_loss, train_accuracy, lr) and six every EVAL_EVERY steps, nine in
all. The job is then finished and, at once (no VACUUM, no warm-up request), read over HTTP:

- one series, 1000 of its points (`/metrics?names=train_loss&max_points=1000`): p50 <= 15 ms;
- every series of the job, 1000 points each (`/metrics?max_points=1000`): p50 <= 50 ms;
- the whole per-step series streamed (`/metrics/train_loss/points`, parsed): p50 <= 1 s;
- ingestion of the job's points into PostgreSQL from one writer: >= 200,000 points/s.

The first request's time is printed beside each p50: that is what a user who opens the job as
it ends waits for. The p50 of `GET /v1/jobs/{id}` is printed as the floor every job route pays
on this machine (authentication, the job's row, JSON), to read the others against. Figures
only, no assertions: they depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
import psycopg
from gradlab_contract.spec import JobSpec

from store import jobs, leases, migrate, series, teams
from store.db import Database
from store.settings import Settings

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
BATCH_STEPS = 2000  # steps per write transaction (a reporter flush of ~2 s at 1000 steps/s)
EVAL_EVERY = 100
PER_STEP = ("train_loss", "train_accuracy", "lr")
PER_EVAL = ("val_loss", "val_accuracy", "ratio_fc1", "ratio_fc2", "ratio_fc3", "grad_norm")
TARGETS = {"one": 15.0, "all": 50.0, "stream": 1000.0, "ingest": 200_000.0}


def series_rows(first: int, last: int, total: int) -> list[tuple[int, str, float]]:
    """The points a run of `total` steps records between two steps: a noisy falling loss with
    one spike, a rising accuracy, a cosine learning rate, and evaluation series."""
    rows: list[tuple[int, str, float]] = []
    for step in range(first, last):
        noise = math.sin(step * 12.9898) * 0.05
        loss = 2.3 * math.exp(-step / (total / 5)) + 0.1 + noise
        rows.append((step, "train_loss", 50.0 if step == total * 2 // 3 else loss))
        rows.append((step, "train_accuracy", 1 - loss / 2.5))
        rows.append((step, "lr", 0.05 * (1 + math.cos(math.pi * step / total)) / 2))
        if step % EVAL_EVERY == 0:
            rows.extend((step, name, loss * (1 + i / 10)) for i, name in enumerate(PER_EVAL))
    return rows


def write_job(database: Database, steps: int) -> tuple[str, str, float, int]:
    """(job id, API key, points per second written, points written)."""
    spec = JobSpec.model_validate({"data": {"dataset": "spiral"}, "training": {"steps": steps}})
    with database.transaction() as session:
        team = teams.create_team(session, name="bench")
        key = teams.create_api_key(session, team_id=team.id)
        job_id = jobs.create_job(session, team_id=team.id, spec=spec, total_steps=steps).job.id
    with database.transaction() as session:
        attempt = leases.claim_job(session, job_id=job_id, worker="bench", device="cpu",
                                   lease_seconds=3600)
    assert attempt is not None
    batches = [series_rows(first, min(first + BATCH_STEPS, steps), steps)
               for first in range(0, steps, BATCH_STEPS)]  # made before the clock starts
    points = sum(len(batch) for batch in batches)
    started = time.perf_counter()
    for batch in batches:
        with database.transaction() as session:
            series.write_metrics(session, job_id=job_id, attempt=attempt, rows=batch)
    rate = points / (time.perf_counter() - started)
    with database.transaction() as session:
        leases.finish_job(session, job_id=job_id, attempt=attempt, status="succeeded")
    return job_id, key, rate, points


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def api_process(settings: Settings, home: Path) -> Iterator[str]:
    """The real API in its own process; yields its base URL once /healthz answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADLAB_")}
    env.update(GRADLAB_HOME=str(home), GRADLAB_DATABASE_URL=settings.database_url,
               GRADLAB_PORT=str(port), GRADLAB_LOG_LEVEL="WARNING",
               GRADLAB_RATE_LIMIT_PER_MINUTE="100000000")  # the bench is one key's burst
    log = (home / "api.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "gradlab_server.cli", "api"], env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit((home / "api.log").read_text()[-3000:])
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def timed(call: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(first call's ms, p50 ms of the `repeats` calls after it)."""
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times[0], statistics.median(times[1:])


def read_figures(base: str, key: str, job_id: str, steps: int) -> dict[str, tuple[float, float]]:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"},
                      timeout=60) as client:
        url = f"/v1/jobs/{job_id}/metrics"

        def one() -> None:
            response = client.get(url, params={"names": "train_loss", "max_points": 1000})
            response.raise_for_status()
            (found,) = response.json()["series"]
            assert 900 <= len(found["steps"]) <= 1000 and 50.0 in found["values"], "spike lost"

        def every() -> None:
            response = client.get(url, params={"max_points": 1000})
            response.raise_for_status()
            assert len(response.json()["series"]) == len(PER_STEP) + len(PER_EVAL)

        def stream() -> None:
            count = 0
            with client.stream("GET", f"{url}/train_loss/points") as response:
                response.raise_for_status()
                for line in response.iter_lines():
                    count += len(orjson.loads(line)["steps"])
            assert count == steps, count

        def floor() -> None:  # auth, the job's row, JSON: what every job route pays
            client.get(f"/v1/jobs/{job_id}").raise_for_status()

        return {"one": timed(one, 50), "all": timed(every, 20), "stream": timed(stream, 5),
                "floor": timed(floor, 50)}


def backend(name: str, home: Path) -> tuple[Settings, str | None]:
    if name == "sqlite":
        return Settings(home=home, database_url=f"sqlite:///{home / 'gradlab.db'}",
                        _env_file=None), None
    database = f"gradlab_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{database}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
    return Settings(home=home, database_url=url, _env_file=None), database


def measure(name: str, steps: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        settings, pg_database = backend(name, home)
        try:
            settings.ensure_directories()
            migrate.upgrade(settings)
            database = Database.from_settings(settings)
            try:
                with api_process(settings, home) as base:
                    job_id, key, rate, points = write_job(database, steps)
                    figures = read_figures(base, key, job_id, steps)
            finally:
                database.close()
        finally:
            if pg_database is not None:
                with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
                    connection.execute(f'DROP DATABASE IF EXISTS "{pg_database}" WITH (FORCE)')
    report(name, steps, figures, rate, points)


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def report(name: str, steps: int, figures: dict[str, tuple[float, float]], rate: float,
           points: int) -> None:
    labels = {"one": f"one series, 1000 of {steps:,} points",
              "all": f"all {len(PER_STEP) + len(PER_EVAL)} series, 1000 points each",
              "stream": f"one series, all {steps:,} points streamed"}
    print(f"\n== {name} ==")
    for key, label in labels.items():
        first, p50 = figures[key]
        print(f"{label:<42} p50 {p50:8.1f} ms  (first request {first:7.1f} ms)  "
              f"target <= {TARGETS[key]:,.0f} ms: {verdict(p50 <= TARGETS[key])}")
    first, p50 = figures["floor"]
    print(f"{'the floor: GET /v1/jobs/{id}, no series':<42} p50 {p50:8.1f} ms  "
          f"(first request {first:7.1f} ms)  no target: what any job route costs here")
    target = f"target >= {TARGETS['ingest']:,.0f}: {verdict(rate >= TARGETS['ingest'])}"
    print(f"{'ingestion, one writer, store level':<42} {rate:12,.0f} points/s ({points:,} points,"
          f" {BATCH_STEPS}-step transactions)  "
          + (target if name == "postgresql" else "(the target is PostgreSQL's)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min), cpus: {os.cpu_count()}")
    for name in args.backends.split(","):
        measure(name, args.steps)


if __name__ == "__main__":
    main()
