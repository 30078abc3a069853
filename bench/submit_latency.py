"""Submit-to-running latency on an idle worker, on both backends.

For each backend: a fresh database, a real worker process, the real app in process; N tiny jobs
are submitted one at a time, each after the previous one finished and the worker went idle. The
latency is the job's started_at (set when a worker claims it) minus its created_at (set when
the API commits it). Target: median <= 1 s.

    .venv/bin/python bench/submit_latency.py [--jobs 15] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import psycopg
import redis
from fastapi.testclient import TestClient

from service.app import create_app
from store import migrate, teams
from store.db import Database
from store.settings import Settings

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/12"
SPEC = {"data": {"dataset": "spiral", "options": {"points": 50}}, "training": {"steps": 5}}


def backend_urls(backend: str, home: Path) -> tuple[str, str, str | None]:
    if backend == "sqlite":
        return f"sqlite:///{home / 'gradlab.db'}", "filesystem://", None
    name = f"gradlab_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    redis.Redis.from_url(REDIS).flushdb()
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", REDIS, name


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "gradlab_server.cli", "worker"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    while b" ready." not in log.read_bytes():
        if process.poll() is not None:
            raise SystemExit(log.read_text()[-3000:])
        time.sleep(0.1)
    return process


def measure(backend: str, jobs: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        database_url, broker_url, pg_name = backend_urls(backend, home)
        settings = Settings(
            home=home, database_url=database_url, broker_url=broker_url, _env_file=None
        )
        settings.ensure_directories()
        migrate.upgrade(settings)
        database = Database.from_settings(settings)
        with database.transaction() as session:
            key = teams.create_api_key(session, team_id=teams.create_team(session, name="bench").id)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRADLAB_")}
        env.update(
            GRADLAB_HOME=str(home), GRADLAB_DATABASE_URL=database_url, GRADLAB_BROKER_URL=broker_url
        )
        worker = start_worker(env, home / "worker.log")
        try:
            with TestClient(
                create_app(settings), headers={"Authorization": f"Bearer {key}"}
            ) as client:
                return [one_job(client) for _ in range(jobs)]
        finally:
            worker.terminate()
            worker.wait(30)
            database.close()
            if pg_name:
                with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
                    connection.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def one_job(client: TestClient) -> float:
    job = client.post("/v1/jobs", json=SPEC).json()
    while (job := client.get(f"/v1/jobs/{job['id']}").json())["status"] in ("queued", "running"):
        time.sleep(0.05)
    time.sleep(1.0)  # let the pool replace its child: the next job meets an idle worker
    started, created = (datetime.fromisoformat(job[key]) for key in ("started_at", "created_at"))
    return (started - created).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=15)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    print(f"{'backend':<12}{'jobs':>6}{'median s':>10}{'p90 s':>8}{'max s':>8}{'target':>8}")
    for backend in args.backends.split(","):
        latencies = sorted(measure(backend, args.jobs))
        median = statistics.median(latencies)
        p90 = latencies[int(0.9 * (len(latencies) - 1))]
        verdict = "ok" if median <= 1.0 else "MISSED"
        print(
            f"{backend:<12}{len(latencies):>6}{median:>10.3f}{p90:>8.3f}{latencies[-1]:>8.3f}{verdict:>8}"
        )


if __name__ == "__main__":
    main()
