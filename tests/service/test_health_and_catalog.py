"""The probes, the refusal to start on an old schema, the catalog and the OpenAPI document."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from alembic import command
from celery import Celery
from fastapi import FastAPI
from fastapi.testclient import TestClient
from gradlab_contract.catalog import ENUMS
from gradlab_contract.models import Catalog

from service import create_app
from service.app import SchemaNotAtHead
from store.migrate import alembic_config
from store.settings import Settings
from taskqueue import make_celery
from tests.service.support import BOTH_BACKENDS


def test_healthz_is_ok_without_anything_else(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


@BOTH_BACKENDS
def test_readyz_is_200_when_database_schema_and_broker_answer(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok",
                               "checks": {"database": "ok", "broker": "ok", "schema": "ok"}}


def test_readyz_is_503_when_the_schema_falls_behind(
    client: TestClient, app_settings: Settings
) -> None:
    # app_settings' SQLite file is this test's own copy, so it may be downgraded.
    assert_not_ready_after_downgrade(client, app_settings)


@pytest.mark.integration
def test_readyz_is_503_when_a_postgresql_schema_falls_behind(
    pg_app_settings: Settings, celery_app: Celery
) -> None:
    with TestClient(create_app(pg_app_settings, celery_app=celery_app)) as client:
        assert client.get("/readyz").status_code == 200
        assert_not_ready_after_downgrade(client, pg_app_settings)


def assert_not_ready_after_downgrade(client: TestClient, settings: Settings) -> None:
    command.downgrade(alembic_config(settings), "base")
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["checks"]["schema"].startswith("not at head")
    assert body["checks"]["database"] == "ok"


def test_readyz_is_503_when_the_broker_folder_is_gone(client: TestClient, broker_dir: Any) -> None:
    (broker_dir / "queue").rmdir()
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["checks"]["broker"] == "unavailable"


@pytest.mark.integration
def test_readyz_checks_a_redis_broker(app_settings: Settings, redis_url: str) -> None:
    up = create_app(app_settings, celery_app=make_celery(redis_url, queue="gradlab"))
    with TestClient(up) as client:
        assert client.get("/readyz").json()["checks"]["broker"] == "ok"
    down = create_app(app_settings, celery_app=make_celery("redis://127.0.0.1:1/0",
                                                           queue="gradlab"))
    with TestClient(down) as client:
        response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["checks"]["broker"] == "unavailable"


def test_the_app_refuses_to_start_on_an_unmigrated_database(
    settings: Settings, celery_app: Celery
) -> None:
    settings.home.mkdir(parents=True)  # an empty SQLite file: a database never migrated
    app = create_app(settings, celery_app=celery_app)
    with pytest.raises(SchemaNotAtHead, match="gradlab-server migrate"), TestClient(app):
        pass


def test_the_catalog_lists_every_enum_value_and_the_limits(
    client: TestClient, auth: dict[str, str], app_settings: Settings
) -> None:
    response = client.get("/v1/catalog", headers=auth)
    assert response.status_code == 200
    catalog = Catalog.model_validate(response.json())
    assert set(catalog.enums) == set(ENUMS)
    for field, literal in ENUMS.items():
        values = [entry.value for entry in catalog.enums[field]]
        assert values == list(get_args(literal)), field
        assert all(entry.description for entry in catalog.enums[field])
    assert catalog.limits["max_parameters"] == app_settings.max_parameters == 100_000
    assert catalog.limits["max_upload_bytes"] == app_settings.max_upload_bytes


def test_the_openapi_document_describes_every_operation(app: FastAPI) -> None:
    document = app.openapi()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert operation.get("summary") and operation.get("description"), where
            if path not in ("/healthz", "/readyz", "/metrics"):  # public: probes, Prometheus
                problem = operation["responses"]["401"]["content"]
                assert "application/problem+json" in problem, where
                assert operation["security"] == [{"api_key": []}], where
    create = document["paths"]["/v1/jobs"]["post"]
    assert {"200", "201", "409", "422", "429"} <= set(create["responses"])
    assert "JobSpec" in str(create["requestBody"])
    assert "413" in document["paths"]["/v1/datasets"]["post"]["responses"]
