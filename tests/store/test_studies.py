"""Creating a study with an idempotency key, as jobs are created: a replay returns the first
study and no jobs to publish, another body is a conflict, and racing requests make one study."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from gradlab_contract.spec import JobSpec

from store import studies
from store.db import Database
from store.errors import Conflict
from store.teams import Team
from tests.store.conftest import Together


def _create(database: Database, team: Team, spec: JobSpec, **keywords: object
            ) -> studies.CreatedStudy:
    runs = [studies.NewRun(variant, 0, spec, 100) for variant in range(2)]
    with database.transaction() as session:
        return studies.create_study(
            session, team_id=team.id, name="s", template=None, request={}, varied=["x"],
            variants=[{"x": 1}, {"x": 2}], runs=runs, **keywords,  # type: ignore[arg-type]
        )


def test_a_replay_returns_the_study_and_no_jobs_to_publish(
    database: Database, team: Team, spec: JobSpec, count_rows: Callable[[str], int]
) -> None:
    first = _create(database, team, spec, idempotency_key="k", request_hash="h")
    again = _create(database, team, spec, idempotency_key="k", request_hash="h")
    assert first.created and len(first.job_ids) == 2
    assert again == studies.CreatedStudy(first.study, [], created=False)
    assert (count_rows("studies"), count_rows("jobs")) == (1, 2)
    with pytest.raises(Conflict) as raised:
        _create(database, team, spec, idempotency_key="k", request_hash="other")
    assert raised.value.field == "Idempotency-Key"


def test_keys_are_per_team(
    database: Database, team: Team, other_team: Team, spec: JobSpec
) -> None:
    mine = _create(database, team, spec, idempotency_key="k", request_hash="h")
    theirs = _create(database, other_team, spec, idempotency_key="k", request_hash="h")
    assert theirs.created and theirs.study.id != mine.study.id


@pytest.mark.parametrize("max_queued", [None, 100])  # with the quota, the team's lock is taken
def test_concurrent_creates_with_one_key_make_one_study(
    database: Database, team: Team, spec: JobSpec, count_rows: Callable[[str], int],
    max_queued: int | None, together: Together,
) -> None:
    results = together(
        lambda: _create(database, team, spec, idempotency_key="k", request_hash="h",
                        max_queued=max_queued),
        6,
    )
    assert len({result.study.id for result in results}) == 1
    assert sum(result.created for result in results) == 1
    assert (count_rows("studies"), count_rows("jobs")) == (1, 2)


def test_a_create_racing_an_uncommitted_one_waits_and_returns_it(
    database: Database, team: Team, spec: JobSpec
) -> None:
    """The second insert hits the unique constraint (PostgreSQL) or the write lock (SQLite)."""
    results: list[studies.CreatedStudy] = []
    racer = threading.Thread(target=lambda: results.append(
        _create(database, team, spec, idempotency_key="k", request_hash="h")))
    with database.transaction() as session:
        first = studies.create_study(
            session, team_id=team.id, name="s", template=None, request={}, varied=["x"],
            variants=[{"x": 1}, {"x": 2}], runs=[studies.NewRun(v, 0, spec, 100) for v in (0, 1)],
            idempotency_key="k", request_hash="h",
        )
        racer.start()
        racer.join(timeout=0.3)
        assert racer.is_alive(), "the racer should wait for the first transaction"
    racer.join(timeout=10)
    assert results == [studies.CreatedStudy(first.study, [], created=False)]
