"""A large study does not starve another team's job: study jobs wait in their own queue, and
the worker takes turns between it and the main queue, so a single job submitted behind a study
starts after at most a couple of the study's jobs, not after all of them."""

from __future__ import annotations

import time
from datetime import datetime

from store import teams
from tests.integration.conftest import Stack
from tests.integration.test_worker_flow import tiny_spec

STUDY_JOBS = 10
# The job running when the single job arrives, plus the one the worker may already have taken
# from the study queue (prefetch 1), plus one for the turn-taking between queues.
MOST_STUDY_JOBS_FIRST = 3


def other_team_headers(stack: Stack) -> dict[str, str]:
    with stack.database.transaction() as session:
        team = teams.create_team(session, name=f"other-{time.monotonic_ns()}")
        key = teams.create_api_key(session, team_id=team.id)
    return {"Authorization": f"Bearer {key}"}


def wait_as(stack: Stack, headers: dict[str, str], job_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job: dict[str, object] = stack.client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] == "succeeded":
            return job
        time.sleep(0.1)
    raise AssertionError(f"the single job did not finish\n{stack.log_tail()}")


def started(job: dict[str, object]) -> datetime:
    assert isinstance(job["started_at"], str), job
    return datetime.fromisoformat(job["started_at"])


def test_a_single_job_starts_within_a_few_jobs_of_a_big_study(stack: Stack) -> None:
    body = {"base": tiny_spec(steps=150), "grid": {"training.seed": list(range(STUDY_JOBS))}}
    study = stack.client.post("/v1/studies", json=body).json()
    first_row = stack.client.get(f"/v1/studies/{study['id']}/compare").json()["rows"][0]
    stack.wait_for(first_row["job_ids"][0], lambda job: job["status"] != "queued")
    other = other_team_headers(stack)
    single = stack.client.post("/v1/jobs", json=tiny_spec(steps=20), headers=other).json()
    single = wait_as(stack, other, single["id"])
    rows = stack.client.get(f"/v1/studies/{study['id']}/compare").json()["rows"]
    study_jobs = [stack.get(job_id) for row in rows for job_id in row["job_ids"]]
    before = [job for job in study_jobs
              if job["started_at"] is not None and started(job) < started(single)]
    print(f"study jobs started before the single job: {len(before)} of {STUDY_JOBS}")
    assert len(before) <= MOST_STUDY_JOBS_FIRST
    stack.client.post(f"/v1/studies/{study['id']}/cancel")
