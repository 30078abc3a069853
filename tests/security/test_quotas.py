"""OWASP API4 (unrestricted resource consumption): a team's queued and running jobs are capped,
and the caps hold when requests and workers race: N submits at once against the real app leave
exactly max_queued jobs; N workers claiming at once start at most max_running."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from celery import Celery
from fastapi.testclient import TestClient
from gradlab_contract.spec import JobSpec
from httpx import Response
from sqlalchemy import select, update

from service import create_app
from store import jobs, leases, orm, teams
from store.db import Database
from store.errors import QuotaExceeded
from store.settings import Settings
from tests.service.support import BOTH_BACKENDS, SPIRAL, count_rows

RACERS = 16
MAX_QUEUED = 5
MAX_RUNNING = 3


def _at_once(count: int, call: Callable[[int], object]) -> list[object]:
    """Run call(0..count-1) on `count` threads released together, collecting results or errors."""
    start = threading.Barrier(count)

    def run(index: int) -> object:
        start.wait()
        try:
            return call(index)
        except Exception as error:
            return error

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


@BOTH_BACKENDS
def test_racing_submits_leave_exactly_max_queued_jobs(
    app_settings: Settings, celery_app: Celery, auth: dict[str, str], database: Database,
    published: Callable[[], list[str]],
) -> None:
    settings = app_settings.model_copy(update={"max_queued_jobs_per_team": MAX_QUEUED})
    with TestClient(create_app(settings, celery_app=celery_app)) as client:
        results = _at_once(RACERS, lambda index: client.post(
            "/v1/jobs", json={**SPIRAL, "name": f"race-{index}"}, headers=auth))
    responses = [result for result in results if isinstance(result, Response)]
    assert len(responses) == RACERS, results
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * MAX_QUEUED + [429] * (RACERS - MAX_QUEUED)
    for refused in (r for r in responses if r.status_code == 429):
        assert refused.json()["code"] == "quota_exceeded"
        assert refused.headers["retry-after"] == "30"
    assert count_rows(database, "jobs") == MAX_QUEUED
    assert len(published()) == MAX_QUEUED


def _team_with_jobs(database: Database, name: str, count: int) -> list[str]:
    spec = JobSpec.model_validate(SPIRAL)
    with database.transaction() as session:
        team = teams.create_team(session, name=name)
        return [jobs.create_job(session, team_id=team.id, spec=spec, total_steps=20).job.id
                for _ in range(count)]


def _claim(database: Database, job_id: str, max_running: int | None = MAX_RUNNING) -> int | None:
    with database.transaction() as session:
        return leases.claim_job(session, job_id=job_id, worker="w", device="cpu",
                                lease_seconds=60, max_running=max_running)


@BOTH_BACKENDS
def test_racing_claims_start_at_most_max_running_jobs_of_a_team(database: Database) -> None:
    job_ids = _team_with_jobs(database, "acme", RACERS)
    others = _team_with_jobs(database, "globex", 1)
    results = _at_once(RACERS, lambda index: _claim(database, job_ids[index]))
    assert sum(isinstance(result, int) for result in results) == MAX_RUNNING, results
    assert sum(isinstance(result, QuotaExceeded) for result in results) == RACERS - MAX_RUNNING
    with database.read() as session:
        rows = session.execute(select(orm.Job.status, orm.Job.attempt, orm.Job.worker)
                               .where(orm.Job.id.in_(job_ids))).all()
    waiting = [row for row in rows if row.status == "queued"]
    assert len(waiting) == RACERS - MAX_RUNNING
    assert all(row.attempt == 0 and row.worker is None for row in waiting)  # untouched
    assert _claim(database, others[0]) == 1  # another team's jobs are not held up


def test_a_job_over_the_running_quota_is_claimed_once_a_slot_frees(database: Database) -> None:
    first, second = _team_with_jobs(database, "acme", 2)
    assert _claim(database, first, max_running=1) == 1
    with pytest.raises(QuotaExceeded):
        _claim(database, second, max_running=1)
    with database.transaction() as session:
        leases.finish_job(session, job_id=first, attempt=1, status="succeeded")
    assert _claim(database, second, max_running=1) == 1


def test_without_a_quota_a_claim_is_what_it_was(database: Database) -> None:
    job_ids = _team_with_jobs(database, "acme", MAX_RUNNING + 2)
    assert [_claim(database, job_id, max_running=None) for job_id in job_ids] == [1] * len(
        job_ids)


def test_the_worker_leaves_an_over_quota_job_queued_and_restarts_its_republish_clock(
    database: Database, db_settings: Settings, celery_app: Celery,
) -> None:
    """worker/tasks.py retries the task after a pause; the runner's part is to change nothing
    but enqueued_at, so the reconciler does not also re-send it."""
    from worker.context import WorkerContext
    from worker.runner import Outcome, run_job

    running, waiting = _team_with_jobs(database, "acme", 2)
    long_ago = orm.utcnow() - timedelta(hours=1)
    with database.transaction() as session:
        session.execute(update(orm.Job).values(enqueued_at=long_ago))
    settings = db_settings.model_copy(update={"max_running_jobs_per_team": 1})
    assert _claim(database, running, max_running=1) == 1
    context = WorkerContext(settings=settings, database=database, celery=celery_app)
    assert run_job(context, waiting) == Outcome.OVER_QUOTA
    with database.read() as session:
        row = session.get(orm.Job, waiting)
        assert row is not None and (row.status, row.attempt) == ("queued", 0)
        assert row.enqueued_at > long_ago
        assert leases.queued_jobs_older_than(session, seconds=60) == []
