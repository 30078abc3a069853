"""Fixtures of the SDK and CLI tests: the real app in process, on a migrated SQLite database
(tests/conftest.py's db_settings and database), reached through FastAPI's TestClient, which is an
httpx.Client and so can be handed to the SDK as its `http_client`.

    app           service.create_app on small caps, publishing to a filesystem broker
    test_client   a TestClient inside the app's lifespan
    api_key       a key of team "acme"; other_key one of team "globex"
    spiral        a small valid spec (a fresh dict each time)
    sdk           a gradlab_client.Client for api_key on test_client; retries sleep no time
    finish        finish(job_id, status, ...) drives a queued job to an end as a worker would
    record        record(job_id) claims a job and writes metrics, layers and snapshots
    gradlab       gradlab(*args, key=None) runs the CLI on test_client: (exit code, stdout, stderr)

There is no worker: jobs stay queued unless a test moves them through the store.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from gradlab_client import Client
from gradlab_client.cli import main

from service import create_app
from store import leases, series, snapshots, teams
from store.db import Database
from store.settings import Settings, filesystem_broker_options
from taskqueue import make_celery

with warnings.catch_warnings():
    # Starlette would rather have httpx2; the TestClient works the same on httpx.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

BASE_URL = "http://testserver"
QUEUED_QUOTA = 8
SPIRAL: dict[str, Any] = {"name": "tiny", "data": {"dataset": "spiral"},
                          "model": {"hidden": [8]}, "training": {"steps": 20}}


@pytest.fixture
def db_backend() -> str:
    """SQLite only: the SDK's behaviour does not depend on the database behind the API."""
    return "sqlite"


@pytest.fixture
def app(db_settings: Settings, tmp_path: Path) -> FastAPI:
    settings = db_settings.model_copy(update={
        "max_parameters": 100_000, "max_steps": 10_000, "max_upload_bytes": 64 * 1024,
        "max_queued_jobs_per_team": QUEUED_QUOTA,
    })
    celery = make_celery("filesystem://", queue="gradlab",
                         transport_options=filesystem_broker_options(tmp_path / "broker"))
    return create_app(settings, celery_app=celery)


@pytest.fixture
def spiral() -> dict[str, Any]:
    return copy.deepcopy(SPIRAL)


@pytest.fixture
def test_client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url=BASE_URL) as client:
        yield client


def new_key(database: Database, team: str) -> str:
    with database.transaction() as session:
        team_id = teams.create_team(session, name=team).id
        return teams.create_api_key(session, team_id=team_id)


@pytest.fixture
def api_key(database: Database) -> str:
    return new_key(database, "acme")


@pytest.fixture
def other_key(database: Database) -> str:
    return new_key(database, "globex")


@pytest.fixture
def sdk(test_client: TestClient, api_key: str) -> Iterator[Client]:
    with Client(base_url=BASE_URL, api_key=api_key, http_client=test_client) as client:
        client._http.sleep = lambda seconds: None  # retry without waiting
        yield client


@pytest.fixture
def claim(database: Database) -> Callable[[str], int]:
    def claim_(job_id: str) -> int:
        with database.transaction() as session:
            attempt = leases.claim_job(session, job_id=job_id, worker="test-worker",
                                       device="cpu", lease_seconds=60)
        assert attempt is not None, f"job {job_id} was not queued"
        return attempt

    return claim_


Finish = Callable[..., None]


@pytest.fixture
def finish(database: Database, claim: Callable[[str], int]) -> Finish:
    """Claim a queued job and end it, as a worker would (store.leases.finish_job)."""

    def finish_(job_id: str, status: str = "succeeded", **values: Any) -> None:
        attempt = claim(job_id)
        with database.transaction() as session:
            leases.finish_job(session, job_id=job_id, attempt=attempt, status=status, **values)

    return finish_


def snapshot_of(step: int, layer: str, depth: int, kind: str = "gradient") -> dict[str, Any]:
    return {
        "step": step, "kind": kind, "layer": layer, "depth": depth,
        "stats": {"mean": 0.01 * step, "std": 1.0, "min": -2.0, "max": 2.0},
        "histogram": {"edges": [-2.0, 0.0, 2.0], "counts": [3, 5]},
        "log_histogram": {"edges": [-3.0, -1.0, 1.0], "counts": [2, 6]},
    }


LAYERS = [
    {"name": "fc1", "type": "linear", "shape": [8, 2], "parameters": 24, "depth": 0},
    {"name": "out", "type": "linear", "shape": [3, 8], "parameters": 27, "depth": 1},
]


@pytest.fixture
def record(database: Database, claim: Callable[[str], int]) -> Callable[[str], int]:
    """Claim a job and write what a worker records: train_loss at steps 0..9, val_accuracy at
    even steps, the layers, and gradient and weight snapshots of both layers at steps 0 and 5;
    returns the attempt."""

    def record_(job_id: str) -> int:
        attempt = claim(job_id)
        rows = [(step, "train_loss", 1.0 / (step + 1)) for step in range(10)]
        rows += [(step, "val_accuracy", 0.1 * step) for step in range(0, 10, 2)]
        shots = [snapshot_of(step, layer["name"], layer["depth"], kind)
                 for step in (0, 5) for kind in ("gradient", "weight") for layer in LAYERS]
        with database.transaction() as session:
            series.write_metrics(session, job_id=job_id, attempt=attempt, rows=rows)
            snapshots.write_layers(session, job_id=job_id, attempt=attempt, layers=LAYERS)
            snapshots.write_snapshots(session, job_id=job_id, attempt=attempt, snapshots=shots)
        return attempt

    return record_


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def gradlab(
    test_client: TestClient, api_key: str, capsys: pytest.CaptureFixture[str]
) -> Run:
    """gradlab(*args) -> (exit code, stdout, stderr), as team acme on the in-process app."""

    def run(*args: str, key: str | None = None) -> tuple[int, str, str]:
        capsys.readouterr()
        argv = ["--url", str(test_client.base_url), "--api-key", key or api_key, *args]
        code = main(argv, http_client=test_client)
        out, err = capsys.readouterr()
        return code, out, err

    return run
