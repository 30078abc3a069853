"""OWASP API2 (broken authentication): every route the app serves needs a live key, except an
explicit allow-list. Routes are read from the app, so a route added later (a study, a dashboard
page, a mount) is covered without editing this file: it is either public on purpose, listed in
tests/security/routes.py with the reason, or it must answer 401."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from store import teams
from store.db import Database
from tests.security.routes import PUBLIC, app_routes, documented, operations
from tests.service.support import PROBLEM_JSON

BAD_CREDENTIALS = [
    None, "", "Bearer", "Bearer ", "Bearer glk_not-a-key", "Basic dXNlcjpwYXNz", "glk_no-scheme",
    "Bearer glk_" + "A" * 43, "bearer glk_" + "A" * 43, "Bearer " + "x" * 5000,
]


def test_the_walker_sees_every_documented_operation(app: FastAPI) -> None:
    walked = {(method, route.path) for method, route in operations(app)}
    assert documented(app) <= walked


def test_every_public_entry_exists(app: FastAPI) -> None:
    """A stale allow-list entry could later make a new route of that name public unseen."""
    assert set(PUBLIC) <= {route.path for route in app_routes(app)}


@pytest.mark.parametrize("authorization", BAD_CREDENTIALS)
def test_every_route_but_the_public_ones_is_401_without_a_live_key(
    app: FastAPI, client: TestClient, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    checked = 0
    for method, route in operations(app):
        if route.path in PUBLIC:
            continue
        response = client.request(method, route.url(), headers=headers)
        assert response.status_code == 401, (method, route.path, response.text)
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["code"] == "unauthorized"
        checked += 1
    assert checked >= 10  # the API's routes were found at all


def test_a_mount_that_is_not_public_needs_a_key(app: FastAPI, client: TestClient) -> None:
    for route in app_routes(app):
        if route.mount and route.path not in PUBLIC:
            response = client.get(route.path + "/")
            assert response.status_code == 401, route.path


def test_a_revoked_key_is_401_everywhere(
    app: FastAPI, client: TestClient, key: str, database: Database
) -> None:
    with database.transaction() as session:
        assert teams.revoke_api_key(session, key=key)
    for method, route in operations(app):
        if route.path not in PUBLIC:
            response = client.request(method, route.url(),
                                      headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == 401, (method, route.path)


def test_the_public_routes_answer_without_a_key(app: FastAPI, client: TestClient) -> None:
    for method, route in operations(app):
        if route.path in PUBLIC and method == "GET":
            assert client.get(route.url()).status_code == 200, route.path
