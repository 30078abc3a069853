"""A worker stopped with SIGTERM (`docker stop`) hands its running job back, checkpointed, for
another worker to resume at once; a job past its time limit fails and its worker goes on."""

from __future__ import annotations

import re
import signal
import time

import pytest

from tests.chaos import specs
from tests.chaos.checks import RECOVERY_BOUND, assert_resumed_exactly
from tests.chaos.report import ChaosReport
from tests.chaos.stack import ChaosStack, pool_pid_of

pytestmark = pytest.mark.chaos

BACKENDS = {"pg": "PostgreSQL + Redis", "sqlite": "SQLite + filesystem broker"}
PROMPT_EXIT = 15.0  # docker stop waits 10 s before SIGKILL; on a loaded CI box, some slack


def test_sigterm_releases_the_running_job_to_another_worker(
    any_stack: ChaosStack, chaos_report: ChaosReport
) -> None:
    stack = any_stack
    job = stack.submit(specs.spiral())
    stack.wait_checkpoint(job, 300)
    victim, _ = stack.worker_of(job)
    victim.process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    second = stack.wait_attempt(job, 2, timeout=RECOVERY_BOUND)
    resumed = time.monotonic() - sent
    victim.process.wait(60)
    exited = time.monotonic() - sent
    stack.workers.remove(victim)
    victim.close()
    released = re.search(rf"job {job} attempt 1 released after step (\d+)", stack.all_logs())
    assert released, stack.all_logs()[-4000:]
    step = int(released.group(1))
    stack.wait_log(f"job {job} attempt 2 claimed; resuming after step {step}")
    assert exited < PROMPT_EXIT
    # Handed over, not lost: the reaper had no part in it and the lease never ran out.
    assert f"job {job} lost its worker" not in stack.all_logs()
    assert resumed < stack.settings.lease_seconds
    assert second["attempt"] == 2
    lost = assert_resumed_exactly(stack, job, specs.spiral(), step)
    chaos_report.add(
        f"sigterm-{stack.name}", f"SIGTERM to a worker's main process mid-job (docker stop; "
        f"{BACKENDS[stack.name]})",
        f"the pool process checkpointed at step {step} and released the job (queued, "
        f"re-sent); the worker exited in {exited:.1f} s; attempt 2 resumed after step {step} "
        "on the other worker, no lease expiry; metrics equal an unbroken run's",
        resumed, lost, worker_exit_seconds=exited,
    )


def test_a_job_past_its_time_limit_fails_and_the_worker_serves_the_next(
    stack: ChaosStack, chaos_report: ChaosReport
) -> None:
    limit = 3.0
    for worker in list(stack.workers):
        stack.stop_worker(worker)
    [worker] = stack.start_workers(1, GRADLAB_JOB_TIME_LIMIT_SECONDS=str(limit))
    job = stack.submit(specs.endless("too long"))
    failed = stack.wait_done(job, timeout=60)
    assert failed["status"] == "failed", failed
    assert failed["error"].startswith("timeout"), failed["error"]
    ran = (failed["finished_at"] - failed["started_at"]).total_seconds()
    assert limit <= ran < limit + 10
    ended = time.monotonic()

    after = stack.submit(specs.spiral(200, name="after the timeout"))
    done = stack.wait_done(after, timeout=60)
    served = time.monotonic() - ended
    assert done["status"] == "succeeded", done
    assert worker.alive()
    # The same worker, with the same pool process: the timeout cost it nothing.
    assert pool_pid_of(done["worker"]) == pool_pid_of(failed["worker"])
    chaos_report.add(
        "time-limit", f"a job past job_time_limit_seconds ({limit:.0f} s)",
        f"failed with '{failed['error']}' after {ran:.1f} s; the same worker and pool process "
        "then ran the next job to success",
        served, 0,
    )
