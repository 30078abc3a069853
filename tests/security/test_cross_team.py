"""OWASP API1 (broken object level authorization): for every route with an id in its path,
another team's id answers exactly like an unknown id (404), and changes nothing: no row of any
table, no message on the broker. POST routes (cancel, remedy, ...) included.

Ids are made through the API by the owning team. A route with a kind of id this file cannot make
yet fails with a message saying what to add to FACTORIES."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.testclient import TestClient

from store import findings, leases, orm
from store.db import Database
from tests.security.conftest import Snapshot
from tests.security.routes import PUBLIC, AppRoute, operations
from tests.service.support import PROBLEM_JSON, SPIRAL, JsonDict

# Bodies that the owning team could send: the 404 must not depend on the body being wrong.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/jobs/{job_id}/remedy"): {"codes": ["symmetry"]},
    ("POST", "/v1/jobs/{job_id}/heal"): {"max_rounds": 1},
}
SYMMETRY = {"code": "symmetry", "severity": "error", "layer": "fc1", "step": 20,
            "title": "The units of fc1 are identical", "detail": "zeros init",
            "remedy": {"model.init.scheme": "kaiming_normal"}}
STUDY = {"base": SPIRAL, "grid": {"model.activation": ["relu", "tanh"]}}


@dataclass(frozen=True)
class Owner:
    """The team that owns the ids, and how to reach its store."""

    client: TestClient
    auth: dict[str, str]
    database: Database
    claim: Callable[[str], int]

    def post(self, path: str, body: Any) -> str:
        response = self.client.post(path, json=body, headers=self.auth)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


def _jobs(owner: Owner) -> list[str]:
    """A queued job, a running one, and a finished one with a finding that has a remedy."""
    queued, running, finished = (owner.post("/v1/jobs", SPIRAL) for _ in range(3))
    owner.claim(running)
    attempt = owner.claim(finished)
    with owner.database.transaction() as session:
        findings.replace_findings(session, job_id=finished, attempt=attempt, findings=[SYMMETRY],
                                  final=True)
        leases.finish_job(session, job_id=finished, attempt=attempt, status="succeeded")
        # Artifact rows for every one of them, so the artifact routes have something to find
        # whichever job they are paired with (rows only: the answers are what is compared).
        team_id = session.get(orm.Job, finished).team_id  # type: ignore[union-attr]
        session.add_all(
            orm.Artifact(job_id=job_id, team_id=team_id, name=name, kind="model_card", key=name,
                         size=0, sha256="0" * 64)
            for job_id in (queued, running, finished) for name in _names(owner)
        )
    return [queued, running, finished]


def _studies(owner: Owner) -> list[str]:
    return [owner.post("/v1/studies", STUDY)]


def _datasets(owner: Owner) -> list[str]:
    rng = np.random.default_rng(0)
    content = io.BytesIO()
    np.savez(content, x=rng.normal(size=(40, 3)), y=rng.integers(0, 2, 40))
    response = owner.client.post(
        "/v1/datasets", files={"file": ("d.npz", content.getvalue(), "application/octet-stream")},
        headers=owner.auth)
    assert response.status_code == 201, response.text
    return [str(response.json()["id"])]


def _names(owner: Owner) -> list[str]:
    # A metric series' name and an artifact's (_jobs records one of that name for each job):
    # a name a job of either team could have, so the job decides the 404.
    return ["train_loss"]


def _webhooks(owner: Owner) -> list[str]:
    return [owner.post("/v1/webhooks", {"url": "https://hooks.example.com/gradlab",
                                        "events": ["job.finished"]})]


def _heals(owner: Owner) -> list[str]:
    return [owner.post(f"/v1/jobs/{owner.post('/v1/jobs', SPIRAL)}/heal", {"max_rounds": 1})]


FACTORIES: dict[str, Callable[[Owner], list[str]]] = {
    "job_id": _jobs, "study_id": _studies, "dataset_id": _datasets, "name": _names,
    "heal_id": _heals, "webhook_id": _webhooks,
}


def _id_routes(app: FastAPI) -> list[tuple[str, AppRoute]]:
    return [(method, route) for method, route in operations(app)
            if route.params and route.path not in PUBLIC]


def _make_ids(owner: Owner, routes: list[tuple[str, AppRoute]]) -> dict[str, list[str]]:
    params = {param for _, route in routes for param in route.params}
    missing = params - set(FACTORIES)
    assert not missing, f"add a factory for {sorted(missing)} to FACTORIES"
    return {param: FACTORIES[param](owner) for param in sorted(params)}


def _ids(route: AppRoute, made: dict[str, list[str]]) -> list[dict[str, str]]:
    rounds = max(len(made[param]) for param in route.params)
    return [{param: made[param][index % len(made[param])] for param in route.params}
            for index in range(rounds)]


def test_another_teams_id_is_404_and_changes_nothing_on_every_route(
    app: FastAPI, client: TestClient, auth: dict[str, str], other_auth: dict[str, str],
    database: Database, claim: Callable[[str], int], snapshot: Callable[[], Snapshot],
) -> None:
    routes = _id_routes(app)
    made = _make_ids(Owner(client, auth, database, claim), routes)
    before = snapshot()
    for method, route in routes:
        body = BODIES.get((method, route.path))
        for ids in _ids(route, made):
            theirs = client.request(method, route.url(**ids), json=body, headers=other_auth)
            unknown = client.request(method, route.url(), json=body, headers=other_auth)
            assert theirs.status_code == unknown.status_code == 404, (method, route.path,
                                                                      theirs.text)
            assert theirs.headers["content-type"] == PROBLEM_JSON
            assert theirs.json()["code"] == "not_found"
            # Apart from naming the id asked for, the answer is the unknown id's.
            text = theirs.text
            for value in ids.values():
                text = text.replace(value, "no-such-id")
            assert text == unknown.text
            assert snapshot() == before, (method, route.path)
    assert len(routes) >= 7


def test_the_owner_reaches_every_id_route(
    app: FastAPI, client: TestClient, auth: dict[str, str], database: Database,
    claim: Callable[[str], int],
) -> None:
    """The ids of the matrix above are real: their team gets an answer that is not 404."""
    # DELETE routes last: a deleted job or data set would make the later routes' ids unknown.
    routes = sorted(_id_routes(app), key=lambda found: found[0] == "DELETE")
    made = _make_ids(Owner(client, auth, database, claim), routes)
    for method, route in routes:
        for ids in _ids(route, made):
            body = BODIES.get((method, route.path))
            response = client.request(method, route.url(**ids), json=body, headers=auth)
            assert response.status_code != 404, (method, route.url(**ids), response.text)


def _upload(client: TestClient, auth: dict[str, str]) -> str:
    import io

    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    np.savez(buffer, x=rng.normal(size=(40, 4)).astype("float32"), y=np.arange(40) % 2)
    response = client.post("/v1/datasets", files={"file": ("d.npz", buffer.getvalue())},
                           headers=auth)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_another_teams_upload_in_a_spec_is_refused_like_an_unknown_one(
    client: TestClient, auth: dict[str, str], other_auth: dict[str, str],
    snapshot: Callable[[], Snapshot],
) -> None:
    theirs = _upload(client, auth)
    before = snapshot()
    answers: list[JsonDict] = []
    for dataset in (theirs, "upload:nosuchupload"):
        response = client.post("/v1/jobs", json={**SPIRAL, "data": {"dataset": dataset}},
                               headers=other_auth)
        assert response.status_code == 422, response.text
        answers.append(response.json())
    assert [answer["field"] for answer in answers] == ["data.dataset"] * 2
    assert [answer["code"] for answer in answers] == ["invalid_spec"] * 2
    assert snapshot() == before
    listed = client.get("/v1/datasets", headers=other_auth).json()
    assert theirs not in {item["id"] for item in listed}
