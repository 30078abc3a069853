"""DELETE /v1/datasets/{id}, GET /v1/usage and the per-team storage quota (uploads here; a job's
artifacts are counted in tests/client/test_artifacts_sdk_cli.py and tests/integration)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service import create_app
from store.artifacts import open_artifact_store
from store.settings import Settings
from tests.service.support import JsonDict
from tests.service.test_datasets_api import good_arrays, npz, upload


def test_delete_an_upload_removes_row_and_object(
    client: TestClient, auth: dict[str, str], other_key: str, app_settings: Settings,
) -> None:
    info = upload(client, auth, npz(**good_arrays())).json()
    store = open_artifact_store(app_settings)
    assert len(store.listing("uploads")) == 1
    usage = client.get("/v1/usage", headers=auth).json()
    assert usage["upload_bytes"] > 0 and usage["used_bytes"] == usage["upload_bytes"]
    other = {"Authorization": f"Bearer {other_key}"}
    assert client.delete(f"/v1/datasets/{info['id']}", headers=other).status_code == 404
    assert client.delete(f"/v1/datasets/{info['id']}", headers=auth).status_code == 204
    assert store.listing("uploads") == []
    assert client.get("/v1/usage", headers=auth).json()["upload_bytes"] == 0
    assert client.delete(f"/v1/datasets/{info['id']}", headers=auth).status_code == 404


def test_an_upload_a_queued_job_uses_cannot_be_deleted(
    client: TestClient, auth: dict[str, str], submit: Callable[..., JsonDict],
) -> None:
    info = upload(client, auth, npz(**good_arrays())).json()
    submit(data={"dataset": info["id"]}, training={"epochs": 1, "batch_size": 8})
    response = client.delete(f"/v1/datasets/{info['id']}", headers=auth)
    assert response.status_code == 409 and response.json()["field"] == "dataset_id"


FILE = npz(**good_arrays(rows=40))
QUOTA = len(FILE) * 3 // 2  # room for one upload, not two


@pytest.fixture
def small_quota_app(app_settings: Settings, celery_app: Any) -> FastAPI:
    settings = app_settings.model_copy(update={"max_storage_bytes_per_team": QUOTA})
    return create_app(settings, celery_app=celery_app)


def test_over_the_quota_uploads_and_jobs_are_refused(
    small_quota_app: FastAPI, auth: dict[str, str], app_settings: Settings,
) -> None:
    with TestClient(small_quota_app) as client:
        first = upload(client, auth, FILE)
        assert first.status_code == 201, first.text
        used = client.get("/v1/usage", headers=auth).json()
        assert used == {"artifact_bytes": 0, "upload_bytes": len(FILE),
                        "used_bytes": len(FILE), "quota_bytes": QUOTA}
        second = upload(client, auth, FILE)
        assert second.status_code == 429 and second.json()["field"] == "file"
        assert len(open_artifact_store(app_settings).listing("uploads")) == 1
        client.delete(f"/v1/datasets/{first.json()['id']}", headers=auth)
        assert upload(client, auth, FILE).status_code == 201
        job = client.post("/v1/jobs", json={"data": {"dataset": "spiral"}}, headers=auth)
        assert job.status_code == 201, job.text


def test_a_team_over_its_quota_cannot_submit(
    client: TestClient, auth: dict[str, str], app_settings: Settings, celery_app: Any,
) -> None:
    """A job's artifacts can take a team over its quota (they are kept when the job ends);
    then its next job is refused until it deletes something."""
    assert upload(client, auth, FILE).status_code == 201
    lowered = app_settings.model_copy(update={"max_storage_bytes_per_team": len(FILE) - 1})
    with TestClient(create_app(lowered, celery_app=celery_app)) as over:
        job = over.post("/v1/jobs", json={"data": {"dataset": "spiral"}}, headers=auth)
        assert job.status_code == 429 and "quota" in job.json()["detail"], job.text
