"""Workers that die mid-job (kill -9, by pid): the job resumes from its last checkpoint on another
worker, the rows it stores equal those of a run that nothing interrupted, a presumed-dead attempt
cannot write, and a job that kills every worker it meets fails after max_attempts."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from store import leases, orm, series
from store.errors import StaleAttempt
from tests.chaos import specs
from tests.chaos.checks import RECOVERY_BOUND, assert_resumed_exactly
from tests.chaos.report import ChaosReport
from tests.chaos.services import wait_until
from tests.chaos.stack import ChaosStack, WorkerProcess, is_alive, kill, parent_of, spawn
from worker.context import WorkerContext
from worker.reporter import AttemptFenced
from worker.sink import StoreSink

pytestmark = pytest.mark.chaos

HARNESS = Path(__file__).with_name("orphan_harness.py")


def test_a_killed_worker_s_job_resumes_on_another_worker(
    stack: ChaosStack, chaos_report: ChaosReport
) -> None:
    job = stack.submit(specs.spiral())
    stack.wait_checkpoint(job, 300)
    victim, pool_pid = stack.worker_of(job)
    kill(pool_pid)
    victim.kill_all()
    killed = time.monotonic()
    checkpoint = stack.row(job)["checkpoint_step"]

    stack.wait_attempt(job, 2, timeout=RECOVERY_BOUND + 30)
    recovered = time.monotonic() - killed
    assert recovered < RECOVERY_BOUND
    stack.wait_log(f"job {job} attempt 2 claimed; resuming after step {checkpoint}")
    lost = assert_resumed_exactly(stack, job, specs.spiral(), checkpoint)
    chaos_report.add(
        "kill9-worker", "kill -9 a worker (main and pool process) mid-job",
        f"lease ran out, the reaper in the other worker requeued it; attempt 2 resumed after "
        f"step {checkpoint} and succeeded; metrics equal an unbroken run's",
        recovered, lost,
    )


def test_killing_only_the_main_process_ends_its_pool_process_and_fences_it_out(
    stack: ChaosStack, chaos_report: ChaosReport
) -> None:
    job = stack.submit(specs.spiral())
    stack.wait_checkpoint(job, 300)
    victim, pool_pid = stack.worker_of(job)
    victim.process.kill()  # kill -9 of the main process alone
    killed = time.monotonic()
    victim.process.wait(10)
    # Celery asks the kernel to kill pool processes with their parent (PR_SET_PDEATHSIG).
    orphan_gone = wait_until(lambda: not is_alive(pool_pid), 10, "the orphaned pool process")
    checkpoint = stack.row(job)["checkpoint_step"]

    second = stack.wait_attempt(job, 2, timeout=RECOVERY_BOUND + 30)
    recovered = time.monotonic() - killed
    assert recovered < RECOVERY_BOUND
    _assert_attempt_is_fenced(stack, job, attempt=1, running=second["attempt"])
    lost = assert_resumed_exactly(stack, job, specs.spiral(), checkpoint)
    chaos_report.add(
        "kill9-main", "kill -9 only a worker's main process mid-job",
        f"its pool process died with it ({orphan_gone:.1f} s, PR_SET_PDEATHSIG); the reaper "
        f"requeued the job; attempt 2 resumed after step {checkpoint}; attempt 1's writes "
        "refused (StaleAttempt)", recovered, lost,
    )


def _assert_attempt_is_fenced(
    stack: ChaosStack, job_id: str, *, attempt: int, running: int
) -> None:
    """Every write the store takes from a worker refuses `attempt` while `running` is current."""
    db = stack.database
    writes = {
        "write_metrics": lambda s: series.write_metrics(
            s, job_id=job_id, attempt=attempt, rows=[(1, "train_loss", 123.0)]),
        "renew_lease": lambda s: leases.renew_lease(
            s, job_id=job_id, attempt=attempt, lease_seconds=60),
        "record_checkpoint": lambda s: leases.record_checkpoint(
            s, job_id=job_id, attempt=attempt, step=10**6),
        "release_job": lambda s: leases.release_job(s, job_id=job_id, attempt=attempt),
        "finish_job": lambda s: leases.finish_job(
            s, job_id=job_id, attempt=attempt, status="failed", error="zombie"),
    }
    for name, write in writes.items():
        with pytest.raises(StaleAttempt), db.transaction() as session:
            write(session)
        assert stack.row(job_id)["attempt"] == running, name
    sink = StoreSink(db, job_id=job_id, attempt=attempt, lease_seconds=60)
    with pytest.raises(AttemptFenced):
        sink.write_metrics([(1, "train_loss", 123.0)])
    row = stack.row(job_id)
    assert row["status"] in ("running", "succeeded") and row["attempt"] == running


def test_an_orphan_without_pdeathsig_is_fenced_out_when_it_wakes(
    stack: ChaosStack, chaos_report: ChaosReport
) -> None:
    """Where the kernel does not kill a pool process with its parent, the orphan must still not
    keep the job: here it is frozen (SIGSTOP) while its parent is killed, the reaper gives the
    job to a live worker, and then it wakes (SIGCONT) holding an attempt that is no longer
    current. Its writes are refused, it stops, and the job's rows are those of an unbroken run.
    """
    job = _create_unpublished_job(stack)
    outcome = stack.settings.home / f"orphan-{job}.outcome"
    log = stack.settings.home / f"{stack.name}-orphan-{job[:8]}.log"
    harness = WorkerProcess(
        "orphan-harness",
        spawn([sys.executable, str(HARNESS), job, str(outcome)], stack.env, log),
        log, stack.env,
    )
    stack.workers.append(harness)  # closed with the stack, whatever happens
    try:
        stack.wait_checkpoint(job, 300)
        orphan = int(stack.row(job)["worker"].rsplit(":", 1)[1])
        assert parent_of(orphan) == harness.pid
        kill(orphan, signal.SIGSTOP)
        harness.process.kill()
        harness.process.wait(10)
        killed = time.monotonic()
        checkpoint = stack.row(job)["checkpoint_step"]
        second = stack.wait_attempt(job, 2, timeout=RECOVERY_BOUND + 30)
        recovered = time.monotonic() - killed
        kill(orphan, signal.SIGCONT)  # it wakes up holding attempt 1
        woke = time.monotonic()
        wait_until(outcome.exists, 30, "the orphan's outcome")
        wait_until(lambda: not is_alive(orphan), 10, "the orphan to exit")
        exited = time.monotonic() - woke
        assert outcome.read_text() == "fenced", log.read_text()[-3000:]
        assert f"job {job} attempt 1 was fenced out" in log.read_text()
        assert recovered < RECOVERY_BOUND
        lost = assert_resumed_exactly(stack, job, specs.spiral(), checkpoint)
        assert second["attempt"] == 2
        chaos_report.add(
            "orphan-no-pdeathsig",
            "pool process orphaned and frozen (no PR_SET_PDEATHSIG), woken after the reaper "
            "moved on",
            f"the reaper requeued the job, attempt 2 resumed after step {checkpoint}; the "
            f"orphan woke, its writes were refused (fenced), it exited {exited:.1f} s later",
            recovered, lost, orphan_exit_seconds=exited,
        )
    finally:
        harness.close()


def test_a_worker_frozen_inside_a_transaction_does_not_keep_its_job(
    stack: ChaosStack, chaos_report: ChaosReport
) -> None:
    """A worker frozen while it holds the job's row lock (a write's fence, FOR SHARE) and then
    lost: the reaper takes rows with SKIP LOCKED, so without a bound on abandoned transactions
    it would pass the job over for as long as the frozen session lived (hours, for a silent
    peer). Worker sessions are ended by the server after a lease idle in a transaction
    (worker.context.bound_abandoned_transactions). The frozen session is played by this test,
    connected as a worker connects, holding the lock the way a write's fence does."""
    job = stack.submit(specs.spiral())
    stack.wait_checkpoint(job, 300)
    victim, pool_pid = stack.worker_of(job)
    frozen = WorkerContext.from_settings(stack.settings).database  # as a worker connects
    connection = frozen.engine.connect()
    try:
        connection.begin()
        connection.execute(
            select(orm.Job.attempt).where(orm.Job.id == job).with_for_update(read=True)
        )
        kill(pool_pid)
        victim.kill_all()
        killed = time.monotonic()
        checkpoint = stack.row(job)["checkpoint_step"]
        stack.wait_attempt(job, 2, timeout=RECOVERY_BOUND + 30)
        recovered = time.monotonic() - killed
        with pytest.raises(DBAPIError, match="idle-in-transaction") as ended:
            connection.execute(text("SELECT 1"))
        # A worker that wakes up sees a lost connection (Unavailable: retried, then fenced).
        assert ended.value.connection_invalidated
    finally:
        connection.close()
        frozen.close()
    assert recovered < RECOVERY_BOUND
    lost = assert_resumed_exactly(stack, job, specs.spiral(), checkpoint)
    chaos_report.add(
        "frozen-in-transaction", "a worker frozen holding its job's row lock, then killed -9",
        "PostgreSQL ended the frozen session after a lease idle in its transaction "
        "(idle_in_transaction_session_timeout); the reaper then requeued the job; attempt 2 "
        f"resumed after step {checkpoint}", recovered, lost,
    )


