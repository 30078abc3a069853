"""GET /v1/jobs/{id}/diagnosis and POST /v1/jobs/{id}/remedy: findings written as the worker
writes them (claim, then fenced replace_findings), read and acted on through the API."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from gradlab_contract.models import Diagnosis, Job

from store import findings, leases, orm, series, snapshots
from store.db import Database
from store.errors import StaleAttempt
from tests.service.support import PROBLEM_JSON, JsonDict

SYMMETRY: dict[str, Any] = {
    "code": "symmetry", "severity": "error", "layer": "fc1", "step": 20,
    "title": "The units of fc1 are identical", "detail": "zeros init",
    "evidence": {"unit_std": {"fc1": 0.0}}, "suggestion": "kaiming",
    "remedy": {"model.init.scheme": "kaiming_normal"},
}
NO_LEARNING: dict[str, Any] = {
    "code": "no_learning", "severity": "error", "step": 20, "title": "stuck at chance",
    "detail": "ln(3)", "evidence": {"loss": 1.0986}, "remedy": None,
}
NOT_CONVERGED: dict[str, Any] = {
    "code": "not_converged", "severity": "warning", "step": 20, "title": "still falling",
    "detail": "train longer", "remedy": {"training.steps": 40},
}


@pytest.fixture
def job(submit: Callable[..., JsonDict]) -> JsonDict:
    return submit(model={"hidden": [16], "init": {"scheme": "zeros"}})


def write(database: Database, job_id: str, attempt: int, found: list[Any], final: bool) -> None:
    with database.transaction() as session:
        findings.replace_findings(session, job_id=job_id, attempt=attempt, findings=found,
                                  final=final)


def finish(database: Database, job_id: str, attempt: int, status: str = "succeeded") -> None:
    with database.transaction() as session:
        leases.finish_job(session, job_id=job_id, attempt=attempt, status=status)


def diagnosis_of(client: TestClient, auth: dict[str, str], job_id: str) -> Diagnosis:
    response = client.get(f"/v1/jobs/{job_id}/diagnosis", headers=auth)
    assert response.status_code == 200, response.text
    return Diagnosis.model_validate(response.json())


def test_a_queued_job_is_not_diagnosed_yet(
    client: TestClient, auth: dict[str, str], job: JsonDict
) -> None:
    found = diagnosis_of(client, auth, job["id"])
    assert found == Diagnosis(job_id=job["id"], findings=[], final=False, updated_at=None)


def test_live_findings_are_replaced_by_the_final_ones(
    client: TestClient, auth: dict[str, str], database: Database, job: JsonDict,
    claim: Callable[[str], int],
) -> None:
    attempt = claim(job["id"])
    write(database, job["id"], attempt, [NOT_CONVERGED, NO_LEARNING, SYMMETRY], final=False)
    live = diagnosis_of(client, auth, job["id"])
    assert not live.final and live.updated_at is not None
    # Most severe first, causes before symptoms, whatever order they were written in.
    assert [f.code for f in live.findings] == ["symmetry", "no_learning", "not_converged"]
    assert live.findings[0].remedy == {"model.init.scheme": "kaiming_normal"}
    assert live.findings[0].evidence == {"unit_std": {"fc1": 0.0}}
    write(database, job["id"], attempt, [SYMMETRY], final=True)
    finish(database, job["id"], attempt)
    final = diagnosis_of(client, auth, job["id"])
    assert final.final and [f.code for f in final.findings] == ["symmetry"]


def test_a_healthy_final_diagnosis_is_empty_and_final(
    client: TestClient, auth: dict[str, str], database: Database, job: JsonDict,
    claim: Callable[[str], int],
) -> None:
    attempt = claim(job["id"])
    write(database, job["id"], attempt, [NOT_CONVERGED], final=False)
    write(database, job["id"], attempt, [], final=True)
    finish(database, job["id"], attempt)
    found = diagnosis_of(client, auth, job["id"])
    assert found.final and found.findings == [] and found.updated_at is not None


def test_writes_of_a_stale_attempt_are_fenced_out(
    database: Database, job: JsonDict, claim: Callable[[str], int]
) -> None:
    attempt = claim(job["id"])
    finish(database, job["id"], attempt)
    with pytest.raises(StaleAttempt):
        write(database, job["id"], attempt, [SYMMETRY], final=True)


def test_a_job_that_ended_without_a_diagnosis_is_diagnosed_from_the_store(
    client: TestClient, auth: dict[str, str], database: Database, job: JsonDict,
    claim: Callable[[str], int],
) -> None:
    """The reaper failed it, say: the service reads its telemetry and runs the rules itself."""
    attempt = claim(job["id"])
    layers = [{"name": "fc1", "type": "linear", "shape": [16, 2], "parameters": 48, "depth": 0},
              {"name": "out", "type": "linear", "shape": [3, 16], "parameters": 51, "depth": 1}]
    rows = [(step, "train_loss", math.log(3) + 0.001 * (-1) ** step) for step in range(1, 101)]
    rows += [(step, "train_accuracy", 0.33) for step in range(1, 101)]
    with database.transaction() as session:
        snapshots.write_layers(session, job_id=job["id"], attempt=attempt, layers=layers)
        series.write_metrics(session, job_id=job["id"], attempt=attempt, rows=rows)
    finish(database, job["id"], attempt, status="failed")
    found = diagnosis_of(client, auth, job["id"])
    assert found.final
    assert [f.code for f in found.findings] == ["no_learning"]
    assert found.findings[0].evidence["classes"] == 3


@pytest.fixture
def diagnosed(database: Database, job: JsonDict, claim: Callable[[str], int]) -> JsonDict:
    """The zero-init job, finished, with symmetry, no_learning and not_converged findings."""
    attempt = claim(job["id"])
    write(database, job["id"], attempt, [SYMMETRY, NO_LEARNING, NOT_CONVERGED], final=True)
    finish(database, job["id"], attempt)
    return job


def test_remedy_submits_the_fixed_spec_as_a_child_job(
    client: TestClient, auth: dict[str, str], diagnosed: JsonDict,
    published: Callable[[], list[str]],
) -> None:
    response = client.post(f"/v1/jobs/{diagnosed['id']}/remedy",
                           json={"codes": ["symmetry", "not_converged"]}, headers=auth)
    assert response.status_code == 201, response.text
    child = Job.model_validate(response.json())
    assert child.parent_id == diagnosed["id"] and child.status == "queued"
    assert child.spec.model.init.scheme == "kaiming_normal"
    assert child.spec.training.steps == 40
    assert child.spec.model.hidden == [16]  # everything else is the parent's
    assert response.headers["Location"] == f"/v1/jobs/{child.id}"
    assert published()[-1] == child.id


def test_remedy_with_an_idempotency_key_is_made_once(
    client: TestClient, auth: dict[str, str], diagnosed: JsonDict
) -> None:
    url, body = f"/v1/jobs/{diagnosed['id']}/remedy", {"codes": ["symmetry"]}
    headers = {**auth, "Idempotency-Key": "fix-1"}
    first = client.post(url, json=body, headers=headers)
    again = client.post(url, json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]


@pytest.mark.parametrize(
    ("codes", "message"),
    [(["no_such_code"], "not a finding code"),
     (["dead_units"], "not among this job's findings"),
     (["no_learning"], "has no remedy"),
     ([], "at least 1")],
)
def test_remedy_of_codes_it_cannot_apply_is_422_naming_codes(
    client: TestClient, auth: dict[str, str], diagnosed: JsonDict, codes: list[str],
    message: str,
) -> None:
    response = client.post(f"/v1/jobs/{diagnosed['id']}/remedy", json={"codes": codes},
                           headers=auth)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["field"] == "codes"
    assert message in response.json()["detail"]


def test_a_remedy_over_the_limits_is_refused_like_a_submit(
    client: TestClient, auth: dict[str, str], database: Database, job: JsonDict,
    claim: Callable[[str], int],
) -> None:
    attempt = claim(job["id"])
    write(database, job["id"], attempt, [{**NOT_CONVERGED, "remedy": {"training.steps": 10**6}}],
          final=True)
    response = client.post(f"/v1/jobs/{job['id']}/remedy", json={"codes": ["not_converged"]},
                           headers=auth)
    assert response.status_code == 422
    assert response.json()["code"] == "limit_exceeded"
    assert response.json()["field"] == "training.steps"


def test_another_teams_job_has_no_diagnosis_and_no_remedy(
    client: TestClient, other_key: str, diagnosed: JsonDict
) -> None:
    other = {"Authorization": f"Bearer {other_key}"}
    assert client.get(f"/v1/jobs/{diagnosed['id']}/diagnosis", headers=other).status_code == 404
    response = client.post(f"/v1/jobs/{diagnosed['id']}/remedy", json={"codes": ["symmetry"]},
                           headers=other)
    assert response.status_code == 404


def test_onset_and_cause_are_kept_and_symptoms_follow_their_cause(
    client: TestClient, auth: dict[str, str], database: Database, job: JsonDict,
    claim: Callable[[str], int],
) -> None:
    attempt = claim(job["id"])
    symptom = {**NO_LEARNING, "onset_step": 1, "caused_by": "symmetry",
               "remedy": SYMMETRY["remedy"]}
    write(database, job["id"], attempt, [symptom, {**SYMMETRY, "onset_step": 1}], final=True)
    found = diagnosis_of(client, auth, job["id"]).findings
    assert [(f.code, f.onset_step, f.caused_by) for f in found] == [
        ("symmetry", 1, None), ("no_learning", 1, "symmetry")]


def child_of(client: TestClient, auth: dict[str, str], parent: JsonDict) -> Job:
    response = client.post(f"/v1/jobs/{parent['id']}/remedy", json={"codes": ["symmetry"]},
                           headers=auth)
    assert response.status_code == 201, response.text
    return Job.model_validate(response.json())


def end_child(database: Database, claim: Callable[[str], int], child: Job, found: list[Any],
              best_val_loss: float) -> None:
    attempt = claim(child.id)
    write(database, child.id, attempt, found, final=True)
    with database.transaction() as session:
        leases.finish_job(session, job_id=child.id, attempt=attempt, status="succeeded",
                          summary={"best_val_loss": best_val_loss})


def set_parent_best(database: Database, job_id: str, value: float) -> None:
    with database.transaction() as session:
        row = session.get(orm.Job, job_id)
        assert row is not None
        row.summary = {"best_val_loss": value}


def test_a_remedy_job_that_learns_cures_its_parents_finding(
    client: TestClient, auth: dict[str, str], database: Database, diagnosed: JsonDict,
    claim: Callable[[str], int],
) -> None:
    set_parent_best(database, diagnosed["id"], 1.0986)
    child = child_of(client, auth, diagnosed)
    pending = diagnosis_of(client, auth, diagnosed["id"]).findings[0]
    assert [(o.child_id, o.outcome) for o in pending.outcomes] == [(child.id, "pending")]
    end_child(database, claim, child, [], best_val_loss=0.3)
    symmetry = diagnosis_of(client, auth, diagnosed["id"]).findings[0]
    assert symmetry.code == "symmetry"
    (outcome,) = symmetry.outcomes
    assert (outcome.child_id, outcome.outcome, outcome.codes) == (child.id, "cured", ["symmetry"])
    assert (outcome.parent_value, outcome.child_value) == (1.0986, 0.3)
    assert outcome.decided_at is not None


def test_a_remedy_job_with_an_error_left_is_not_cured(
    client: TestClient, auth: dict[str, str], database: Database, diagnosed: JsonDict,
    claim: Callable[[str], int],
) -> None:
    set_parent_best(database, diagnosed["id"], 1.0986)
    child = child_of(client, auth, diagnosed)
    end_child(database, claim, child, [NO_LEARNING], best_val_loss=0.3)
    (outcome,) = diagnosis_of(client, auth, diagnosed["id"]).findings[0].outcomes
    assert outcome.outcome == "not_cured" and "no_learning" in (outcome.reason or "")
