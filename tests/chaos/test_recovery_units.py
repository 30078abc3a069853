"""The pieces the chaos tests rely on, one at a time and fast (not marked `chaos`: they run in
`make test`): the reporter through an outage, the runner's retried finish, releasing a job,
checkpoint files per step, and the stop request of a pool process."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from gradlab_contract.models import Layer
from gradlab_contract.spec import JobSpec
from sqlalchemy.orm import Session

from store import jobs, leases, teams
from store.db import Database
from store.errors import StaleAttempt, Unavailable
from store.settings import Settings
from worker import runner, shutdown
from worker.checkpoints import CheckpointFiles
from worker.reporter import Reporter, TransientStoreError

# -- the reporter through an outage -------------------------------------------------------------


class FlakySink:
    """A JobSink whose writes fail (TransientStoreError) the first `failures` times."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.metrics: list[tuple[int, str, float]] = []
        self.layers: list[Layer] = []
        self.checkpoints: list[int] = []
        self.heartbeats = 0

    def _outage(self) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise TransientStoreError("database unavailable")

    def write_layers(self, layers: list[Layer]) -> None:
        self._outage()
        self.layers.extend(layers)

    def write_metrics(self, rows: list[tuple[int, str, float]]) -> None:
        self._outage()
        self.metrics.extend(rows)

    def write_snapshots(self, snapshots: list[Any]) -> None:
        self._outage()

    def record_checkpoint(self, step: int) -> None:
        self._outage()
        self.checkpoints.append(step)

    def heartbeat(self, step: int) -> bool:
        self.heartbeats += 1
        return False


LAYER = Layer(name="fc1", type="linear", shape=[4, 2], parameters=12, depth=0)


def test_rows_kept_through_an_outage_are_written_once_afterwards() -> None:
    sink = FlakySink(failures=5)
    reporter = Reporter(sink, heartbeat_seconds=60, flush_seconds=0.0, retry_seconds=10)
    callbacks = reporter.callbacks()
    assert callbacks.on_layers and callbacks.on_metrics
    callbacks.on_layers([LAYER])  # refused: kept for the next flush
    for step in range(1, 4):
        callbacks.on_metrics(step, {"train_loss": float(step)})
    reporter.start()
    reporter.close()  # retries until the store answers
    assert sink.layers == [LAYER]
    assert sink.metrics == [(1, "train_loss", 1.0), (2, "train_loss", 2.0), (3, "train_loss", 3.0)]


def test_a_checkpoint_is_recorded_only_after_its_rows_got_through_the_outage() -> None:
    sink = FlakySink(failures=2)
    reporter = Reporter(sink, heartbeat_seconds=60, retry_seconds=10)
    callbacks = reporter.callbacks()
    assert callbacks.on_metrics and callbacks.on_checkpoint
    callbacks.on_metrics(50, {"train_loss": 0.5})
    callbacks.on_checkpoint(50)
    assert sink.metrics == [(50, "train_loss", 0.5)] and sink.checkpoints == [50]


def test_the_final_flush_gives_up_after_retry_seconds_and_keeps_the_rows() -> None:
    sink = FlakySink(failures=10**6)
    reporter = Reporter(sink, heartbeat_seconds=60, retry_seconds=0.6)
    callbacks = reporter.callbacks()
    assert callbacks.on_metrics
    callbacks.on_metrics(1, {"train_loss": 1.0})
    reporter.start()
    started = time.monotonic()
    with pytest.raises(TransientStoreError):
        reporter.close()
    assert 0.5 < time.monotonic() - started < 5
    assert sink.metrics == []
    sink.failures = 0
    reporter.flush()  # nothing was dropped
    assert sink.metrics == [(1, "train_loss", 1.0)]


# -- the runner's retried writes ----------------------------------------------------------------


class FlakyDatabase:
    """A Database whose write transactions fail with Unavailable the first `failures` times;
    with lose_answer, the first one commits and then fails, as a connection lost just after
    COMMIT does."""

    def __init__(self, database: Database, failures: int = 0, lose_answer: bool = False) -> None:
        self.database, self.failures, self.lose_answer = database, failures, lose_answer

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        if self.failures > 0:
            self.failures -= 1
            raise Unavailable("database unavailable: connection refused")
        with self.database.transaction() as session:
            yield session
        if self.lose_answer:
            self.lose_answer = False
            raise Unavailable("database connection lost")

    def read(self) -> Any:
        return self.database.read()


