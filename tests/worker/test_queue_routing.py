"""A study's job is sent to the study queue every time it is sent, not only when it is made:
after its worker released it (shutdown), after its lease expired (reaper) and after the broker
lost it (reconciler). Otherwise a requeued study job would skip the turns workers take between
the two queues. Real database (both backends), real Redis broker, real Celery app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from celery import Celery
from gradlab_contract.spec import JobSpec

from store import jobs, leases, orm, studies, teams
from store.db import Database
from store.settings import Settings
from taskqueue import make_celery, queue_for
from tests.service.support import message_job_ids
from worker import runner, shutdown
from worker.checkpoints import CheckpointFiles
from worker.context import WorkerContext
from worker.reaper import reap_once

SPEC = JobSpec.model_validate({"data": {"dataset": "spiral"}, "training": {"steps": 100}})
LONG_AGO = timedelta(hours=1)


@pytest.fixture
def celery(redis_url: str, db_settings: Settings) -> Iterator[Celery]:
    app = make_celery(redis_url, queue=db_settings.task_queue)
    yield app
    app.close()


@pytest.fixture
def context(db_settings: Settings, database: Database, celery: Celery) -> WorkerContext:
    return WorkerContext(settings=db_settings, database=database, celery=celery)


@pytest.fixture
def two_jobs(database: Database) -> tuple[str, str]:
    """(a study's job, a single job), both queued, of one team."""
    with database.transaction() as session:
        team = teams.create_team(session, name="routing")
        study = studies.create_study(
            session, team_id=team.id, name="s", template=None, request={}, varied=[],
            variants=[{}], runs=[studies.NewRun(0, 0, SPEC, 100)],
        )
        single = jobs.create_job(session, team_id=team.id, spec=SPEC, total_steps=100)
    return study.job_ids[0], single.job.id


def queued_ids(redis_url: str, queue: str) -> set[str]:
    """The job ids waiting in a queue on Redis, read as a worker would."""
    client = redis.Redis.from_url(redis_url)
    ids: set[str] = set()
    for raw in client.lrange(queue, 0, -1):
        ids.update(message_job_ids(json.loads(raw)))
    client.close()
    return ids


def assert_routed(redis_url: str, settings: Settings, *, study_job: str, single: str) -> None:
    assert queued_ids(redis_url, settings.study_queue) == {study_job}
    assert queued_ids(redis_url, settings.task_queue) == {single}


def test_study_jobs_go_to_the_study_queue(settings: Settings) -> None:
    assert queue_for(settings, study_id="a-study") == settings.study_queue == "gradlab-studies"
    assert queue_for(settings, study_id=None) == settings.task_queue == "gradlab"


def test_the_reaper_requeues_a_study_job_on_the_study_queue(
    database: Database, celery: Celery, db_settings: Settings, redis_url: str,
    two_jobs: tuple[str, str],
) -> None:
    started = orm.utcnow() - LONG_AGO  # their leases ran out long ago: the workers died
    with database.transaction() as session:
        for job_id in two_jobs:
            leases.claim_job(session, job_id=job_id, worker="dead", device="cpu",
                             lease_seconds=60, now=started)
    outcomes = reap_once(database, celery, db_settings)
    assert outcomes["requeued"] == 2 and outcomes["republished"] == 0
    study_job, single = two_jobs
    assert_routed(redis_url, db_settings, study_job=study_job, single=single)


def test_the_reconciler_resends_a_lost_study_job_on_the_study_queue(
    database: Database, celery: Celery, db_settings: Settings, redis_url: str,
    two_jobs: tuple[str, str],
) -> None:
    with database.transaction() as session:  # sent long ago, and the broker has no message
        leases.mark_enqueued(session, job_ids=list(two_jobs), now=orm.utcnow() - LONG_AGO)
    assert reap_once(database, celery, db_settings)["republished"] == 2
    study_job, single = two_jobs
    assert_routed(redis_url, db_settings, study_job=study_job, single=single)


def test_a_released_study_job_goes_back_to_the_study_queue(
    database: Database, context: WorkerContext, db_settings: Settings, redis_url: str,
    two_jobs: tuple[str, str],
) -> None:
    ending = runner.Ending(runner.Outcome.RELEASED, steps=40, error="the worker is shutting down")
    for job_id in two_jobs:
        with database.transaction() as session:
            attempt = leases.claim_job(session, job_id=job_id, worker="w", device="cpu",
                                       lease_seconds=60)
            state = leases.load_job_state(session, job_id=job_id)
        assert attempt is not None
        files = CheckpointFiles(db_settings.checkpoints_dir, job_id)
        assert runner._release(context, state, attempt, ending, files) == runner.Outcome.RELEASED
    study_job, single = two_jobs
    assert_routed(redis_url, db_settings, study_job=study_job, single=single)


def test_a_job_handed_back_at_shutdown_keeps_its_queue(
    context: WorkerContext, db_settings: Settings, redis_url: str, two_jobs: tuple[str, str],
) -> None:
    shutdown.reset()
    shutdown.request("the worker is shutting down")
    try:
        assert [runner.run_job(context, job_id) for job_id in two_jobs] == ["deferred"] * 2
    finally:
        shutdown.reset()
    study_job, single = two_jobs
    assert_routed(redis_url, db_settings, study_job=study_job, single=single)
