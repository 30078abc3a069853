"""kill -9 of the process that trains a job, its worker's main process alive: the main process
sees its pool process die and hands the job back at once (worker/pool_watch.py), so the next
attempt starts within seconds, not after the lease. Run on the embedded default (SQLite and the
filesystem broker) and on PostgreSQL + Redis, with workers whose lease is a minute long, so that
only the hand-back, never the reaper, can explain a recovery within FAST_RECOVERY_BOUND."""

from __future__ import annotations

import time

import pytest

from tests.chaos import specs
from tests.chaos.checks import FAST_RECOVERY_BOUND, assert_resumed_exactly
from tests.chaos.report import ChaosReport
from tests.chaos.stack import ChaosStack, is_alive, kill

pytestmark = pytest.mark.chaos

BACKENDS = {"pg": "PostgreSQL + Redis", "sqlite": "the embedded default: SQLite + filesystem "
            "broker"}
LONG_LEASE = 60.0  # the default: the reaper alone would take a minute


def test_kill9_of_the_training_process_is_handed_back_in_seconds(
    any_stack: ChaosStack, chaos_report: ChaosReport
) -> None:
    stack = any_stack
    for worker in list(stack.workers):
        stack.stop_worker(worker)
    stack.start_workers(2, GRADLAB_LEASE_SECONDS=str(LONG_LEASE))
    job = stack.submit(specs.spiral())
    stack.wait_checkpoint(job, 300)
    victim, pool_pid = stack.worker_of(job)
    kill(pool_pid)  # the main process lives on
    killed = time.monotonic()
    checkpoint = stack.row(job)["checkpoint_step"]

    second = stack.wait_attempt(job, 2, timeout=LONG_LEASE)
    recovered = time.monotonic() - killed
    assert not is_alive(pool_pid) and victim.alive()
    assert recovered < FAST_RECOVERY_BOUND, recovered
    stack.wait_log(f"its pool process {pool_pid} died; requeued")
    assert f"job {job} lost its worker" not in stack.all_logs()  # not the reaper's doing
    lost = assert_resumed_exactly(stack, job, specs.spiral(), checkpoint)
    assert stack.row(job)["losses"] == 1 and second["attempt"] == 2
    chaos_report.add(
        f"kill9-pool-{stack.name}", f"kill -9 of the training (pool) process mid-job, its "
        f"worker alive ({BACKENDS[stack.name]}; lease {LONG_LEASE:.0f} s)",
        f"the worker's main process saw it die and handed the job back (a loss, 1 of "
        f"{stack.settings.max_attempts}); attempt 2 resumed after step {checkpoint}, no lease "
        "expiry; metrics equal an unbroken run's", recovered, lost,
    )