@pytest.fixture
def running_job(database: Database) -> str:
    spec = JobSpec.model_validate({"data": {"dataset": "spiral"}, "training": {"steps": 100}})
    with database.transaction() as session:
        team = teams.create_team(session, name="recovery")
        job_id = jobs.create_job(session, team_id=team.id, spec=spec, total_steps=100).job.id
        leases.claim_job(session, job_id=job_id, worker="w", device="cpu", lease_seconds=60)
    return job_id


def _context(database: Any, lease_seconds: float = 5.0) -> Any:
    return SimpleNamespace(database=database, settings=SimpleNamespace(lease_seconds=lease_seconds))


def _status(database: Database, job_id: str) -> tuple[str, int]:
    with database.read() as session:
        state = leases.load_job_state(session, job_id=job_id)
    return state.status, state.attempt


def test_the_finish_is_retried_through_an_outage(database: Database, running_job: str) -> None:
    flaky = FlakyDatabase(database, failures=3)
    ending = runner.Ending("succeeded", {"final_train_loss": 0.1}, None, 100)
    assert runner._finish(_context(flaky), running_job, 1, ending)
    assert _status(database, running_job) == ("succeeded", 1)


def test_a_finish_whose_answer_was_lost_counts_as_recorded(
    database: Database, running_job: str
) -> None:
    flaky = FlakyDatabase(database, lose_answer=True)
    ending = runner.Ending("succeeded", {}, None, 100)
    assert runner._finish(_context(flaky), running_job, 1, ending)  # the retry is fenced out
    assert _status(database, running_job) == ("succeeded", 1)


def test_the_finish_gives_up_after_a_lease(database: Database, running_job: str) -> None:
    flaky = FlakyDatabase(database, failures=10**6)
    started = time.monotonic()
    assert not runner._finish(_context(flaky, 0.6), running_job, 1, runner.Ending("failed"))
    assert time.monotonic() - started < 5
    assert _status(database, running_job) == ("running", 1)  # the reaper's, once the lease ends


# -- releasing a job (worker shutdown) ----------------------------------------------------------


def test_a_released_job_is_queued_again_and_its_attempt_fenced_out(
    database: Database, running_job: str
) -> None:
    with database.transaction() as session:
        leases.record_checkpoint(session, job_id=running_job, attempt=1, step=40)
        assert leases.release_job(session, job_id=running_job, attempt=1, progress_step=42) == (
            "queued")
    with database.read() as session:
        state = leases.load_job_state(session, job_id=running_job)
    assert (state.status, state.attempt, state.checkpoint_step, state.progress_step) == (
        "queued", 1, 40, 42)
    with pytest.raises(StaleAttempt), database.transaction() as session:
        leases.release_job(session, job_id=running_job, attempt=1)
    with database.transaction() as session:
        assert leases.claim_job(session, job_id=running_job, worker="w2", device="cpu",
                                lease_seconds=60) == 2
        assert leases.queued_jobs_older_than(session, seconds=3600) == []


def test_a_job_cancelled_while_it_was_being_released_ends_cancelled(
    database: Database, running_job: str
) -> None:
    with database.transaction() as session:
        jobs_team = leases.load_job_state(session, job_id=running_job).team_id
        jobs.request_cancel(session, team_id=jobs_team, job_id=running_job)
        assert leases.release_job(session, job_id=running_job, attempt=1) == "cancelled"
    assert _status(database, running_job) == ("cancelled", 1)


# -- checkpoint files -----------------------------------------------------------------------------