def _create_unpublished_job(stack: ChaosStack) -> str:
    """A queued job that no Celery worker hears of (only the harness runs it)."""
    from gradlab_contract.shapes import total_steps
    from gradlab_contract.spec import JobSpec

    from store import jobs

    spec = JobSpec.model_validate(specs.spiral())
    team_id = _team_id(stack)
    with stack.database.transaction() as session:
        created = jobs.create_job(session, team_id=team_id, spec=spec,
                                  total_steps=total_steps(spec, 270))
    return created.job.id


def _team_id(stack: ChaosStack) -> str:
    from sqlalchemy import select

    with stack.database.read() as session:
        return str(session.scalars(select(orm.Team.id).where(orm.Team.name == "chaos-pg")).one())


def test_a_job_that_kills_every_worker_fails_after_max_attempts(
    stack: ChaosStack, chaos_report: ChaosReport
) -> None:
    job = stack.submit(specs.endless("killer"))
    max_attempts = stack.settings.max_attempts
    recoveries = []
    killed = time.monotonic()
    for attempt in range(1, max_attempts + 1):
        stack.wait_attempt(job, attempt, timeout=RECOVERY_BOUND + 30)
        if attempt > 1:
            recoveries.append(time.monotonic() - killed)
        victim, pool_pid = stack.worker_of(job)
        kill(pool_pid)
        victim.kill_all()
        killed = time.monotonic()
        stack.workers.remove(victim)
        victim.close()
        stack.start_workers(1)  # a replacement: the other worker reaps, this one may claim
    failed = stack.wait_for(job, lambda r: r["status"] == "failed", RECOVERY_BOUND + 30,
                            "failed")
    gave_up = time.monotonic() - killed
    time.sleep(3 * stack.settings.reaper_interval_seconds)  # no attempt after the last
    final = stack.row(job)
    assert failed["error"] == f"worker lost {max_attempts} times"
    assert final["status"] == "failed" and final["attempt"] == max_attempts
    assert all(seconds < RECOVERY_BOUND for seconds in recoveries), recoveries
    chaos_report.add(
        "kill-every-time", f"a job whose worker is killed -9 at every attempt (max_attempts "
        f"{max_attempts})",
        f"requeued {max_attempts - 1} times, then failed 'worker lost {max_attempts} times' "
        f"{gave_up:.1f} s after the last kill; attempt == {max_attempts}, no attempt more",
        max(recoveries), 0, recoveries=recoveries,
    )
