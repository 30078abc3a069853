"""A real worker (`gradlab-server worker`) on a Redis broker of its own:

- a pickled message for gradlab.run_job is refused unread (Celery's accept_content is json
  only, taskqueue/__init__.py): nothing runs, and the worker goes on serving normal jobs;
- a team's running quota holds across the worker's pool: with two pool processes and a quota of
  one, the team's second job waits (the task retries after a pause) and runs once the first ends.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kombu import Connection, Exchange, Queue

from service import create_app
from store import migrate, teams
from store.settings import Settings
from taskqueue import RUN_JOB_TASK
from tests.conftest import REDIS_URL, unavailable
from tests.integration.conftest import FAST_LEASES, start_worker, stop_worker
from tests.service.support import SPIRAL

pytestmark = pytest.mark.integration
# conftest's redis_url takes 15 and below (one per xdist worker), tests/integration 13.
REDIS_DB = 8
DONE = {"succeeded", "failed", "cancelled", "diverged"}


@dataclass
class Worker:
    settings: Settings
    client: TestClient
    log: Path
    process: Any

    def wait(self, job_id: str, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.client.get(f"/v1/jobs/{job_id}").json()
            if job["status"] in DONE:
                return dict(job)
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} did not end:\n{self.log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    import redis

    broker_url = f"{REDIS_URL.rstrip('/')}/{REDIS_DB}"
    server = redis.Redis.from_url(broker_url, socket_connect_timeout=2)
    try:
        server.flushdb()
    except redis.RedisError as error:
        unavailable(f"Redis is not reachable at {REDIS_URL}: {error}")
    home = tmp_path_factory.mktemp("hostile")
    queue = f"gradlab-security-{uuid.uuid4().hex[:8]}"
    settings = Settings(home=home, broker_url=broker_url, task_queue=queue,
                        heartbeat_seconds=0.5, lease_seconds=5, reaper_interval_seconds=1,
                        max_running_jobs_per_team=1, _env_file=None)
    settings.ensure_directories()
    migrate.upgrade(settings)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GRADLAB_")},
           "GRADLAB_HOME": str(home), "GRADLAB_DATABASE_URL": settings.database_url,
           "GRADLAB_BROKER_URL": broker_url, "GRADLAB_TASK_QUEUE": queue,
           "GRADLAB_MAX_RUNNING_JOBS_PER_TEAM": "1", "GRADLAB_WORKER_CONCURRENCY": "2",
           **FAST_LEASES}
    app = create_app(settings)
    db = app.state.services.db
    with db.transaction() as session:
        key = teams.create_api_key(session, team_id=teams.create_team(session, name="t").id)
    log = home / "worker.log"
    process = start_worker(env, log)
    try:
        with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
            yield Worker(settings, client, log, process)
    finally:
        stop_worker(process)
        server.flushdb()
        server.close()


class Exploit:
    """Unpickling this creates a folder: the proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


def _publish_pickle(settings: Settings, payload: object) -> None:
    """A Celery protocol 2 message for gradlab.run_job, serialized with pickle."""
    task_id = str(uuid.uuid4())
    exchange = Exchange(settings.task_queue, type="direct")
    queue = Queue(settings.task_queue, exchange, routing_key=settings.task_queue)
    headers = {"lang": "py", "task": RUN_JOB_TASK, "id": task_id, "root_id": task_id,
               "parent_id": None, "group": None, "retries": 0, "eta": None, "expires": None,
               "argsrepr": "(...)", "kwargsrepr": "{}", "origin": "attacker"}
    body = ((payload,), {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None})
    with Connection(settings.broker_url) as connection:
        producer = connection.Producer(serializer="pickle")
        producer.publish(body, exchange=exchange, routing_key=settings.task_queue,
                         declare=[queue], headers=headers)


def _wait_for_log(worker: Worker, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in worker.log.read_text():
            return
        time.sleep(0.1)
    raise AssertionError(f"no {text!r} in the worker's log:\n{worker.log.read_text()[-3000:]}")


def test_a_pickled_message_is_refused_unread_and_the_worker_goes_on(
    worker: Worker, tmp_path: Path
) -> None:
    import redis

    marker = tmp_path / "unpickled"
    _publish_pickle(worker.settings, Exploit(marker))
    _wait_for_log(worker, "Refusing to deserialize untrusted content of type pickle")
    assert not marker.exists()
    assert worker.process.poll() is None
    with redis.Redis.from_url(worker.settings.broker_url) as server:
        assert server.llen(worker.settings.task_queue) == 0  # discarded, not requeued
    job = worker.client.post("/v1/jobs", json=SPIRAL).json()
    assert worker.wait(job["id"])["status"] == "succeeded"
    assert not marker.exists()


def test_a_team_over_its_running_quota_waits_for_a_free_slot(worker: Worker) -> None:
    spec = {**SPIRAL, "training": {"steps": 300}}
    first, second = (worker.client.post("/v1/jobs", json=spec).json()["id"] for _ in range(2))
    most_running = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        statuses = [worker.client.get(f"/v1/jobs/{job_id}").json()["status"]
                    for job_id in (first, second)]
        most_running = max(most_running, statuses.count("running"))
        if all(status in DONE for status in statuses):
            break
        time.sleep(0.05)
    jobs = [worker.wait(job_id) for job_id in (first, second)]
    assert [job["status"] for job in jobs] == ["succeeded", "succeeded"]
    assert most_running == 1
    earlier, later = sorted(jobs, key=lambda job: job["started_at"])
    assert later["started_at"] >= earlier["finished_at"]
    assert "waits: its team runs as many jobs as it may" in worker.log.read_text()
