"""Fixtures of the store's tests: a team, a small spec, jobs in a given state."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from gradlab_contract.spec import JobSpec
from sqlalchemy import text

from store import jobs, leases, series, teams
from store.db import Database


@pytest.fixture
def spec() -> JobSpec:
    return JobSpec.model_validate(
        {"name": "tiny", "data": {"dataset": "spiral"}, "training": {"steps": 100}}
    )


@pytest.fixture
def team(database: Database) -> teams.Team:
    with database.transaction() as session:
        return teams.create_team(session, name="acme")


@pytest.fixture
def other_team(database: Database) -> teams.Team:
    with database.transaction() as session:
        return teams.create_team(session, name="globex")


@pytest.fixture
def make_job(database: Database, team: teams.Team, spec: JobSpec) -> Callable[..., str]:
    """make_job(**create_job keywords) -> id of a new queued job of `team`."""

    def make(**overrides: object) -> str:
        arguments: dict[str, object] = {"team_id": team.id, "spec": spec, "total_steps": 100}
        arguments.update(overrides)
        with database.transaction() as session:
            return jobs.create_job(session, **arguments).job.id  # type: ignore[arg-type]

    return make


@pytest.fixture
def claim(database: Database) -> Callable[[str], int]:
    """claim(job_id) -> the attempt a worker got (asserts that it got one)."""

    def claim_(job_id: str) -> int:
        with database.transaction() as session:
            attempt = leases.claim_job(
                session, job_id=job_id, worker="w1", device="cpu", lease_seconds=60
            )
        assert attempt is not None
        return attempt

    return claim_


@pytest.fixture
def running(make_job: Callable[..., str], claim: Callable[[str], int]) -> str:
    """The id of a job of `team` that a worker claimed: running at attempt 1."""
    job_id = make_job()
    assert claim(job_id) == 1
    return job_id


@pytest.fixture
def count_rows(database: Database) -> Callable[[str], int]:
    """count(table) -> its rows; "metrics" counts the stored points (one per job, name and step),
    which live in chunks (store/series)."""

    def count(table: str) -> int:
        with database.read() as session:
            if table == "metrics":
                return series.count_points(session)
            return int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())

    return count


Together = Callable[[Callable[[], Any], int], list[Any]]


@pytest.fixture
def together() -> Together:
    """Run a call on `times` threads released at once; its results, after asserting that none
    raised (the assertion names what was raised)."""

    def run(call: Callable[[], Any], times: int) -> list[Any]:
        barrier, results, errors = threading.Barrier(times), [], []

        def one() -> None:
            barrier.wait()
            try:
                results.append(call())
            except Exception as error:  # collected so that the assertion names it
                errors.append(error)

        threads = [threading.Thread(target=one) for _ in range(times)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        return results

    return run
