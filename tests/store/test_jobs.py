from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC

import pytest
from gradlab_contract.spec import JobSpec

from store import jobs, leases
from store.db import Database
from store.errors import Conflict, InvalidInput, NotFound, QuotaExceeded
from store.teams import Team
from tests.store.conftest import Together


def _create(database: Database, team: Team, spec: JobSpec, **keywords: object) -> jobs.CreatedJob:
    with database.transaction() as session:
        return jobs.create_job(
            session, team_id=team.id, spec=spec, total_steps=100, **keywords  # type: ignore[arg-type]
        )


def test_created_job_reads_back_as_the_api_model(
    database: Database, team: Team, spec: JobSpec
) -> None:
    created = _create(database, team, spec)
    assert created.created
    job = created.job
    assert (job.status, job.attempt, job.name, job.spec) == ("queued", 0, "tiny", spec)
    assert job.progress.total_steps == 100 and job.created_at.tzinfo is UTC
    with database.read() as session:
        assert jobs.get_job(session, team_id=team.id, job_id=job.id) == job


def test_same_key_and_body_returns_the_same_job(
    database: Database, team: Team, spec: JobSpec, count_rows: Callable[[str], int]
) -> None:
    first = _create(database, team, spec, idempotency_key="k1", request_hash="h1")
    again = _create(database, team, spec, idempotency_key="k1", request_hash="h1")
    assert again == jobs.CreatedJob(first.job, created=False)
    assert count_rows("jobs") == 1


def test_same_key_with_another_body_is_a_conflict(
    database: Database, team: Team, spec: JobSpec
) -> None:
    _create(database, team, spec, idempotency_key="k1", request_hash="h1")
    with pytest.raises(Conflict) as raised:
        _create(database, team, spec, idempotency_key="k1", request_hash="h2")
    assert raised.value.code == "conflict" and raised.value.field == "Idempotency-Key"


def test_keys_are_per_team(
    database: Database, team: Team, other_team: Team, spec: JobSpec
) -> None:
    mine = _create(database, team, spec, idempotency_key="k1", request_hash="h1")
    theirs = _create(database, other_team, spec, idempotency_key="k1", request_hash="h2")
    assert theirs.created and theirs.job.id != mine.job.id


def test_concurrent_creates_with_one_key_make_one_row(
    database: Database, team: Team, spec: JobSpec, count_rows: Callable[[str], int],
    together: Together,
) -> None:
    results = together(
        lambda: _create(database, team, spec, idempotency_key="k", request_hash="h"), 8
    )
    assert len({result.job.id for result in results}) == 1
    assert sum(result.created for result in results) == 1
    assert count_rows("jobs") == 1


def test_a_create_racing_an_uncommitted_one_waits_and_returns_it(
    database: Database, team: Team, spec: JobSpec
) -> None:
    """The second insert hits the unique constraint (PostgreSQL) or the write lock (SQLite)."""
    results: list[jobs.CreatedJob] = []
    racer = threading.Thread(
        target=lambda: results.append(
            _create(database, team, spec, idempotency_key="k", request_hash="h")
        )
    )
    with database.transaction() as session:
        first = jobs.create_job(
            session, team_id=team.id, spec=spec, total_steps=100, idempotency_key="k",
            request_hash="h",
        )
        racer.start()
        racer.join(timeout=0.3)
        assert racer.is_alive(), "the racer should wait for the first transaction"
    racer.join(timeout=10)
    assert results == [jobs.CreatedJob(first.job, created=False)]


def test_another_teams_job_is_not_found(
    database: Database, other_team: Team, make_job: Callable[..., str]
) -> None:
    job_id = make_job()
    with database.read() as session, pytest.raises(NotFound):
        jobs.get_job(session, team_id=other_team.id, job_id=job_id)
    with database.transaction() as session, pytest.raises(NotFound):
        jobs.request_cancel(session, team_id=other_team.id, job_id=job_id)


def test_list_pages_newest_first_with_a_cursor(
    database: Database, team: Team, other_team: Team, make_job: Callable[..., str], spec: JobSpec
) -> None:
    made = [make_job() for _ in range(7)]
    _create(database, other_team, spec)
    seen, cursor = [], None
    while True:
        with database.read() as session:
            page = jobs.list_jobs(session, team_id=team.id, limit=3, cursor=cursor)
        seen += [job.id for job in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == made[::-1]


def test_list_filters_by_status_and_name(
    database: Database, team: Team, make_job: Callable[..., str], spec: JobSpec
) -> None:
    queued = make_job()
    cancelled = make_job()
    other = make_job(spec=spec.model_copy(update={"name": "other"}))
    with database.transaction() as session:
        jobs.request_cancel(session, team_id=team.id, job_id=cancelled)
    with database.read() as session:
        by_status = jobs.list_jobs(session, team_id=team.id, status="cancelled")
        by_name = jobs.list_jobs(session, team_id=team.id, name="tiny")
    assert [job.id for job in by_status.items] == [cancelled]
    assert {job.id for job in by_name.items} == {queued, cancelled} and other


@pytest.mark.parametrize("cursor", ["garbage!", "WzEsMl0", "WyJub3QgYSB0aW1lIiwiaWQiXQ"])
def test_a_forged_cursor_is_invalid_input(database: Database, team: Team, cursor: str) -> None:
    with database.read() as session, pytest.raises(InvalidInput) as raised:
        jobs.list_jobs(session, team_id=team.id, cursor=cursor)
    assert raised.value.field == "cursor"


def test_cancel_queued_running_and_finished_jobs(
    database: Database, team: Team, make_job: Callable[..., str], claim: Callable[[str], int]
) -> None:
    queued, running = make_job(), make_job()
    attempt = claim(running)
    with database.transaction() as session:
        cancelled = jobs.request_cancel(session, team_id=team.id, job_id=queued)
        flagged = jobs.request_cancel(session, team_id=team.id, job_id=running)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    assert flagged.status == "running" and flagged.cancel_requested
    with database.transaction() as session:
        leases.finish_job(session, job_id=running, attempt=attempt, status="cancelled")
        again = jobs.request_cancel(session, team_id=team.id, job_id=running)
    assert again.status == "cancelled"


def test_queue_quota_refuses_new_jobs_but_not_replays(
    database: Database, team: Team, spec: JobSpec
) -> None:
    _create(database, team, spec, idempotency_key="a", request_hash="h", max_queued=2)
    _create(database, team, spec, max_queued=2)
    with pytest.raises(QuotaExceeded):
        _create(database, team, spec, max_queued=2)
    replay = _create(database, team, spec, idempotency_key="a", request_hash="h", max_queued=2)
    assert not replay.created


def test_parent_must_be_a_job_of_the_team(
    database: Database, team: Team, other_team: Team, spec: JobSpec
) -> None:
    parent = _create(database, team, spec).job
    child = _create(database, team, spec, parent_id=parent.id).job
    assert child.parent_id == parent.id
    with pytest.raises(NotFound):
        _create(database, other_team, spec, parent_id=parent.id)


def test_counts(
    database: Database, team: Team, make_job: Callable[..., str], claim: Callable[[str], int]
) -> None:
    make_job()
    claim(make_job())
    with database.read() as session:
        assert jobs.team_counts(session, team_id=team.id) == jobs.TeamCounts(queued=1, running=1)
        counts = jobs.count_by_status(session)
    assert counts == {"queued": 1, "running": 1, "succeeded": 0, "failed": 0, "cancelled": 0,
                      "diverged": 0}
