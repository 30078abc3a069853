"""POST/GET /v1/jobs and cancel: the job's shape, validation naming the field, the caps, the
Idempotency-Key, paging, and commit-then-publish."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from gradlab_contract.models import Job, JobPage, Problem

from store.db import Database
from tests.service.support import BOTH_BACKENDS, PROBLEM_JSON, SPIRAL, JsonDict, count_rows

pytestmark = pytest.mark.usefixtures("client")


def problem_of(response: Any, status: int) -> Problem:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    return Problem.model_validate(response.json())


@BOTH_BACKENDS
def test_submit_returns_the_queued_job_and_publishes_its_id(
    client: TestClient, auth: dict[str, str], published: Callable[[], list[str]]
) -> None:
    response = client.post("/v1/jobs", json=SPIRAL, headers=auth)
    assert response.status_code == 201, response.text
    job = Job.model_validate(response.json())
    assert (job.status, job.attempt, job.name, job.error) == ("queued", 0, "tiny", None)
    assert job.spec.model.hidden == [16] and job.spec.training.steps == 20
    assert job.progress.step == 0 and job.progress.total_steps == 20
    assert job.created_at.tzinfo is not None and job.started_at is None
    assert response.headers["location"] == f"/v1/jobs/{job.id}"
    assert published() == [job.id]
    assert client.get(f"/v1/jobs/{job.id}", headers=auth).json() == response.json()


def test_total_steps_of_an_epoch_spec_come_from_the_estimate(
    submit: Callable[..., JsonDict],
) -> None:
    # spiral: 3 classes x 500 points, 20% validation -> 1200 training rows, 64 per batch.
    job = submit(training={"epochs": 2})
    assert job["progress"]["total_steps"] == 2 * 19


@pytest.mark.parametrize(
    ("overrides", "field", "needle"),
    [
        ({"model": {"init": {"scheme": "he"}}}, "model.init.scheme", "'he' is not one of"),
        ({"model": {"activation": "swish"}}, "model.activation", "is not one of"),
        ({"optimizer": {"lr": -1}}, "optimizer.lr", "greater than 0"),
        ({"team": "other"}, "team", "unknown field"),
        ({"data": {"dataset": "imagenet"}}, "data.dataset", "'imagenet' is not one of"),
        ({"data": {"dataset": "spiral", "options": {"noise": -1}}}, "data.options.noise",
         "greater than or equal to 0"),
        ({"training": {"steps": 5, "epochs": 2}}, "training.steps", "exactly one"),
        ({"model": {"activation": "maxout", "hidden": [8, 7]}}, "model.hidden.1", "even"),
        ({"model": {"kind": "cnn"}}, "model.conv", "at least one conv"),
        ({"data": {"dataset": "spiral", "augment": {"hflip": True}}}, "data.augment", "noise_std"),
        ({"data": {"dataset": "digits"}, "model": {"kind": "embedding_mlp"}}, "model.kind",
         "categorical"),
        ({"data": None}, "data", "valid dictionary"),
    ],
)
def test_a_bad_spec_is_422_naming_the_field(
    client: TestClient, auth: dict[str, str], database: Database,
    overrides: dict[str, Any], field: str, needle: str,
) -> None:
    response = client.post("/v1/jobs", json={**SPIRAL, **overrides}, headers=auth)
    problem = problem_of(response, 422)
    assert problem.field == field and problem.errors[0].field == field
    assert needle in (problem.detail or ""), problem
    assert count_rows(database, "jobs") == 0


def test_a_body_that_is_not_json_is_422_on_the_body(
    client: TestClient, auth: dict[str, str]
) -> None:
    response = client.post("/v1/jobs", content=b"{not json",
                           headers={**auth, "Content-Type": "application/json"})
    assert problem_of(response, 422).field == "body"


@pytest.mark.parametrize(
    ("overrides", "field", "detail"),
    [
        ({"model": {"hidden": [4096, 4096]}}, "model.hidden",
         "the model has 16,805,891 parameters; the limit is 100,000"),
        ({"training": {"steps": 20_000}}, "training.steps", "the job runs 20,000 steps"),
        ({"training": {"epochs": 1000}}, "training.epochs", "the job runs 19,000 steps"),
        ({"training": {"steps": 5, "batch_size": 1024}}, "training.batch_size",
         "the batch size is 1,024"),
        ({"telemetry": {"bins": 1000}}, "telemetry.bins",
         "histograms have 1,000 bins; the limit is 128"),
        ({"data": {"dataset": "digits"}, "model": {"kind": "cnn", "hidden": [],
          "conv": [{"channels": 4, "kernel": 3, "padding": 0, "pool": "max"}] * 3}},
         "model.conv.1", "shrinks"),
    ],
)
def test_a_spec_over_a_cap_is_422_with_the_estimate_and_makes_no_job(
    client: TestClient, auth: dict[str, str], database: Database,
    published: Callable[[], list[str]], overrides: dict[str, Any], field: str, detail: str,
) -> None:
    response = client.post("/v1/jobs", json={**SPIRAL, **overrides}, headers=auth)
    problem = problem_of(response, 422)
    assert problem.field == field
    assert problem.code == ("invalid_spec" if "conv" in field else "limit_exceeded")
    assert detail in (problem.detail or "")
    assert count_rows(database, "jobs") == 0 and published() == []


def test_activation_memory_is_capped(
    client: TestClient, auth: dict[str, str], app_settings: Any
) -> None:
    app_settings.max_activation_bytes = 1000
    problem = problem_of(client.post("/v1/jobs", json=SPIRAL, headers=auth), 422)
    assert problem.field == "training.batch_size" and "bytes of activations" in problem.detail


@BOTH_BACKENDS
def test_idempotency_key_replays_the_job_and_refuses_another_body(
    client: TestClient, auth: dict[str, str], database: Database,
    published: Callable[[], list[str]],
) -> None:
    headers = {**auth, "Idempotency-Key": "abc-1"}
    first = client.post("/v1/jobs", json=SPIRAL, headers=headers)
    # Same spec, spelled differently (an explicit default, other key order): the same request.
    same = {"training": {"steps": 20}, "model": {"hidden": [16], "activation": "relu"},
            "data": {"dataset": "spiral"}, "name": "tiny"}
    again = client.post("/v1/jobs", json=same, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    changed = client.post("/v1/jobs", json={**SPIRAL, "name": "other"}, headers=headers)
    problem = problem_of(changed, 409)
    assert (problem.code, problem.field) == ("conflict", "Idempotency-Key")
    assert count_rows(database, "jobs") == 1 and published() == [first.json()["id"]]


def test_quota_of_queued_jobs_is_429_with_retry_after(
    client: TestClient, auth: dict[str, str], app_settings: Any,
    submit: Callable[..., JsonDict],
) -> None:
    app_settings.max_queued_jobs_per_team = 2
    submit(), submit()
    response = client.post("/v1/jobs", json=SPIRAL, headers=auth)
    assert problem_of(response, 429).code == "quota_exceeded"
    assert response.headers["retry-after"]


def test_a_failed_publish_still_answers_201_and_keeps_the_job_queued(
    client: TestClient, auth: dict[str, str], broker_dir: Any, database: Database,
) -> None:
    (broker_dir / "queue").rmdir()  # the filesystem transport cannot write the message
    response = client.post("/v1/jobs", json=SPIRAL, headers=auth)
    assert response.status_code == 201 and response.json()["status"] == "queued"
    assert count_rows(database, "jobs") == 1


@BOTH_BACKENDS
def test_list_filters_and_pages_with_a_cursor(
    client: TestClient, auth: dict[str, str], submit: Callable[..., JsonDict]
) -> None:
    ids = [submit(name=f"run{index % 2}")["id"] for index in range(5)]
    client.post(f"/v1/jobs/{ids[0]}/cancel", headers=auth)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = JobPage.model_validate(client.get("/v1/jobs", params=params, headers=auth).json())
        seen += [job.id for job in page.items]
        if not (cursor := page.next_cursor):
            break
    assert seen == ids[::-1]  # newest first, each once
    by_name = client.get("/v1/jobs", params={"name": "run1"}, headers=auth).json()["items"]
    assert [job["id"] for job in by_name] == [ids[3], ids[1]]
    cancelled = client.get("/v1/jobs", params={"status": "cancelled"}, headers=auth).json()
    assert [job["id"] for job in cancelled["items"]] == [ids[0]]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "limit"), ({"limit": 201}, "limit"), ({"status": "paused"}, "status"),
     ({"cursor": "garbage"}, "cursor")],
)
def test_bad_list_parameters_are_422_naming_them(
    client: TestClient, auth: dict[str, str], params: dict[str, Any], field: str
) -> None:
    response = client.get("/v1/jobs", params=params, headers=auth)
    assert problem_of(response, 422).field == field


@BOTH_BACKENDS
def test_cancel_a_queued_job_at_once_and_flag_a_running_one(
    client: TestClient, auth: dict[str, str], submit: Callable[..., JsonDict],
    claim: Callable[[str], int],
) -> None:
    queued, running = submit()["id"], submit()["id"]
    claim(running)
    response = client.post(f"/v1/jobs/{queued}/cancel", headers=auth)
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled" and response.json()["finished_at"]
    flagged = client.post(f"/v1/jobs/{running}/cancel", headers=auth).json()
    assert (flagged["status"], flagged["cancel_requested"]) == ("running", True)
    assert flagged["attempt"] == 1 and flagged["worker"] == "w1"
    again = client.post(f"/v1/jobs/{queued}/cancel", headers=auth)
    assert again.status_code == 202 and again.json() == response.json()
