"""Recovery without waste: the reaper goes on past a broker error, the reconciler re-sends only
what the broker really lost (on the filesystem transport and on Redis), a database blip while a
job is set up is retried, the time limit is the job's over all its attempts, and the worker's
main process hands back the job of a pool process that died. Real databases (both backends),
real brokers; faults are injected at the client, never by a mock of the server."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from celery import Celery
from gradlab_contract.models import Layer
from gradlab_contract.spec import JobSpec
from sqlalchemy.orm import Session

from store import datasets, jobs, leases, orm, teams
from store.artifacts import open_artifact_store
from store.db import Database
from store.errors import Unavailable
from store.settings import Settings, filesystem_broker_options
from taskqueue import make_celery, publish_job
from taskqueue.waiting import waiting_job_ids
from tests.service.support import published_ids
from worker import pool_watch, runner
from worker.keep import ModelKeeper
from worker.reaper import reap_once
from worker.reporter import Reporter

SPEC = JobSpec.model_validate({"data": {"dataset": "spiral"}, "training": {"steps": 100}})
LONG_AGO = timedelta(hours=1)


@pytest.fixture
def celery(db_settings: Settings, tmp_path: Path) -> Iterator[Celery]:
    app = make_celery("filesystem://", queue=db_settings.task_queue,
                      transport_options=filesystem_broker_options(tmp_path / "broker"))
    yield app
    app.close()


def _queued_jobs(database: Database, count: int) -> list[str]:
    with database.transaction() as session:
        team = teams.create_team(session, name="recovery")
        return [jobs.create_job(session, team_id=team.id, spec=SPEC, total_steps=100).job.id
                for _ in range(count)]


class RefusingCelery:
    """A Celery app whose broker refuses the messages of one job (a full or failing broker)."""

    def __init__(self, app: Celery, refused: str) -> None:
        self._app, self._refused = app, refused

    def send_task(self, name: str, args: list[str], **options: Any) -> Any:
        if self._refused in args:
            raise ConnectionError("the broker refused the message")
        return self._app.send_task(name, args=args, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)


def test_one_broker_error_does_not_stop_the_reaper_pass(
    database: Database, celery: Celery, db_settings: Settings, tmp_path: Path,
) -> None:
    first, second, third = _queued_jobs(database, 3)
    started = orm.utcnow() - LONG_AGO
    with database.transaction() as session:
        for job_id in (first, second, third):
            leases.claim_job(session, job_id=job_id, worker="dead", device="cpu",
                             lease_seconds=60, now=started)
    outcomes = reap_once(database, RefusingCelery(celery, second), db_settings)  # type: ignore[arg-type]
    assert (outcomes["requeued"], outcomes["errors"]) == (2, 1)
    assert sorted(published_ids(tmp_path / "broker")) == sorted([first, third])
    with database.read() as session:  # queued in the database: the reconciler's to re-send
        assert leases.load_job_state(session, job_id=second).status == "queued"


def _backdate(database: Database, job_ids: list[str]) -> None:
    with database.transaction() as session:
        leases.mark_enqueued(session, job_ids=job_ids, now=orm.utcnow() - LONG_AGO)


def test_the_reconciler_resends_only_jobs_missing_from_the_broker(
    database: Database, celery: Celery, db_settings: Settings, tmp_path: Path,
) -> None:
    waiting, lost = _queued_jobs(database, 2)
    publish_job(celery, db_settings, waiting, study_id=None)  # its message is still there
    for _ in range(3):  # pass after pass: no duplicate grows
        _backdate(database, [waiting, lost])
        reap_once(database, celery, db_settings)
        assert sorted(published_ids(tmp_path / "broker")) == sorted([waiting, lost])


def test_the_broker_view_reads_the_waiting_ids_on_redis(
    redis_url: str, db_settings: Settings,
) -> None:
    app = make_celery(redis_url, queue=db_settings.task_queue)
    try:
        publish_job(app, db_settings, "job-a", study_id=None)
        publish_job(app, db_settings, "job-b", study_id="a-study")
        queues = {db_settings.task_queue, db_settings.study_queue}
        assert waiting_job_ids(app, queues) == {"job-a", "job-b"}
        assert waiting_job_ids(app, {db_settings.task_queue}) == {"job-a"}
    finally:
        app.close()


# -- a database blip while the job is set up ----------------------------------------------------


class BlinkingDatabase:
    """A Database whose reads fail with Unavailable the first `failures` times (a restart)."""

    def __init__(self, database: Database, failures: int) -> None:
        self.database, self.failures = database, failures

    @contextmanager
    def read(self) -> Iterator[Session]:
        if self.failures > 0:
            self.failures -= 1
            raise Unavailable("database unavailable: connection refused")
        with self.database.read() as session:
            yield session

    def transaction(self) -> Any:
        return self.database.transaction()


class NullSink:
    def write_layers(self, layers: list[Layer]) -> None: ...
    def write_metrics(self, rows: list[tuple[int, str, float]]) -> None: ...
    def write_snapshots(self, snapshots: list[Any]) -> None: ...
    def record_checkpoint(self, step: int) -> None: ...
    def heartbeat(self, step: int) -> bool:
        return False


@pytest.fixture
def upload_job(database: Database, tmp_path: Path) -> leases.JobState:
    path = tmp_path / "upload.npz"
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    np.savez(buffer, x=rng.normal(size=(40, 2)).astype(np.float32), y=np.arange(40) % 2)
    path.write_bytes(buffer.getvalue())
    with database.transaction() as session:
        team = teams.create_team(session, name="uploads")
        found = datasets.create_dataset(session, team_id=team.id, name="u", kind="vector",
                                        path=str(path), x_shape=[2], num_classes=2, rows=40,
                                        size_bytes=path.stat().st_size)
        spec = JobSpec.model_validate({"data": {"dataset": found.id},
                                       "model": {"hidden": [4]}, "training": {"steps": 3}})
        job_id = jobs.create_job(session, team_id=team.id, spec=spec, total_steps=3).job.id
        leases.claim_job(session, job_id=job_id, worker="w", device="cpu", lease_seconds=60)
        return leases.load_job_state(session, job_id=job_id)


def _train(database: Any, state: leases.JobState, tmp_path: Path, lease: float) -> runner.Ending:
    settings = SimpleNamespace(lease_seconds=lease, data_root=None, checkpoint_every_steps=100,
                               home=tmp_path)
    store = open_artifact_store(Settings(home=tmp_path))  # the embedded default: a folder
    ctx: Any = SimpleNamespace(database=database, settings=settings, artifacts=store)
    reporter = Reporter(NullSink(), heartbeat_seconds=60)
    keeper = ModelKeeper(database, store, state, state.attempt)
    return runner._train(ctx, state, reporter, tmp_path / "checkpoint.pt", False,
                         threading.Event(), keeper)


def test_a_database_blip_while_a_job_is_set_up_is_retried(
    database: Database, upload_job: leases.JobState, tmp_path: Path,
) -> None:
    ending = _train(BlinkingDatabase(database, failures=3), upload_job, tmp_path, lease=10)
    assert (ending.status, ending.error) == ("succeeded", None)


def test_a_database_down_through_setup_leaves_the_job_to_the_reaper(
    database: Database, upload_job: leases.JobState, tmp_path: Path,
) -> None:
    ending = _train(BlinkingDatabase(database, failures=10**6), upload_job, tmp_path, lease=0.6)
    assert ending.status == runner.Outcome.UNFINISHED  # not failed: the reaper retries it


# -- the time limit is the job's ----------------------------------------------------------------


def test_the_time_limit_counts_from_the_first_start_over_all_attempts(
    database: Database,
) -> None:
    (job_id,) = _queued_jobs(database, 1)
    first_start = orm.utcnow() - timedelta(seconds=30)
    with database.transaction() as session:
        leases.claim_job(session, job_id=job_id, worker="w", device="cpu", lease_seconds=60,
                         now=first_start)
        leases.release_job(session, job_id=job_id, attempt=1)  # a deploy hands it back
        leases.claim_job(session, job_id=job_id, worker="w2", device="cpu", lease_seconds=60)
        state = leases.load_job_state(session, job_id=job_id)
    assert state.attempt == 2 and state.started_at == first_start
    assert 69 < runner._time_left(100, state) < 71  # not 100: the clock did not restart
    assert runner._time_left(20, state) < 0  # already past: the attempt stops at once


# -- a pool process that died -------------------------------------------------------------------


def test_the_main_process_hands_back_the_job_of_a_dead_pool_process(
    database: Database, celery: Celery, db_settings: Settings, tmp_path: Path,
) -> None:
    kept, lost = _queued_jobs(database, 2)
    with database.transaction() as session:
        leases.claim_job(session, job_id=kept, worker=pool_watch.worker_name(111),
                         device="cpu", lease_seconds=60)
        leases.claim_job(session, job_id=lost, worker=pool_watch.worker_name(222),
                         device="cpu", lease_seconds=60)
    pids = [111, 222]
    watch = pool_watch.PoolWatch(database, celery, db_settings, lambda: list(pids))
    watch.start()
    try:
        pids.remove(222)  # killed with -9
        deadline = orm.utcnow() + timedelta(seconds=10)
        while not published_ids(tmp_path / "broker") and orm.utcnow() < deadline:
            threading.Event().wait(0.1)
    finally:
        watch.stop()
        watch.join(5)
    assert published_ids(tmp_path / "broker") == [lost]
    with database.read() as session:
        assert leases.load_job_state(session, job_id=lost).status == "queued"
        assert leases.load_job_state(session, job_id=kept).status == "running"
