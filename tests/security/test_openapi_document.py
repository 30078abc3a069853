"""The OpenAPI document declares what every operation may answer, including the answers that
come from no route in particular (authentication, rate limits, body limits), so that a client
and schemathesis know them, for routes added later too."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.security.routes import PARAM

PROBLEM = "#/components/schemas/Problem"


def _operations(app: FastAPI) -> list[tuple[str, str, dict]]:  # type: ignore[type-arg]
    return [(method.upper(), path, operation)
            for path, operations in app.openapi()["paths"].items()
            for method, operation in operations.items()]


def _problem_statuses(operation: dict) -> set[str]:  # type: ignore[type-arg]
    return {status for status, response in operation["responses"].items()
            if response.get("content", {}).get("application/problem+json", {})
            .get("schema", {}).get("$ref") == PROBLEM}


def test_every_operation_with_a_key_declares_401_and_429(app: FastAPI) -> None:
    for method, path, operation in _operations(app):
        if operation.get("security"):
            assert {"401", "429"} <= _problem_statuses(operation), (method, path)


def test_every_operation_with_a_body_declares_413_and_422(app: FastAPI) -> None:
    for method, path, operation in _operations(app):
        if "requestBody" in operation:
            assert {"413", "422"} <= _problem_statuses(operation), (method, path)


def test_no_error_is_documented_in_fastapis_own_shape(app: FastAPI) -> None:
    """Every error body is a problem; FastAPI's HTTPValidationError is never sent."""
    for method, path, operation in _operations(app):
        assert "HTTPValidationError" not in str(operation["responses"]), (method, path)


def test_a_created_resource_links_to_the_routes_of_its_id(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    links = paths["/v1/jobs"]["post"]["responses"]["201"]["links"]
    targets = {link["operationRef"] for link in links.values()}
    job_routes = {(path, method) for path in paths if path.startswith("/v1/jobs/{job_id}")
                  for method in paths[path]}
    assert len(targets) == len(job_routes) >= 7
    assert all(link["parameters"] == {"job_id": "$response.body#/id"} for link in links.values())


def test_a_405_lists_every_method_the_path_serves(app: FastAPI, client: TestClient) -> None:
    """RFC 9110: Allow names all the methods; GET and POST of one path are two routes here."""
    for path, operations in app.openapi()["paths"].items():
        response = client.request("PUT", PARAM.sub("x", path))
        assert response.status_code == 405, path
        allowed = set(response.headers["allow"].split(", ")) - {"HEAD"}
        assert allowed == {method.upper() for method in operations}, path
