"""The API against its own OpenAPI document, with schemathesis in process (over ASGI): every
phase the CLI runs (examples, coverage, fuzzing, stateful through the document's links), every
check, positive and negative data, authenticated with a real key, on a migrated database (SQLite;
PostgreSQL too where it runs) and a filesystem broker, with a job and a study that recorded real
data so the id routes answer 200. About 25 s a backend (MAX_EXAMPLES).

The engine is driven directly, as `schemathesis run` does: schemathesis' pytest integration for
a schema built in a fixture (schemathesis.pytest.from_fixture) does not run on pytest 9.

One check is refined rather than dropped: positive_data_acceptance says that a request the schema
allows must be accepted, but JSON Schema cannot say everything the API checks (a data set is a
built-in name or `upload:<id>`, a model kind must fit the data, a cursor is opaque, an upload
must be an .npz). Such a request may be refused with a 422 problem that names the offending field
and a validation code; anything else still fails the built-in check.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from celery import Celery
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis.checks import CHECKS
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events
from schemathesis.specs.openapi.checks import positive_data_acceptance

from service import create_app
from store import findings, leases, series, snapshots
from store.db import Database
from store.settings import Settings
from tests.service.support import BOTH_BACKENDS, PROBLEM_JSON, SPIRAL

# Problem codes of input the schema allows but the API refuses on its meaning.
SEMANTIC_CODES = {"invalid_request", "invalid_input", "invalid_spec", "invalid_upload",
                  "limit_exceeded"}
MAX_EXAMPLES = 15


def semantic_positive_data_acceptance(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code == 422 and PROBLEM_JSON in response.headers.get(
            "content-type", [""])[0]:
        problem = response.json()
        if problem.get("field") and problem.get("code") in SEMANTIC_CODES:
            return None
    result: bool | None = positive_data_acceptance(ctx, response, case)
    return result


# The engine runs the checks of schemathesis' registry; registering twice (this module imported
# under two names) is an error there.
if semantic_positive_data_acceptance.__name__ not in CHECKS.get_all_names():
    schemathesis.check(semantic_positive_data_acceptance)


@pytest.fixture
def api(app_settings: Settings, celery_app: Celery) -> Iterator[FastAPI]:
    # Generous limits: schemathesis sends hundreds of requests and jobs; quotas and the rate
    # limit have tests of their own.
    app = create_app(app_settings.model_copy(update={
        "rate_limit_per_minute": 1_000_000, "max_queued_jobs_per_team": 1_000_000}),
        celery_app=celery_app)
    with TestClient(app):  # runs the lifespan, as a server would
        yield app


def _failures(stream: Any) -> tuple[list[str], list[str]]:
    """(check failures, engine errors) of a run, as readable lines."""
    failures, errors = [], []
    for event in stream:
        if isinstance(event, events.ScenarioFinished):
            for checks in event.recorder.checks.values():
                failures += [f"{event.label}: {check.name}: {check.failure_info.failure.title}"
                             f"\n{check.failure_info.failure.message}\n{check.failure_info.code_sample}"
                             for check in checks
                             if check.status == Status.FAILURE and check.failure_info]
        elif isinstance(event, events.NonFatalError | events.FatalError):
            errors.append(f"{getattr(event, 'label', '')}: {event.info.format()}")
    return sorted(set(failures)), errors


def _seed(api: FastAPI, key: str, database: Database) -> dict[str, str]:
    """A job that recorded everything a job can (metrics, layers, snapshots with non-finite
    numbers, findings, a diverged end) and a study, so that the id routes answer with real
    data to validate rather than 404."""
    with TestClient(api, headers={"Authorization": f"Bearer {key}"}) as client:
        job_id = client.post("/v1/jobs", json=SPIRAL).json()["id"]
        study = client.post("/v1/studies", json={
            "base": SPIRAL, "grid": {"model.activation": ["relu", "tanh"]}})
    with database.transaction() as session:
        attempt = leases.claim_job(session, job_id=job_id, worker="w", device="cpu",
                                   lease_seconds=60)
        assert attempt is not None
        series.write_metrics(session, job_id=job_id, attempt=attempt, rows=[
            (step, name, value) for step in range(0, 100, 10)
            for name, value in (("train_loss", 1 / (step + 1)), ("val_accuracy", math.nan))])
        snapshots.write_layers(session, job_id=job_id, attempt=attempt, layers=[
            {"name": "fc1", "type": "linear", "shape": [16, 2], "parameters": 48, "depth": 0}])
        snapshots.write_snapshots(session, job_id=job_id, attempt=attempt, snapshots=[
            {"step": 10, "kind": "gradient", "layer": "fc1", "depth": 0,
             "stats": {"mean": 0.5, "std": math.inf},
             "histogram": {"edges": [0.0, 0.5, 1.0], "counts": [3, 4]},
             "log_histogram": {"edges": [-3.0, -2.0], "counts": [7]}}])
        findings.replace_findings(session, job_id=job_id, attempt=attempt, final=True, findings=[
            {"code": "symmetry", "severity": "error", "layer": "fc1", "step": 20,
             "title": "identical units", "detail": "zeros init", "evidence": {"std": 0.0},
             "remedy": {"model.init.scheme": "kaiming_normal"}}])
        leases.finish_job(session, job_id=job_id, attempt=attempt, status="diverged",
                          summary={"final_train_loss": math.nan}, error="non-finite loss")
    ids = {"path.job_id": job_id}
    if study.status_code == 201:  # studies are optional: the route may not exist yet
        ids["path.study_id"] = study.json()["id"]
    return ids


@BOTH_BACKENDS  # PostgreSQL refuses values SQLite takes (NUL characters, 64-bit steps)
def test_the_api_conforms_to_its_document(api: FastAPI, key: str, database: Database) -> None:
    config = SchemathesisConfig.from_dict({
        "headers": {"Authorization": f"Bearer {key}"},
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES},
        "checks": {"positive_data_acceptance": {"enabled": False}},
        "parameters": _seed(api, key, database),
        "seed": 1,
    })
    schema = schemathesis.openapi.from_asgi("/openapi.json", api, config=config)
    failures, errors = _failures(schemathesis.engine.from_schema(schema).execute())
    assert errors == []
    assert failures == [], "\n\n".join(failures)
