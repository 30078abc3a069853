"""POST /v1/jobs/{id}/heal, GET /v1/heals/{id}, cancel: the heal's rounds driven through the API,
with each round's job finished as a worker finishes it (claim, fenced findings, finish)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from gradlab_contract.models import Heal, Job

from store import findings, leases
from store.db import Database
from tests.service.support import JsonDict

SYMMETRY: dict[str, Any] = {
    "code": "symmetry", "severity": "error", "title": "identical units", "detail": "zeros",
    "onset_step": 1, "remedy": {"model.init.scheme": "kaiming_normal"},
}
NO_LEARNING: dict[str, Any] = {
    "code": "no_learning", "severity": "error", "title": "stuck", "detail": "ln(3)",
    "onset_step": 1, "caused_by": "symmetry", "remedy": {"model.init.scheme": "kaiming_normal"},
}
NOT_CONVERGED: dict[str, Any] = {
    "code": "not_converged", "severity": "warning", "title": "still falling", "detail": "d",
    "onset_step": 300, "remedy": {"training.steps": 4000},
}


@pytest.fixture
def end(database: Database, claim: Callable[[str], int]) -> Callable[..., None]:
    def end_(job_id: str, found: list[Any], best: float, status: str = "succeeded") -> None:
        attempt = claim(job_id)
        with database.transaction() as session:
            findings.replace_findings(session, job_id=job_id, attempt=attempt, findings=found,
                                      final=True)
            leases.finish_job(session, job_id=job_id, attempt=attempt, status=status,
                              summary={"best_val_loss": best})

    return end_


def heal_of(client: TestClient, auth: dict[str, str], heal_id: str) -> Heal:
    response = client.get(f"/v1/heals/{heal_id}", headers=auth)
    assert response.status_code == 200, response.text
    return Heal.model_validate(response.json())


def test_a_heal_remedies_the_root_cause_until_the_job_is_healthy(
    client: TestClient, auth: dict[str, str], submit: Callable[..., JsonDict],
    end: Callable[..., None], published: Callable[[], list[str]],
) -> None:
    job = submit(model={"hidden": [16], "init": {"scheme": "zeros"}})
    response = client.post(f"/v1/jobs/{job['id']}/heal", json={"max_rounds": 2}, headers=auth)
    assert response.status_code == 201, response.text
    heal = Heal.model_validate(response.json())
    assert heal.status == "running" and heal.current_job_id == job["id"]  # waits for the job
    again = client.post(f"/v1/jobs/{job['id']}/heal", json={"max_rounds": 2}, headers=auth)
    assert again.status_code == 200 and again.json()["id"] == heal.id  # one heal per job

    end(job["id"], [SYMMETRY, NO_LEARNING], best=1.0986)
    heal = heal_of(client, auth, heal.id)
    assert [r.round for r in heal.rounds] == [0, 1]
    first, second = heal.rounds
    assert first.findings == ["no_learning", "symmetry"] and first.causes == ["symmetry"]
    assert second.remedied == ["symmetry"]
    assert second.changes == {"model.init.scheme": "kaiming_normal"}
    assert published()[-1] == second.job_id == heal.current_job_id
    child = Job.model_validate(client.get(f"/v1/jobs/{second.job_id}", headers=auth).json())
    assert child.parent_id == job["id"] and child.spec.model.init.scheme == "kaiming_normal"
    assert child.spec.diagnosis.heal is None  # a round does not start heals of its own
    assert heal_of(client, auth, heal.id).rounds == heal.rounds  # reading again adds nothing

    end(second.job_id, [], best=0.2)
    heal = heal_of(client, auth, heal.id)
    assert heal.status == "healed" and heal.healthy_job_id == second.job_id
    assert heal.rounds[1].outcome == "cured" and heal.finished_at is not None
    assert heal.training_steps == child.progress.total_steps
    by_job = client.get("/v1/heals", params={"job_id": job["id"]}, headers=auth).json()
    assert [(h["id"], h["status"]) for h in by_job] == [(heal.id, "healed")]
    assert [h["id"] for h in client.get("/v1/heals", headers=auth).json()] == [heal.id]


def test_a_heal_stops_when_its_rounds_are_spent_and_never_trains_longer(
    client: TestClient, auth: dict[str, str], submit: Callable[..., JsonDict],
    end: Callable[..., None],
) -> None:
    job = submit(model={"hidden": [16], "init": {"scheme": "zeros"}})
    end(job["id"], [SYMMETRY, NOT_CONVERGED], best=1.0986)
    response = client.post(f"/v1/jobs/{job['id']}/heal", json={"max_rounds": 1}, headers=auth)
    heal = Heal.model_validate(response.json())
    assert len(heal.rounds) == 2  # the job had ended: the first round started at once
    assert heal.rounds[1].changes == {"model.init.scheme": "kaiming_normal"}  # no steps change
    end(heal.current_job_id, [SYMMETRY], best=1.0986)
    heal = heal_of(client, auth, heal.id)
    assert heal.status == "exhausted" and "symmetry" in (heal.reason or "")
    assert heal.rounds[1].outcome == "not_cured"


def test_a_heal_without_any_remedy_fails_with_the_reason(
    client: TestClient, auth: dict[str, str], submit: Callable[..., JsonDict],
    end: Callable[..., None],
) -> None:
    job = submit()
    end(job["id"], [{**NO_LEARNING, "caused_by": None, "remedy": None}], best=1.0986)
    heal = Heal.model_validate(client.post(f"/v1/jobs/{job['id']}/heal", json={},
                                           headers=auth).json())
    assert heal.status == "failed" and "no remedy" in (heal.reason or "")


def test_cancelling_a_heal_cancels_its_current_job(
    client: TestClient, auth: dict[str, str], submit: Callable[..., JsonDict],
) -> None:
    job = submit()
    heal = client.post(f"/v1/jobs/{job['id']}/heal", json={}, headers=auth).json()
    response = client.post(f"/v1/heals/{heal['id']}/cancel", headers=auth)
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    assert client.get(f"/v1/jobs/{job['id']}", headers=auth).json()["status"] == "cancelled"
    assert client.post(f"/v1/heals/{heal['id']}/cancel", headers=auth).status_code == 202


def test_heals_are_the_teams_own_and_rounds_are_bounded(
    client: TestClient, auth: dict[str, str], other_key: str, submit: Callable[..., JsonDict],
) -> None:
    job = submit()
    heal = client.post(f"/v1/jobs/{job['id']}/heal", json={}, headers=auth).json()
    other = {"Authorization": f"Bearer {other_key}"}
    assert client.get(f"/v1/heals/{heal['id']}", headers=other).status_code == 404
    assert client.post(f"/v1/jobs/{job['id']}/heal", json={}, headers=other).status_code == 404
    too_many = client.post(f"/v1/jobs/{job['id']}/heal", json={"max_rounds": 99}, headers=auth)
    assert too_many.status_code == 422
    assert client.get("/v1/heals", params={"job_id": job["id"]}, headers=other).json() == []
