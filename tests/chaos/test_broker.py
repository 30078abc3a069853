"""The broker (a private Redis) misbehaving: a visibility timeout far shorter than the jobs, a
restart with jobs running and queued, and a wipe (FLUSHALL). The database is the truth, so
every job runs exactly once: one claim, attempt 1, every row written by that attempt."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.chaos import specs
from tests.chaos.checks import RECOVERY_BOUND, assert_equals_unbroken_run
from tests.chaos.conftest import VISIBILITY_TIMEOUT
from tests.chaos.report import ChaosReport
from tests.chaos.services import PrivateRedis
from tests.chaos.stack import ChaosStack

pytestmark = pytest.mark.chaos


def _assert_ran_once(stack: ChaosStack, job_id: str) -> dict[str, Any]:
    row = stack.wait_done(job_id)
    assert row["status"] == "succeeded", row
    assert row["attempt"] == 1, row
    assert stack.claims_in_logs(job_id) == [1]
    assert {attempt for *_, attempt in stack.metric_rows(job_id)} == {1}
    return row


def _skipped_deliveries(stack: ChaosStack, job_ids: list[str]) -> int:
    logs = stack.all_logs()
    return sum(logs.count(f"job {job_id} is no longer queued") for job_id in job_ids)


def test_jobs_longer_than_the_visibility_timeout_run_once(
    stack: ChaosStack, chaos_report: ChaosReport
) -> None:
    long_jobs = [stack.submit(specs.spiral(name=f"long {i}")) for i in range(2)]
    short_jobs = [stack.submit(specs.spiral(300, name=f"short {i}")) for i in range(3)]
    rows = {job: _assert_ran_once(stack, job) for job in long_jobs + short_jobs}
    durations = [(rows[job]["finished_at"] - rows[job]["started_at"]).total_seconds()
                 for job in long_jobs]
    assert min(durations) > 2 * VISIBILITY_TIMEOUT, durations
    lost = sum(assert_equals_unbroken_run(stack, job, specs.spiral())[1] for job in long_jobs)
    chaos_report.add(
        "visibility-timeout", f"jobs of {min(durations):.0f}-{max(durations):.0f} s on Redis "
        f"with a {VISIBILITY_TIMEOUT:.0f} s visibility timeout, 3 more queued behind them",
        f"each of the 5 ran once (one claim, attempt 1); "
        f"{_skipped_deliveries(stack, long_jobs + short_jobs)} extra deliveries skipped by "
        "the claim", None, lost,
    )


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_redis_restart_loses_no_running_or_queued_job(
    stack: ChaosStack, private_redis: PrivateRedis, chaos_report: ChaosReport,
    stop: signal.Signals,
) -> None:
    """SIGTERM: a clean stop (`docker restart redis`); SIGKILL: a crash stop, where Redis writes
    nothing on the way out and comes back from its append-only file."""
    # One long job, one short that ends about when Redis does: its worker is idle when Redis
    # comes back, so the time to the next claim measures the reconnection.
    long, short = stack.submit(specs.spiral(name="running long")), stack.submit(
        specs.spiral(300, name="running short"))
    running = [long, short]
    for job in running:
        stack.wait_checkpoint(job, 50)
    queued = [stack.submit(specs.spiral(300, name=f"queued {i}")) for i in range(2)]
    progress = {job: stack.row(job)["progress_step"] for job in running}

    private_redis.stop(stop)
    submitted = time.monotonic()
    during = stack.submit(specs.spiral(300, name="submitted while redis is down"))
    submit_seconds = time.monotonic() - submitted
    time.sleep(2)
    for job in running:  # training does not need the broker
        row = stack.row(job)
        assert row["progress_step"] > progress[job] or row["status"] == "succeeded", row
    private_redis.start()
    restarted, restarted_at = time.monotonic(), datetime.now(UTC)

    waiting = [*queued, during]
    rows = {job: _assert_ran_once(stack, job) for job in running + waiting}
    consumed = min(rows[job]["started_at"] for job in waiting)
    consumed_after = (consumed - restarted_at).total_seconds()
    assert consumed_after < RECOVERY_BOUND
    lost = assert_equals_unbroken_run(stack, long, specs.spiral())[1]
    lost += sum(assert_equals_unbroken_run(stack, job, specs.spiral(300))[1]
                for job in [short, *waiting])
    how = "stopped" if stop == signal.SIGTERM else "killed (SIGKILL)"
    chaos_report.add(
        f"redis-{stop.name.lower()}", f"Redis {how} and restarted (appendonly) with 2 jobs "
        "running, 2 queued, 1 submitted while it was down",
        f"running jobs trained on and succeeded at attempt 1; the 3 others ran once each; "
        f"the submit during the outage answered 201 in {submit_seconds:.1f} s; workers took "
        f"jobs again {consumed_after:.1f} s after the restart",
        consumed_after, lost, total_seconds=time.monotonic() - restarted,
    )


def test_a_wiped_redis_loses_no_queued_job(
    stack: ChaosStack, private_redis: PrivateRedis, chaos_report: ChaosReport
) -> None:
    running = [stack.submit(specs.spiral(name=f"busy {i}")) for i in range(2)]
    for job in running:
        stack.wait_checkpoint(job, 50)
    queued = [stack.submit(specs.spiral(300, name=f"wiped {i}")) for i in range(3)]
    private_redis.flushall()
    wiped_at = datetime.now(UTC)
    with private_redis.client() as client:
        assert client.llen(stack.settings.task_queue) == 0  # their messages are gone

    rows = {job: _assert_ran_once(stack, job) for job in running + queued}
    resent = [rows[job]["started_at"] for job in queued]
    recovered = (max(resent) - wiped_at).total_seconds()
    for job in queued:
        stack.wait_log(f"job {job} queued for over")  # the reconciler sent it again
    lost = sum(assert_equals_unbroken_run(stack, job, specs.spiral(300))[1] for job in queued)
    chaos_report.add(
        "redis-flushall", "Redis wiped (FLUSHALL) with 2 jobs running and 3 queued",
        f"the reconciler re-sent the 3 queued jobs from the database (after "
        f"{stack.settings.republish_after_seconds:.0f} s queued); each ran once, attempt 1 "
        f"(the last started {recovered:.1f} s after the wipe, behind the running jobs)",
        recovered, lost,
    )
