"""PostgreSQL (a private cluster) stopped and started under a running job: the worker keeps its
rows through the outage and writes them once the server is back, the end of the job is recorded
even when it falls inside the outage, and the API answers 503 problem+json meanwhile."""

from __future__ import annotations

import signal
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.chaos import specs
from tests.chaos.checks import RECOVERY_BOUND, assert_equals_unbroken_run
from tests.chaos.report import ChaosReport
from tests.chaos.services import PrivatePostgres
from tests.chaos.stack import ChaosStack, kill, pool_pid_of

pytestmark = pytest.mark.chaos

OUTAGE_SECONDS = 2.5  # shorter than the lease (5 s): the job should keep its attempt


def _hit_the_api(stack: ChaosStack, job_id: str, seconds: float) -> list[tuple[str, int, Any]]:
    """Call reads and writes of the API for `seconds`; (call, status, body) of each."""
    calls = {
        "GET /v1/jobs/{id}": lambda: stack.client.get(f"/v1/jobs/{job_id}"),
        "GET /v1/jobs": lambda: stack.client.get("/v1/jobs"),
        "GET /v1/jobs/{id}/metrics": lambda: stack.client.get(f"/v1/jobs/{job_id}/metrics"),
        "POST /v1/jobs": lambda: stack.client.post("/v1/jobs", json=specs.spiral(100)),
        "POST /v1/jobs/{id}/cancel": lambda: stack.client.post(f"/v1/jobs/{job_id}/cancel"),
    }
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, call in calls.items():
            response = call()
            body = response.json() if response.content else None
            seen.append((name, response.status_code, (response.headers.get("content-type"), body)))
        time.sleep(0.1)
    return seen


def _assert_all_unavailable(seen: list[tuple[str, int, Any]]) -> None:
    assert seen
    for name, status, (content_type, body) in seen:
        assert status == 503, (name, status, body)
        assert content_type == "application/problem+json", (name, content_type)
        assert body["code"] == "unavailable", (name, body)


def _outage(
    stack: ChaosStack, postgres: PrivatePostgres, job_id: str, how: str = "fast",
    seconds: float = OUTAGE_SECONDS,
) -> tuple[list[tuple[str, int, Any]], datetime]:
    if how == "crash":
        postgres.crash()  # SIGKILL of every process of the cluster
    else:
        postgres.stop(how)  # fast: closes every connection, rolls back what is in flight
    seen = _hit_the_api(stack, job_id, seconds)
    postgres.start()
    return seen, datetime.now(UTC)


@pytest.mark.parametrize("how", ["fast", "crash"])
def test_a_postgres_restart_mid_job_loses_and_doubles_no_row(
    stack: ChaosStack, private_postgres: PrivatePostgres, chaos_report: ChaosReport, how: str,
) -> None:
    """fast: `pg_ctl stop -m fast` (docker stop); crash: SIGKILL of the whole cluster, which
    then starts with crash recovery."""
    job = stack.submit(specs.spiral())
    stack.wait_checkpoint(job, 300)
    seen, back = _outage(stack, private_postgres, job, how)
    _assert_all_unavailable(seen)
    # Training went on; the lease is renewed, and progress recorded, once the server is back.
    row = stack.wait_for(job, lambda r: r["heartbeat_at"] is not None and r["heartbeat_at"] > back,
                         RECOVERY_BOUND, "a heartbeat after the restart")
    recovered = (row["heartbeat_at"] - back).total_seconds()
    assert stack.client.get(f"/v1/jobs/{job}").status_code == 200
    done, lost = assert_equals_unbroken_run(stack, job, specs.spiral())
    logs = stack.all_logs()
    assert "keeping" in logs or "could not renew the lease" in logs  # the worker saw it
    assert "database is locked" not in logs
    stopped = "stopped (-m fast)" if how == "fast" else "killed (SIGKILL, every process)"
    chaos_report.add(
        "postgres-restart" if how == "fast" else "postgres-sigkill",
        f"PostgreSQL {stopped} for {OUTAGE_SECONDS:.1f} s mid-job, then started",
        f"the worker kept its rows and retried; job succeeded at attempt {done['attempt']} with "
        f"metrics equal to an unbroken run's; the API answered all {len(seen)} calls "
        f"({len(Counter(name for name, *_ in seen))} routes, reads and writes) with 503 "
        "problem+json code unavailable, never 500",
        recovered, lost, api_calls=len(seen),
    )


