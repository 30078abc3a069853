"""A real stack for integration tests: a migrated database, a real broker, a real worker process
(`gradlab-server worker`, as production runs it) and the real app in process.

`stack` is parametrized over the two backends: SQLite + kombu's filesystem transport (the
embedded default), and PostgreSQL + Redis. One stack serves a whole test module (a worker takes
seconds to start); the tests in it make their own jobs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from store import migrate, teams
from store.db import Database
from store.settings import Settings
from tests.conftest import REDIS_URL, create_pg_database, drop_pg_database, unavailable

FAST_LEASES = {
    "GRADLAB_HEARTBEAT_SECONDS": "0.5",
    "GRADLAB_LEASE_SECONDS": "5",
    "GRADLAB_REAPER_INTERVAL_SECONDS": "1",
}
INTEGRATION_REDIS_DB = 13  # conftest's redis_url uses 15 and below per xdist worker


@dataclass
class Stack:
    backend: str
    settings: Settings
    env: dict[str, str]
    client: TestClient
    database: Database
    worker: subprocess.Popen[bytes]
    worker_log: Path

    def submit(self, spec: dict[str, Any], **headers: str) -> dict[str, Any]:
        response = self.client.post("/v1/jobs", json=spec, headers=headers)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    def get(self, job_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_for(
        self, job_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 90
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(job_id)
            if done(job):
                return job
            assert self.worker.poll() is None, self.log_tail()
            time.sleep(0.1)
        raise AssertionError(
            f"job {job_id} stuck at {self.get(job_id)['status']}\n{self.log_tail()}"
        )

    def log_tail(self) -> str:
        return self.worker_log.read_text()[-4000:] if self.worker_log.exists() else ""


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gradlab_server.cli", "worker"],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if b" ready." in log.read_bytes():
            return process
        if process.poll() is not None:
            raise AssertionError(
                f"worker exited with {process.returncode}:\n{log.read_text()[-4000:]}"
            )
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"worker did not become ready:\n{log.read_text()[-4000:]}")


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _backend_urls(backend: str, home: Path, request: pytest.FixtureRequest) -> tuple[str, str]:
    if backend == "sqlite":
        return f"sqlite:///{home / 'gradlab.db'}", "filesystem://"
    import redis

    admin = request.getfixturevalue("pg_admin_url")
    database_url = create_pg_database(admin)
    request.addfinalizer(lambda: drop_pg_database(admin, database_url))
    broker_url = f"{REDIS_URL.rstrip('/')}/{INTEGRATION_REDIS_DB}"
    client = redis.Redis.from_url(broker_url, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.RedisError as error:
        unavailable(f"Redis is not reachable at {REDIS_URL}: {error}")
    request.addfinalizer(client.flushdb)
    return database_url, broker_url


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)],
)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    from service.app import create_app

    home = tmp_path_factory.mktemp(f"stack-{request.param}")
    database_url, broker_url = _backend_urls(request.param, home, request)
    queue = f"gradlab-test-{uuid.uuid4().hex[:8]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GRADLAB_")},
        "GRADLAB_HOME": str(home),
        "GRADLAB_DATABASE_URL": database_url,
        "GRADLAB_BROKER_URL": broker_url,
        "GRADLAB_TASK_QUEUE": queue,
        # Webhook tests deliver to a receiver on 127.0.0.1 (refused by default: SSRF).
        "GRADLAB_WEBHOOKS_ALLOW_PRIVATE": "true",
        **FAST_LEASES,
    }
    settings = Settings(
        home=home,
        database_url=database_url,
        broker_url=broker_url,
        task_queue=queue,
        heartbeat_seconds=0.5,
        lease_seconds=5,
        reaper_interval_seconds=1,
        _env_file=None,
    )
    settings.ensure_directories()
    migrate.upgrade(settings)
    database = Database.from_settings(settings)
    with database.transaction() as session:
        team = teams.create_team(session, name="integration")
        key = teams.create_api_key(session, team_id=team.id)
    log = home / "worker.log"
    worker = start_worker(env, log)
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {key}"}) as client:
        yield Stack(request.param, settings, env, client, database, worker, log)
    stop_worker(worker)
    database.close()
