"""OWASP API4 (unrestricted resource consumption), one test per class of request that used to
make the service spend without bound. Each asserts the status, that the answer came without the
work (quickly, nothing created, no body read), and that the service still serves the next
request.

    study expansion     a study's size is refused by arithmetic before any variant is built
    per-job cost        rows, bytes, data memory and time estimated and refused over the caps
    uploads             test_hostile_uploads.py
    /metrics            unknown methods and paths add no series
    idempotency         a replay is found before the caps; /remedy keys are apart from /v1/jobs'
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from celery import Celery
from fastapi.testclient import TestClient

from service import create_app
from store import findings, leases
from store.db import Database
from store.settings import Settings
from tests.security.conftest import Snapshot
from tests.security.hostile import QUICK_SECONDS, refused, served_next
from tests.service.support import SPIRAL, JsonDict

# -- study expansion -----------------------------------------------------------------------------

STUDY_BASE = {"data": {"dataset": "spiral"}, "model": {"hidden": [8]}, "training": {"steps": 5}}


@pytest.mark.parametrize(("study", "field"), [
    ({"search": {"n": 100_000, "space": {"optimizer.lr": {"low": 1e-4, "high": 0.1}}}},
     "search.n"),
    ({"search": {"n": 10**9, "space": {"optimizer.lr": {"low": 1e-4, "high": 0.1}}}},
     "search.n"),
    ({"grid": {"optimizer.lr": [0.01] * 100, "training.batch_size": list(range(1, 101)),
               "training.seed": list(range(100))}}, "grid"),
], ids=["search-1e5", "search-1e9", "grid-1e6"])
def test_a_huge_study_is_refused_by_arithmetic(
    client: TestClient, auth: dict[str, str], snapshot: Callable[[], Snapshot],
    study: JsonDict, field: str,
) -> None:
    problem = refused(client, auth, "/v1/studies", {"base": STUDY_BASE, **study}, snapshot)
    assert problem["field"] == field


# -- per-job cost --------------------------------------------------------------------------------

DEEP_NARROW = {"data": {"dataset": "spiral"}, "model": {"hidden": [4] * 200},
               "training": {"steps": 10_000}, "telemetry": {"snapshot_every": 1, "bins": 128}}
CTR_HUGE = {"data": {"dataset": "ctr", "options": {"rows": 5_000_000, "fields": 64,
                                                   "cardinality": 2}},
            "model": {"kind": "embedding_mlp", "hidden": [8], "embedding_dim": 2},
            "training": {"steps": 10}}


@pytest.mark.parametrize(("spec", "caps", "field", "unit"), [
    (DEEP_NARROW, {}, "telemetry.snapshot_every", "snapshot rows"),
    ({**SPIRAL, "training": {"steps": 10_000}, "telemetry": {"bins": 128}},
     {"max_snapshot_bytes_per_job": 1_000_000}, "telemetry.bins", "bytes of snapshots"),
    ({**SPIRAL, "training": {"steps": 10_000, "eval_every": 1}},
     {"max_metric_rows_per_job": 50_000}, "training.steps", "metric rows"),
    (CTR_HUGE, {}, "data.options.rows", "bytes of data in memory"),
    ({**SPIRAL, "training": {"steps": 10_000}}, {"job_time_limit_seconds": 5.0},
     "training.steps", "seconds"),
], ids=["snapshot-rows", "snapshot-bytes", "metric-rows", "ctr-data", "time"])
def test_a_job_over_a_cost_cap_is_refused_with_its_estimate(
    app_settings: Settings, celery_app: Celery, auth: dict[str, str],
    snapshot: Callable[[], Snapshot], spec: JsonDict, caps: dict[str, Any], field: str,
    unit: str,
) -> None:
    settings = app_settings.model_copy(update=caps)
    with TestClient(create_app(settings, celery_app=celery_app)) as client:
        problem = refused(client, auth, "/v1/jobs", spec, snapshot)
    assert problem["code"] == "limit_exceeded"
    assert problem["field"] == field
    assert "estimated" in problem["detail"] and unit in problem["detail"], problem["detail"]


def test_the_issue_example_snapshot_flood_is_refused_under_the_default_caps(
    db_settings: Settings, celery_app: Celery, auth: dict[str, str],
    snapshot: Callable[[], Snapshot],
) -> None:
    """200 layers 4 wide, 1e6 steps, a snapshot every step with 512 bins: about 6e8 rows."""
    spec = {**DEEP_NARROW, "training": {"steps": 1_000_000},
            "telemetry": {"snapshot_every": 1, "bins": 512}}
    with TestClient(create_app(db_settings, celery_app=celery_app)) as client:
        problem = refused(client, auth, "/v1/jobs", spec, snapshot)
    assert problem["field"] == "telemetry.snapshot_every"
    assert "602," in problem["detail"], problem["detail"]  # ~6.02e8 rows, with its figure


# -- /metrics ------------------------------------------------------------------------------------


def _series(client: TestClient) -> list[str]:
    text = client.get("/metrics").text
    return [line for line in text.splitlines() if line.startswith("gradlab_http_requests_total")]


def test_made_up_methods_and_paths_add_no_metric_series(
    client: TestClient, auth: dict[str, str],
) -> None:
    client.get("/healthz")
    _series(client)  # the scrape's own series exists from here on
    for index in range(30):
        client.request(f"FOO{index}", "/v1/jobs")
        client.request(f"BAR{index}", f"/nothing/{index}")
        client.get(f"/nothing/{index}")
    series = _series(client)
    assert not any("FOO" in line or "BAR" in line or "/nothing" in line for line in series)
    assert any('method="other"' in line and 'route="unmatched"' in line for line in series)
    count = len(series)
    for index in range(30, 60):
        client.request(f"FOO{index}", "/v1/jobs")
        client.request(f"BAR{index}", f"/nothing/{index}")
    assert len(_series(client)) == count  # bounded: more tokens, no more series
    served_next(client, auth)


# -- idempotency ---------------------------------------------------------------------------------


def test_a_replay_is_answered_before_the_caps(
    app_settings: Settings, celery_app: Celery, auth: dict[str, str],
) -> None:
    """A request accepted once is answered the same way after the caps were lowered."""
    spec = {**SPIRAL, "training": {"steps": 500}}
    headers = {**auth, "Idempotency-Key": "nightly"}
    with TestClient(create_app(app_settings, celery_app=celery_app)) as client:
        first = client.post("/v1/jobs", json=spec, headers=headers)
    lowered = app_settings.model_copy(update={"max_steps": 100})
    with TestClient(create_app(lowered, celery_app=celery_app)) as client:
        started = time.process_time()
        again = client.post("/v1/jobs", json=spec, headers=headers)
        assert time.process_time() - started < QUICK_SECONDS
        assert (first.status_code, again.status_code) == (201, 200), again.text
        assert again.json()["id"] == first.json()["id"]
        fresh = client.post("/v1/jobs", json=spec, headers={**auth, "Idempotency-Key": "new"})
        assert fresh.status_code == 422  # the cap holds for anything new


@pytest.fixture
def diagnosed(database: Database, submit: Callable[..., JsonDict],
              claim: Callable[[str], int]) -> JsonDict:
    job = submit(model={"hidden": [16], "init": {"scheme": "zeros"}})
    attempt = claim(job["id"])
    finding = {"code": "symmetry", "severity": "error", "layer": "fc1", "step": 20,
               "title": "identical units", "detail": "zeros init", "evidence": {},
               "suggestion": "kaiming", "remedy": {"model.init.scheme": "kaiming_normal"}}
    with database.transaction() as session:
        findings.replace_findings(session, job_id=job["id"], attempt=attempt,
                                  findings=[finding], final=True)
        leases.finish_job(session, job_id=job["id"], attempt=attempt, status="succeeded")
    return job


def test_remedy_keys_are_apart_from_job_keys(
    client: TestClient, auth: dict[str, str], diagnosed: JsonDict,
) -> None:
    headers = {**auth, "Idempotency-Key": "shared-key"}
    job = client.post("/v1/jobs", json=SPIRAL, headers=headers)
    remedy = client.post(f"/v1/jobs/{diagnosed['id']}/remedy", json={"codes": ["symmetry"]},
                         headers=headers)
    assert (job.status_code, remedy.status_code) == (201, 201), remedy.text
    assert remedy.json()["id"] != job.json()["id"]
    assert remedy.json()["parent_id"] == diagnosed["id"]
    again = client.post(f"/v1/jobs/{diagnosed['id']}/remedy", json={"codes": ["symmetry"]},
                        headers=headers)
    assert (again.status_code, again.json()["id"]) == (200, remedy.json()["id"])


def test_the_request_hash_of_a_child_includes_its_parent(
    client: TestClient, auth: dict[str, str], database: Database,
    claim: Callable[[str], int], diagnosed: JsonDict,
) -> None:
    """The same key and codes on another parent is another request: 409, not the first child."""
    other = client.post("/v1/jobs", json={**SPIRAL, "model": {"hidden": [16], "init": {
        "scheme": "zeros"}}}, headers=auth).json()
    attempt = claim(other["id"])
    with database.transaction() as session:
        findings.replace_findings(session, job_id=other["id"], attempt=attempt, findings=[{
            "code": "symmetry", "severity": "error", "title": "t", "detail": "d",
            "evidence": {}, "remedy": {"model.init.scheme": "kaiming_normal"}}], final=True)
    headers = {**auth, "Idempotency-Key": "fix"}
    first = client.post(f"/v1/jobs/{diagnosed['id']}/remedy", json={"codes": ["symmetry"]},
                        headers=headers)
    second = client.post(f"/v1/jobs/{other['id']}/remedy", json={"codes": ["symmetry"]},
                         headers=headers)
    assert (first.status_code, second.status_code) == (201, 409), second.text
    served_next(client, auth)



# -- metric reads ----------------------------------------------------------------------------------


def test_a_metrics_read_is_bounded_in_series_and_points(
    app_settings: Settings, celery_app: Celery, auth: dict[str, str], database: Database,
    claim: Callable[[str], int],
) -> None:
    from store import series as metrics

    settings = app_settings.model_copy(update={"metrics_max_points_per_request": 300})
    with TestClient(create_app(settings, celery_app=celery_app)) as client:
        job = client.post("/v1/jobs", json=SPIRAL, headers=auth).json()
        attempt = claim(job["id"])
        with database.transaction() as session:
            metrics.write_metrics(session, job_id=job["id"], attempt=attempt, rows=[
                (step, name, float(step)) for step in range(1, 1001)
                for name in ("a", "b", "c")])
        url = f"/v1/jobs/{job['id']}/metrics"
        many = ",".join(f"n{index}" for index in range(501))
        started = time.process_time()
        refused = client.get(url, params={"names": many}, headers=auth)
        assert time.process_time() - started < QUICK_SECONDS
        assert (refused.status_code, refused.json()["field"]) == (422, "names")
        repeated = client.get(url, params={"names": ",".join(["a"] * 5000)}, headers=auth)
        assert [s["name"] for s in repeated.json()["series"]] == ["a"]  # one series, not 5000
        shared = client.get(url, params={"names": "a,b,c", "max_points": 100_000}, headers=auth)
        points = [len(series["steps"]) for series in shared.json()["series"]]
        assert len(points) == 3 and sum(points) <= 300, points
        served_next(client, auth)
