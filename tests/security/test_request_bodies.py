"""OWASP API3/API6 (mass assignment) and API4 (unrestricted resource consumption) at the door:
fields a caller must not set are refused naming the field, and every body has a size limit,
whether or not it declares its length."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.routes.datasets import MULTIPART_OVERHEAD_BYTES
from store.artifacts import open_artifact_store
from store.settings import Settings
from tests.security.conftest import Snapshot
from tests.security.routes import operations
from tests.service.support import PROBLEM_JSON, SPIRAL

SERVER_FIELDS = ["team", "team_id", "status", "attempt", "id", "created_at", "worker",
                 "cancel_requested", "parent_id", "progress"]
CHUNK = 64 * 1024


@pytest.mark.parametrize("field", SERVER_FIELDS)
def test_a_field_the_server_owns_is_refused_naming_it(
    client: TestClient, auth: dict[str, str], field: str, snapshot: Callable[[], Snapshot],
) -> None:
    before = snapshot()
    response = client.post("/v1/jobs", json={**SPIRAL, field: "x"}, headers=auth)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert (body["field"], body["detail"]) == (field, "unknown field")
    assert snapshot() == before


@pytest.mark.parametrize("section", ["data", "model", "training", "telemetry", "optimizer"])
def test_unknown_fields_are_refused_at_any_depth(
    client: TestClient, auth: dict[str, str], section: str
) -> None:
    spec = {**SPIRAL, section: {**SPIRAL.get(section, {}), "team_id": "other"}}
    response = client.post("/v1/jobs", json=spec, headers=auth)
    assert response.status_code == 422
    assert response.json()["field"] == f"{section}.team_id"


def _limit(app_settings: Settings, path: str) -> int:
    if path == "/v1/datasets":
        return app_settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES
    return app_settings.max_request_bytes


def _post_routes(app: FastAPI) -> list[tuple[str, bool]]:
    """(path with made-up ids, whether the route reads a body) of every POST route."""
    documented = app.openapi()["paths"]
    return [(route.url(), "requestBody" in documented.get(route.path, {}).get("post", {}))
            for method, route in operations(app) if method == "POST"]


def _chunks(total: int) -> Iterator[bytes]:
    """A JSON-looking body sent without a Content-Length (a generator is sent chunked)."""
    yield b'{"name": "'
    for _ in range(total // CHUNK + 1):
        yield b"x" * CHUNK
    yield b'"}'


def test_every_post_route_refuses_a_declared_length_over_its_limit_before_reading(
    app: FastAPI, client: TestClient, auth: dict[str, str], app_settings: Settings,
) -> None:
    for path, _ in _post_routes(app):
        limit = _limit(app_settings, path)
        # The declared length alone decides: nothing is read, not even the key.
        for headers in (auth, {}):
            response = client.post(path, content=b"{}", headers={
                **headers, "Content-Length": str(limit + 1), "Content-Type": "application/json"})
            assert response.status_code == 413, (path, response.text)
            assert response.headers["content-type"] == PROBLEM_JSON
            assert response.json()["code"] == "payload_too_large"


def test_every_post_route_stops_a_chunked_body_at_its_limit(
    app: FastAPI, client: TestClient, auth: dict[str, str], app_settings: Settings,
    snapshot: Callable[[], Snapshot],
) -> None:
    before = snapshot()
    for path, reads_body in _post_routes(app):
        content_type = ("multipart/form-data; boundary=b0undary" if path == "/v1/datasets"
                        else "application/json")
        response = client.post(path, content=_chunks(_limit(app_settings, path)),
                               headers={**auth, "Content-Type": content_type})
        if reads_body:
            assert response.status_code == 413, (path, response.text)
            assert response.json()["code"] == "payload_too_large"
        else:
            # A route that takes no body never reads one, so its size costs nothing; the
            # made-up id answers as usual.
            assert response.status_code == 404, (path, response.text)
    assert snapshot() == before
    assert not any(app_settings.uploads_dir.rglob("*"))
    assert open_artifact_store(app_settings).listing("uploads") == []


def test_a_body_at_the_limit_is_read(
    client: TestClient, auth: dict[str, str], app_settings: Settings
) -> None:
    """The limit is the size, not an off-by-one: a body of exactly the limit is parsed (and
    refused for its content, not its size)."""
    padding = app_settings.max_request_bytes - len(b'{"name": ""}')
    body = b'{"name": "' + b"x" * padding + b'"}'
    assert len(body) == app_settings.max_request_bytes
    response = client.post("/v1/jobs", content=body,
                           headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 422 and response.json()["code"] == "invalid_request"
