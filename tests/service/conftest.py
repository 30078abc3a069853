"""Fixtures of the API tests: the real app on a migrated database, a real Celery app on the
filesystem transport, teams with keys, and a worker's side of a job.

db_backend is SQLite only here; a test that should also run on PostgreSQL says so with
@support.BOTH_BACKENDS.

    broker_dir    the filesystem broker's folder under tmp_path
    celery_app    a Celery app publishing there (taskqueue.make_celery)
    app_settings  db_settings with small caps, so tests can exceed them cheaply
    pg_app_settings  settings on a migrated PostgreSQL database of this test alone, for tests
                  that break the database (the db_settings one is shared by the session)
    app           create_app(app_settings, celery_app=celery_app)
    client        a TestClient inside the app's lifespan (no key)
    key, other_key  API keys of team "acme" and team "globex"
    auth          headers with `key`
    submit        submit(**spec overrides) -> the created job's JSON
    published     published() -> the job ids the broker holds, in publish order
    claim         claim(job_id) -> attempt: a worker takes the job, as store.leases does
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service import create_app
from store import leases, migrate, teams
from store.db import Database
from store.settings import Settings, filesystem_broker_options
from taskqueue import make_celery
from tests.service.support import SPIRAL, JsonDict, published_ids


@pytest.fixture
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def broker_dir(tmp_path: Path) -> Path:
    return tmp_path / "broker"


@pytest.fixture
def celery_app(broker_dir: Path) -> Celery:
    return make_celery("filesystem://", queue="gradlab",
                       transport_options=filesystem_broker_options(broker_dir))


@pytest.fixture
def app_settings(db_settings: Settings) -> Settings:
    return db_settings.model_copy(update={
        "max_parameters": 100_000, "max_steps": 10_000, "max_batch_size": 512, "max_bins": 128,
        "max_upload_bytes": 256 * 1024, "max_queued_jobs_per_team": 20,
        # A TestClient reads a response to its end: event streams of live jobs end quickly.
        "event_stream_seconds": 0.5, "event_poll_seconds": 0.1,
    })


@pytest.fixture
def pg_app_settings(pg_url: str, settings: Settings) -> Settings:
    pg_settings = Settings(home=settings.home, database_url=pg_url, _env_file=None)
    migrate.upgrade(pg_settings)
    return pg_settings


@pytest.fixture
def app(app_settings: Settings, celery_app: Celery) -> FastAPI:
    return create_app(app_settings, celery_app=celery_app)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def _new_key(database: Database, name: str) -> str:
    with database.transaction() as session:
        team = teams.create_team(session, name=name)
        return teams.create_api_key(session, team_id=team.id)


@pytest.fixture
def key(database: Database) -> str:
    return _new_key(database, "acme")


@pytest.fixture
def other_key(database: Database) -> str:
    return _new_key(database, "globex")


@pytest.fixture
def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def submit(client: TestClient, auth: dict[str, str]) -> Callable[..., JsonDict]:
    def submit_(**overrides: Any) -> JsonDict:
        response = client.post("/v1/jobs", json={**SPIRAL, **overrides}, headers=auth)
        assert response.status_code == 201, response.text
        body: JsonDict = response.json()
        return body

    return submit_


@pytest.fixture
def published(broker_dir: Path) -> Callable[[], list[str]]:
    return lambda: published_ids(broker_dir)


@pytest.fixture
def claim(database: Database) -> Callable[[str], int]:
    def claim_(job_id: str) -> int:
        with database.transaction() as session:
            attempt = leases.claim_job(session, job_id=job_id, worker="w1", device="cpu",
                                       lease_seconds=60)
        assert attempt is not None
        return attempt

    return claim_
