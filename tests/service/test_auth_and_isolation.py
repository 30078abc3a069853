"""Every route but the probes needs a live key, and a team never sees another team's jobs: another
team's job answers exactly like an id that does not exist."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Route

from store import teams
from store.db import Database
from tests.service.support import BOTH_BACKENDS, PROBLEM_JSON, JsonDict

PUBLIC = {"/healthz", "/readyz", "/metrics"}  # /metrics: Prometheus scrapers carry no key


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every API route, with a made-up id in path parameters.

    Read from the OpenAPI document: this FastAPI keeps included routers in app.routes as lazy
    entries without a path, while the document lists every route a client can call.
    """
    found = []
    for template, operations in app.openapi()["paths"].items():
        path = re.sub(r"\{[^}]+\}", "no-such-id", template)
        found += [(method.upper(), path) for method in sorted(operations)]
    return found


def test_the_route_list_is_what_the_api_documents(app: FastAPI) -> None:
    paths = {path for _, path in api_routes(app)}
    assert paths == PUBLIC | {
        "/v1/jobs", "/v1/jobs/no-such-id", "/v1/jobs/no-such-id/cancel",
        "/v1/jobs/no-such-id/metrics", "/v1/jobs/no-such-id/layers",
        "/v1/jobs/no-such-id/metrics/no-such-id/points",
        "/v1/jobs/no-such-id/snapshots", "/v1/catalog", "/v1/datasets",
        "/v1/jobs/no-such-id/diagnosis", "/v1/jobs/no-such-id/remedy",
        "/v1/jobs/no-such-id/heal", "/v1/heals", "/v1/heals/no-such-id",
        "/v1/heals/no-such-id/cancel",
        "/v1/studies", "/v1/studies/templates", "/v1/studies/no-such-id",
        "/v1/studies/no-such-id/cancel", "/v1/studies/no-such-id/compare",
        "/v1/jobs/no-such-id/artifacts", "/v1/jobs/no-such-id/artifacts/no-such-id",
        "/v1/datasets/no-such-id", "/v1/usage",
        "/v1/jobs/no-such-id/events", "/v1/jobs/no-such-id/logs",
        "/v1/studies/no-such-id/events", "/v1/webhooks", "/v1/webhooks/no-such-id",
        "/v1/webhooks/no-such-id/deliveries",
    }
    # Beside the API, app.routes holds only the schema and its viewers, public by design.
    plain = {route.path for route in app.routes if isinstance(route, Route)}
    assert plain == {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer glk_not-a-key", "Bearer ", "Basic dXNlcjpwYXNz", "glk_no-scheme"],
)
def test_every_route_but_the_probes_is_401_without_a_live_key(
    app: FastAPI, client: TestClient, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    for method, path in api_routes(app):
        if path in PUBLIC:
            continue
        response = client.request(method, path, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == PROBLEM_JSON
        body = response.json()
        assert (body["code"], body["field"]) == ("unauthorized", "Authorization")


def test_a_revoked_key_is_401(client: TestClient, key: str, database: Database) -> None:
    with database.transaction() as session:
        teams.revoke_api_key(session, key=key)
    response = client.get("/v1/jobs", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 401


def test_the_probes_need_no_key(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


@BOTH_BACKENDS
def test_another_teams_job_is_404_like_an_unknown_id_on_every_job_route(
    app: FastAPI, client: TestClient, submit: Callable[..., JsonDict], other_key: str,
) -> None:
    mine = submit()["id"]
    theirs = {"Authorization": f"Bearer {other_key}"}
    job_routes = [(method, path) for method, path in api_routes(app)
                  if path.startswith("/v1/jobs/no-such-id")]  # studies: test_studies_api.py
    assert len(job_routes) == 14  # DELETE, the two artifact routes, events and logs
    for method, path in job_routes:
        for job_id in (mine, "no-such-id"):
            response = client.request(method, path.replace("no-such-id", job_id), headers=theirs)
            assert response.status_code == 404, (method, path, response.text)
            body = response.json()
            assert (body["code"], body["field"]) == ("not_found", "job_id")
            assert body["detail"] == f"job {job_id} not found"
    assert client.get("/v1/jobs", headers=theirs).json()["items"] == []
    cancelled = client.post(f"/v1/jobs/{mine}/cancel", headers=theirs)
    assert cancelled.status_code == 404


def test_an_unknown_route_is_a_problem_too(client: TestClient) -> None:
    response = client.get("/v1/nothing")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == "not_found"
