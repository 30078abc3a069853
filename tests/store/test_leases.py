from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest

from store import jobs, leases, orm
from store.db import Database
from store.errors import InvalidInput, StaleAttempt
from store.teams import Team


def _claim(database: Database, job_id: str, worker: str = "w") -> int | None:
    with database.transaction() as session:
        return leases.claim_job(
            session, job_id=job_id, worker=worker, device="cpu", lease_seconds=60
        )


def _expire_and_retry(database: Database, job_id: str, attempt: int, max_attempts: int) -> str:
    later = orm.utcnow() + timedelta(seconds=120)
    with database.transaction() as session:
        assert leases.expired_jobs(session, now=later) == [
            leases.ExpiredLease(job_id, attempt, study_id=None)]
        return leases.retry_or_fail(
            session, job_id=job_id, expected_attempt=attempt, max_attempts=max_attempts, now=later
        )


def test_claim_starts_attempt_one(
    database: Database, team: Team, make_job: Callable[..., str]
) -> None:
    job_id = make_job()
    assert _claim(database, job_id, worker="host:1") == 1
    with database.read() as session:
        job = jobs.get_job(session, team_id=team.id, job_id=job_id)
        state = leases.load_job_state(session, job_id=job_id)
    assert (job.status, job.attempt, job.worker, job.device) == ("running", 1, "host:1", "cpu")
    assert job.started_at is not None and state.checkpoint_step is None
    assert _claim(database, job_id) is None


