"""Error responses that are not about one route: outages, bugs and oversized bodies are all
problem+json, and a 500 tells the caller nothing of the server's insides."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from celery import Celery
from fastapi.testclient import TestClient
from sqlalchemy import text

from service import create_app
from store.artifacts import open_artifact_store
from store.db import Database
from store.settings import Settings
from tests.conftest import drop_pg_database
from tests.service.support import PROBLEM_JSON, SPIRAL, JsonDict


def test_an_unexpected_error_is_a_bare_500_problem(
    app_settings: Settings, celery_app: Celery, auth: dict[str, str], database: Database,
) -> None:
    with TestClient(create_app(app_settings, celery_app=celery_app),
                    raise_server_exceptions=False) as client:
        job_id = client.post("/v1/jobs", json=SPIRAL, headers=auth).json()["id"]
        with database.transaction() as session:  # a row the code cannot read: a bug, not input
            session.execute(text("UPDATE jobs SET spec = '{\"bogus\": 1}'"))
        response = client.get(f"/v1/jobs/{job_id}", headers=auth)
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert (body["code"], body["detail"]) == ("internal_error", "an unexpected error occurred")
    for leak in ("Traceback", "bogus", "SELECT", "jobs", str(Path.cwd()), "pydantic"):
        assert leak not in response.text


@pytest.mark.integration
def test_a_database_outage_is_503_with_retry_after(
    pg_app_settings: Settings, pg_admin_url: str, celery_app: Celery
) -> None:
    with TestClient(create_app(pg_app_settings, celery_app=celery_app)) as client:
        drop_pg_database(pg_admin_url, pg_app_settings.database_url)
        response = client.get("/v1/jobs", headers={"Authorization": "Bearer glk_whatever"})
        ready = client.get("/readyz")
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == "unavailable"
    assert ready.status_code == 503 and ready.json()["checks"]["database"] == "unavailable"


def test_a_json_body_over_the_request_limit_is_413(
    client: TestClient, auth: dict[str, str], app_settings: Settings
) -> None:
    big = {**SPIRAL, "name": "x" * (app_settings.max_request_bytes + 1)}
    response = client.post("/v1/jobs", json=big, headers=auth)
    assert response.status_code == 413 and response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == "payload_too_large"


def test_a_chunked_upload_is_stopped_at_the_limit(
    client: TestClient, auth: dict[str, str], app_settings: Settings
) -> None:
    boundary = "b0undary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="big.npz"\r\n\r\n').encode()

    def body() -> Iterator[bytes]:  # a generator: sent chunked, without a Content-Length
        yield head
        for _ in range(app_settings.max_upload_bytes // 65536 + 4):
            yield b"\0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    response = client.post(
        "/v1/datasets", content=body(),
        headers={**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413 and response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["field"] == "file"
    assert not any(app_settings.uploads_dir.rglob("*.npz"))
    assert open_artifact_store(app_settings).listing("uploads") == []


def test_problem_bodies_name_the_field_in_errors_too(
    client: TestClient, auth: dict[str, str], submit: Callable[..., JsonDict]
) -> None:
    submit()
    response = client.get("/v1/jobs", params={"cursor": "bad"}, headers=auth)
    body = response.json()
    assert body["errors"] == [{"field": "cursor", "message": body["detail"]}]
    assert body["type"] == "about:blank" and body["title"] and body["status"] == 422