def test_a_postgres_outage_longer_than_the_lease_loses_no_row(
    stack: ChaosStack, private_postgres: PrivatePostgres, chaos_report: ChaosReport
) -> None:
    """Down for longer than the lease: no heartbeat got through, so when the server is back the
    lease has run out. Either the worker's next heartbeat renews it first and the attempt goes
    on, or a reaper requeues the job and a new attempt resumes from the checkpoint while the
    old one is fenced out; either way every row of an unbroken run is there, once."""
    lease = stack.settings.lease_seconds
    job = stack.submit(specs.spiral())
    stack.wait_checkpoint(job, 300)
    seen, back = _outage(stack, private_postgres, job, "fast", seconds=lease + 3)
    _assert_all_unavailable(seen)
    row = stack.wait_for(
        job, lambda r: r["status"] == "succeeded" or (
            r["heartbeat_at"] is not None and r["heartbeat_at"] > back),
        RECOVERY_BOUND, "a heartbeat or the end after the restart")
    recovered = (datetime.now(UTC) - back).total_seconds() if row["heartbeat_at"] is None else (
        row["heartbeat_at"] - back).total_seconds()
    done, lost = assert_equals_unbroken_run(stack, job, specs.spiral())
    fate = ("the first attempt renewed its lease before a reaper looked and went on"
            if done["attempt"] == 1 else
            f"a reaper requeued it; attempt {done['attempt']} resumed from the checkpoint and "
            "the first attempt was fenced out")
    chaos_report.add(
        "postgres-outage-past-lease", f"PostgreSQL stopped for {lease + 3:.0f} s mid-job, longer "
        f"than the {lease:.0f} s lease", f"{fate}; succeeded with every row of an unbroken "
        f"run; the API answered 503 meanwhile ({len(seen)} calls)", recovered, lost,
        attempt=done["attempt"],
    )


def test_a_postgres_outage_at_the_end_of_a_job_still_records_its_end(
    stack: ChaosStack, private_postgres: PrivatePostgres, chaos_report: ChaosReport
) -> None:
    """The last steps, the final flush and the finish fall inside the outage: the rows and the
    end are retried, not dropped. To place the end inside the outage whatever the machine's
    speed, the pool process is paused (SIGSTOP) while the server stops, then resumed with at
    most 150 steps left, a fraction of a second of training."""
    spec = specs.spiral(1000, name="ends in an outage")
    job = stack.submit(spec)
    row = stack.wait_checkpoint(job, 850)
    pool_pid = pool_pid_of(row["worker"])
    kill(pool_pid, signal.SIGSTOP)
    try:
        private_postgres.stop("fast")
    finally:
        kill(pool_pid, signal.SIGCONT)
    seen = _hit_the_api(stack, job, OUTAGE_SECONDS)
    private_postgres.start()
    back = datetime.now(UTC)
    _assert_all_unavailable(seen)
    done, lost = assert_equals_unbroken_run(stack, job, spec)
    recovered = (done["finished_at"] - back).total_seconds()
    assert 0 <= recovered < RECOVERY_BOUND  # recorded only once the server was back
    assert done["attempt"] == 1 and done["progress_step"] == 1000
    retried = [line for line in stack.all_logs().splitlines()
               if f"job {job} attempt 1]" in line and "retrying" in line]
    assert retried, "no write of the job was retried"
    chaos_report.add(
        "postgres-restart-at-end", f"PostgreSQL stopped for {OUTAGE_SECONDS:.1f} s while a job "
        "trained its last steps and ended",
        "the last rows and the finish were retried until the server was back; succeeded at "
        "attempt 1 with every row of an unbroken run", recovered, lost,
    )