def _save(path: Path, content: bytes) -> None:
    """As training.checkpoint.save_checkpoint writes: a new file renamed over the old one."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)


def test_checkpoints_are_published_per_step_and_restored_to_a_new_attempt(tmp_path: Path) -> None:
    files = CheckpointFiles(tmp_path, "job")
    _save(files.working(1), b"state at 50")
    files.publish(1, 50)
    _save(files.working(1), b"state at 73")  # written, then the worker died: not recorded
    assert files.restore(2, 50)
    assert files.working(2).read_bytes() == b"state at 50"
    assert not files.restore(3, 100)  # never published: the job starts over
    _save(files.working(2), b"state at 100")
    files.publish(2, 100)
    files.prune(keep_step=100)
    assert not files.at_step(50).exists() and files.at_step(100).read_bytes() == b"state at 100"
    files.remove_all()
    assert list(tmp_path.iterdir()) == []


def test_a_published_checkpoint_survives_the_next_write_of_the_working_file(
    tmp_path: Path,
) -> None:
    from training.checkpoint import save_checkpoint

    files = CheckpointFiles(tmp_path, "job")
    save_checkpoint(files.working(1), {"step": 50})
    files.publish(1, 50)  # a hard link: no copy
    save_checkpoint(files.working(1), {"step": 100})  # atomic replace: a new file
    import torch

    assert torch.load(files.at_step(50), weights_only=True)["step"] == 50


# -- stopping a pool process's job ----------------------------------------------------------------


@pytest.fixture
def clean_shutdown() -> Iterator[None]:
    shutdown.reset()
    yield
    shutdown.reset()


def test_a_stop_request_reaches_the_running_job(clean_shutdown: None) -> None:
    stopped = threading.Event()
    with shutdown.stoppable(stopped.set):
        shutdown.request("the worker is shutting down")
    assert stopped.is_set() and shutdown.requested()
    assert shutdown.reason() == "the worker is shutting down"
    late = threading.Event()
    with shutdown.stoppable(late.set):  # a job that starts after the request stops at once
        assert late.is_set()


def test_the_stop_signal_asks_the_running_job_to_stop(clean_shutdown: None) -> None:
    previous = signal.getsignal(shutdown.STOP_SIGNAL)
    signal.signal(shutdown.STOP_SIGNAL, shutdown._on_stop_signal)
    try:
        stopped = threading.Event()
        with shutdown.stoppable(stopped.set):
            os.kill(os.getpid(), shutdown.STOP_SIGNAL)
            assert stopped.wait(5)
    finally:
        signal.signal(shutdown.STOP_SIGNAL, previous)


def test_a_dead_parent_stops_the_job(clean_shutdown: None) -> None:
    stopped = threading.Event()
    with shutdown.stoppable(stopped.set):
        shutdown.watch_parent(parent=-1, poll_seconds=0.05)  # never our parent: "it died"
        assert stopped.wait(5)
    assert "main process died" in shutdown.reason()


def test_the_ending_of_a_stopped_job_depends_on_why_it_stopped(clean_shutdown: None) -> None:
    from training.types import RunResult

    stopped = RunResult("stopped", 40, 100, "cpu", {}, "stopped on request after step 40")
    reporter: Any = SimpleNamespace(cancel_requested=False)
    timed_out = threading.Event()
    assert runner._ending(stopped, reporter, timed_out).status == "failed"
    shutdown.request("the worker is shutting down")
    assert runner._ending(stopped, reporter, timed_out).status == runner.Outcome.RELEASED
    timed_out.set()
    assert runner._ending(stopped, reporter, timed_out).error.startswith("timeout")  # type: ignore[union-attr]
    reporter.cancel_requested = True
    assert runner._ending(stopped, reporter, timed_out).status == "cancelled"


# -- settings -------------------------------------------------------------------------------------


def test_the_redis_visibility_timeout_is_a_setting(tmp_path: Path) -> None:
    redis = Settings(home=tmp_path, broker_url="redis://r:6379/0", _env_file=None,
                     broker_visibility_timeout_seconds=2)
    assert redis.broker_transport_options == {"visibility_timeout": 2}
    assert Settings(home=tmp_path, broker_url="redis://r:6379/0",
                    _env_file=None).broker_transport_options == {}
    filesystem = Settings(home=tmp_path, _env_file=None, broker_visibility_timeout_seconds=2)
    assert "visibility_timeout" not in filesystem.broker_transport_options