def test_two_racing_claimers_one_wins(database: Database, make_job: Callable[..., str]) -> None:
    job_id = make_job()
    barrier, won = threading.Barrier(6), []

    def claim(worker: str) -> None:
        barrier.wait()
        won.append(_claim(database, job_id, worker))

    threads = [threading.Thread(target=claim, args=(f"w{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won, key=lambda attempt: attempt or 0) == [None] * 5 + [1]


def test_renewal_reports_cancel_and_progress(
    database: Database, team: Team, running: str
) -> None:
    with database.transaction() as session:
        cancel = leases.renew_lease(
            session, job_id=running, attempt=1, lease_seconds=60,
            progress_step=40,
        )
    assert cancel is False
    with database.transaction() as session:
        jobs.request_cancel(session, team_id=team.id, job_id=running)
        assert leases.renew_lease(
            session, job_id=running, attempt=1, lease_seconds=60
        )
        assert jobs.get_job(session, team_id=team.id, job_id=running).progress.step == 40


def test_finish_is_fenced(database: Database, team: Team, running: str) -> None:
    with database.transaction() as session, pytest.raises(StaleAttempt):
        leases.finish_job(session, job_id=running, attempt=2, status="succeeded")
    with database.transaction() as session:
        leases.finish_job(
            session, job_id=running, attempt=1, status="diverged",
            summary={"final_loss": float("nan"), "best_accuracy": 0.5},
            error="non-finite loss at step 12",
        )
    with database.transaction() as session, pytest.raises(StaleAttempt):
        leases.renew_lease(session, job_id=running, attempt=1, lease_seconds=1)
    with database.read() as session:
        job = jobs.get_job(session, team_id=team.id, job_id=running)
    assert job.status == "diverged" and job.summary == {"final_loss": None, "best_accuracy": 0.5}
    assert job.finished_at is not None and job.error == "non-finite loss at step 12"


def test_finish_refuses_a_status_that_is_not_final(database: Database, running: str) -> None:
    with database.transaction() as session, pytest.raises(InvalidInput):
        leases.finish_job(session, job_id=running, attempt=1, status="queued")


def test_checkpoint_is_recorded_for_the_current_attempt_only(
    database: Database, running: str
) -> None:
    with database.transaction() as session:
        leases.record_checkpoint(session, job_id=running, attempt=1, step=500)
    with database.transaction() as session, pytest.raises(StaleAttempt):
        leases.record_checkpoint(session, job_id=running, attempt=0, step=600)
    with database.read() as session:
        assert leases.load_job_state(session, job_id=running).checkpoint_step == 500


def test_lost_worker_is_retried_then_failed_after_max_attempts(
    database: Database, team: Team, running: str
) -> None:
    assert _expire_and_retry(database, running, 1, max_attempts=3) == "requeued"
    assert _claim(database, running) == 2
    assert _expire_and_retry(database, running, 2, max_attempts=3) == "requeued"
    assert _claim(database, running) == 3
    with database.transaction() as session, pytest.raises(StaleAttempt):
        leases.renew_lease(session, job_id=running, attempt=2, lease_seconds=60)
    assert _expire_and_retry(database, running, 3, max_attempts=3) == "failed"
    with database.read() as session:
        job = jobs.get_job(session, team_id=team.id, job_id=running)
    assert (job.status, job.attempt, job.error) == ("failed", 3, "worker lost 3 times")


def _release(database: Database, job_id: str, attempt: int) -> str:
    with database.transaction() as session:
        return leases.release_job(session, job_id=job_id, attempt=attempt, progress_step=10)


def test_graceful_releases_do_not_use_up_the_retries(
    database: Database, team: Team, running: str
) -> None:
    """Rolling deploys hand the job back many times; only losses count against max_attempts."""
    attempt = 1
    for _ in range(4):  # more hand-backs than max_attempts
        assert _release(database, running, attempt) == "queued"
        attempt = _claim(database, running) or 0
    assert attempt == 5
    assert _expire_and_retry(database, running, 5, max_attempts=3) == "requeued"
    assert _claim(database, running) == 6
    assert _expire_and_retry(database, running, 6, max_attempts=3) == "requeued"
    assert _claim(database, running) == 7
    assert _expire_and_retry(database, running, 7, max_attempts=3) == "failed"
    with database.read() as session:
        job = jobs.get_job(session, team_id=team.id, job_id=running)
    assert (job.status, job.error) == ("failed", "worker lost 3 times")


def test_a_dead_pool_process_hands_its_job_back_before_the_lease_runs_out(
    database: Database, running: str
) -> None:
    with database.read() as session:
        lost = leases.running_jobs_of(session, worker="w1")
    assert lost == [leases.ExpiredLease(running, 1, study_id=None)]
    with database.transaction() as session:
        assert leases.retry_or_fail(session, job_id=running, expected_attempt=1,
                                    max_attempts=3) == "skipped"  # the lease still runs
        assert leases.retry_or_fail(session, job_id=running, expected_attempt=1,
                                    max_attempts=3, lease_expired=False) == "requeued"
    with database.read() as session:
        assert leases.running_jobs_of(session, worker="w1") == []
        assert leases.load_job_state(session, job_id=running).status == "queued"
    assert _claim(database, running) == 2
    with database.transaction() as session:  # fenced: the old attempt cannot be handed back
        assert leases.retry_or_fail(session, job_id=running, expected_attempt=1,
                                    max_attempts=3, lease_expired=False) == "skipped"


def test_retry_skips_a_renewed_lease_and_cancels_a_cancelled_job(
    database: Database, team: Team, running: str
) -> None:
    with database.transaction() as session:
        outcome = leases.retry_or_fail(
            session, job_id=running, expected_attempt=1, max_attempts=3
        )
    assert outcome == "skipped"  # the lease has not expired
    with database.transaction() as session:
        jobs.request_cancel(session, team_id=team.id, job_id=running)
    assert _expire_and_retry(database, running, 1, max_attempts=3) == "cancelled"


def test_reconciler_finds_jobs_queued_too_long(
    database: Database, make_job: Callable[..., str]
) -> None:
    job_id = make_job()
    later = orm.utcnow() + timedelta(seconds=300)
    with database.transaction() as session:
        assert leases.queued_jobs_older_than(session, seconds=600, now=later) == []
        assert leases.queued_jobs_older_than(session, seconds=60, now=later) == [
            leases.QueuedJob(job_id, study_id=None)]
        leases.mark_enqueued(session, job_ids=[job_id], now=later)
        assert leases.queued_jobs_older_than(session, seconds=60, now=later) == []
