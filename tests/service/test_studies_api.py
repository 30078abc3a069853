"""/v1/studies: a grid becomes one job per variant and seed, in one transaction; an invalid
value is refused naming it, before anything is created; another team's study is 404."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from store import orm
from store.db import Database
from tests.service.support import BOTH_BACKENDS, SPIRAL, JsonDict, count_rows

GRID = {"model.activation": ["relu", "tanh"], "optimizer.lr": [0.01, 0.1]}


def create(client: TestClient, auth: dict[str, str], **body: object) -> JsonDict:
    response = client.post("/v1/studies", json={"base": SPIRAL, "grid": GRID, **body},
                           headers=auth)
    assert response.status_code == 201, response.text
    study: JsonDict = response.json()
    return study


def queues(broker_dir: Path) -> list[str]:
    """The queue of each message in the filesystem broker (kombu writes it in the name)."""
    return sorted(path.name.split(".")[-2] for path in (broker_dir / "queue").glob("*.msg"))


@BOTH_BACKENDS
def test_a_grid_makes_one_job_per_variant_and_seed_on_the_study_queue(
    client: TestClient, auth: dict[str, str], database: Database, broker_dir: Path,
    published: Callable[[], list[str]],
) -> None:
    study = create(client, auth, seeds=[1, 2])
    assert (study["variants"], study["jobs"]) == (4, 8)
    assert study["counts"] == {"queued": 8} and study["varied"] == list(GRID)
    with database.read() as session:
        rows = list(session.scalars(select(orm.Job).where(orm.Job.study_id == study["id"])))
    assert len(rows) == 8 and sorted(published()) == sorted(row.id for row in rows)
    assert queues(broker_dir) == ["gradlab-studies"] * 8
    specs = {(r.spec["model"]["activation"], r.spec["optimizer"]["lr"], r.spec["training"]["seed"])
             for r in rows}
    assert len(specs) == 8


def test_an_invalid_grid_value_is_refused_by_name_and_nothing_is_created(
    client: TestClient, auth: dict[str, str], database: Database,
    published: Callable[[], list[str]],
) -> None:
    cases = [
        ({"model.init.scheme": ["xavier_normal", "glorot"]}, "grid.model.init.scheme[1]"),
        ({"model.activaton": ["relu"]}, "grid.model.activaton[0]"),
        ({"optimizer.lr": [0.1, -1.0]}, "grid.optimizer.lr[1]"),
    ]
    for grid, field in cases:
        response = client.post("/v1/studies", json={"base": SPIRAL, "grid": grid}, headers=auth)
        assert response.status_code == 422, response.text
        assert response.json()["field"] == field, response.json()
    bad_base = client.post("/v1/studies", json={"base": {**SPIRAL, "model": {"hidden": "x"}},
                                                "grid": GRID}, headers=auth)
    assert bad_base.json()["field"] == "base.model.hidden"
    assert count_rows(database, "jobs") == 0 and count_rows(database, "studies") == 0
    assert published() == []


def test_a_study_over_the_cap_is_refused(
    app: FastAPI, client: TestClient, auth: dict[str, str], database: Database
) -> None:
    app.state.services.settings.max_study_jobs = 7
    response = client.post("/v1/studies", json={"base": SPIRAL, "grid": GRID, "seeds": [1, 2]},
                           headers=auth)
    assert response.status_code == 422 and response.json()["code"] == "limit_exceeded"
    assert count_rows(database, "jobs") == 0


def test_a_random_search_samples_its_space(client: TestClient, auth: dict[str, str]) -> None:
    search = {"n": 5, "seed": 3, "space": {"optimizer.lr": {"low": 1e-4, "high": 1e-1,
                                                            "log": True},
                                           "model.activation": ["relu", "tanh"]}}
    study = create(client, auth, grid=None, search=search)
    rows = client.get(f"/v1/studies/{study['id']}/compare", headers=auth).json()["rows"]
    assert len(rows) == 5
    assert all(1e-4 <= row["values"]["optimizer.lr"] <= 1e-1 for row in rows)
    bad = {**search, "space": {"optimizer.lr": {"low": -1, "high": 1}}}
    response = client.post("/v1/studies", json={"base": SPIRAL, "search": bad}, headers=auth)
    assert response.json()["field"] == "search.space.optimizer.lr[0]"


@BOTH_BACKENDS
def test_list_get_and_cancel(client: TestClient, auth: dict[str, str]) -> None:
    first, second = create(client, auth), create(client, auth, name="second")
    page = client.get("/v1/studies", params={"limit": 1}, headers=auth).json()
    assert [item["id"] for item in page["items"]] == [second["id"]]
    rest = client.get("/v1/studies", params={"cursor": page["next_cursor"]}, headers=auth).json()
    assert [item["id"] for item in rest["items"]] == [first["id"]]
    cancelled = client.post(f"/v1/studies/{first['id']}/cancel", headers=auth)
    assert cancelled.status_code == 202 and cancelled.json()["counts"] == {"cancelled": 4}
    shown = client.get(f"/v1/studies/{second['id']}", headers=auth).json()
    assert shown["counts"] == {"queued": 4}


def test_another_teams_study_is_404_on_every_route(
    client: TestClient, auth: dict[str, str], other_key: str
) -> None:
    study = create(client, auth)
    other = {"Authorization": f"Bearer {other_key}"}
    for method, suffix in [("GET", ""), ("POST", "/cancel"), ("GET", "/compare")]:
        response = client.request(method, f"/v1/studies/{study['id']}{suffix}", headers=other)
        assert response.status_code == 404, (method, suffix, response.text)
    assert client.get("/v1/studies", headers=other).json()["items"] == []
    assert client.get(f"/v1/studies/{study['id']}", headers=auth).json()["counts"] == {
        "queued": 4}


def test_templates_are_listed_and_each_expands(
    client: TestClient, auth: dict[str, str]
) -> None:
    found = client.get("/v1/studies/templates", headers=auth).json()
    assert {t["name"] for t in found} == {"init_x_activation", "optimizers_on_ctr",
                                          "batch_norm_x_lr", "augmentation_small_data",
                                          "residual_vs_plain"}
    for template in found:
        response = client.post("/v1/studies", headers=auth, json={
            "template": template["name"], "overrides": {"training.steps": 20}})
        assert response.status_code == 201, (template["name"], response.text)
        assert response.json()["jobs"] == template["jobs"]
    unknown = client.post("/v1/studies", json={"template": "nope"}, headers=auth)
    assert unknown.json()["field"] == "template"


@BOTH_BACKENDS
def test_queued_study_jobs_have_their_own_team_quota(
    app: FastAPI, client: TestClient, auth: dict[str, str], database: Database
) -> None:
    app.state.services.settings.max_queued_study_jobs_per_team = 6
    create(client, auth)
    response = client.post("/v1/studies", json={"base": SPIRAL, "grid": GRID}, headers=auth)
    assert response.status_code == 429 and response.json()["code"] == "quota_exceeded"
    assert count_rows(database, "jobs") == 4
    assert client.post("/v1/jobs", json=SPIRAL, headers=auth).status_code == 201


@BOTH_BACKENDS
def test_an_idempotency_key_replays_the_study_and_refuses_another_body(
    client: TestClient, auth: dict[str, str], other_key: str, database: Database,
    published: Callable[[], list[str]],
) -> None:
    headers = {**auth, "Idempotency-Key": "study-1"}
    first = client.post("/v1/studies", json={"base": SPIRAL, "grid": GRID}, headers=headers)
    # The same request spelled differently (an explicit default in the base, other key order).
    same = {"grid": GRID, "base": {**SPIRAL, "model": {"activation": "relu", "hidden": [16]}}}
    again = client.post("/v1/studies", json=same, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert again.json() == first.json()
    assert again.headers["Location"] == f"/v1/studies/{first.json()['id']}"
    assert count_rows(database, "jobs") == 4 and len(published()) == 4  # no second set of jobs
    changed = client.post("/v1/studies", json={"base": SPIRAL, "grid": GRID, "seeds": [1, 2]},
                          headers=headers)
    assert changed.status_code == 409, changed.text
    assert (changed.json()["code"], changed.json()["field"]) == ("conflict", "Idempotency-Key")
    assert count_rows(database, "studies") == 1 and count_rows(database, "jobs") == 4
    theirs = client.post("/v1/studies", json={"base": SPIRAL, "grid": GRID},
                         headers={"Authorization": f"Bearer {other_key}",
                                  "Idempotency-Key": "study-1"})
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]


def test_a_replayed_study_is_not_refused_by_the_quota_it_filled(
    app: FastAPI, client: TestClient, auth: dict[str, str]
) -> None:
    app.state.services.settings.max_queued_study_jobs_per_team = 4
    headers = {**auth, "Idempotency-Key": "fills-the-quota"}
    first = client.post("/v1/studies", json={"base": SPIRAL, "grid": GRID}, headers=headers)
    again = client.post("/v1/studies", json={"base": SPIRAL, "grid": GRID}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["counts"] == {"queued": 4}
