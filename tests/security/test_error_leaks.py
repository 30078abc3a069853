"""OWASP API8 (security misconfiguration): no error tells the caller about the server's
insides: no traceback, no SQL or driver names, no file paths, no hosts. Each error below is
driven for real (a broken database, a missing broker, bad input, unknown ids)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from celery import Celery
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import text

from service import create_app
from store.db import Database
from store.settings import Settings
from tests.conftest import drop_pg_database
from tests.service.support import PROBLEM_JSON, SPIRAL

LEAKS = ["Traceback", 'File "', "line ", ".py", "sqlalchemy", "sqlite", "psycopg", "postgres",
         "SELECT ", "INSERT ", "UPDATE ", "DELETE ", " FROM ", " WHERE ", "OperationalError",
         "IntegrityError", "Exception", "/work/", "/home/", "/tmp/", "/root/", "site-packages",
         "127.0.0.1", "localhost", "gradlab_test", "bogus"]


def assert_no_leak(response: Response, *extra: str) -> None:
    assert response.headers["content-type"] == PROBLEM_JSON, response.text
    body = response.text
    for leak in [*LEAKS, str(Path.home()), str(Path.cwd()), *extra]:
        assert leak not in body, (leak, body)


@pytest.fixture
def lenient(app_settings: Settings, celery_app: Celery) -> Iterator[TestClient]:
    """The app with server errors answered, as in production, rather than raised."""
    app = create_app(app_settings, celery_app=celery_app)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_a_row_the_code_cannot_read_is_a_bare_500(
    lenient: TestClient, auth: dict[str, str], database: Database, app_settings: Settings
) -> None:
    job_id = lenient.post("/v1/jobs", json=SPIRAL, headers=auth).json()["id"]
    with database.transaction() as session:
        session.execute(text("UPDATE jobs SET spec = '{\"bogus\": 1}'"))
    for path in (f"/v1/jobs/{job_id}", "/v1/jobs", f"/v1/jobs/{job_id}/diagnosis"):
        response = lenient.get(path, headers=auth)
        assert response.status_code == 500, path
        assert response.json()["detail"] == "an unexpected error occurred"
        assert_no_leak(response, str(app_settings.home))


def test_a_table_gone_missing_is_a_503_that_names_no_table(
    lenient: TestClient, auth: dict[str, str], database: Database, app_settings: Settings
) -> None:
    job_id = lenient.post("/v1/jobs", json=SPIRAL, headers=auth).json()["id"]
    with database.transaction() as session:
        session.execute(text("DROP TABLE metric_chunks"))  # what the route reads
    response = lenient.get(f"/v1/jobs/{job_id}/metrics", headers=auth)
    assert response.status_code in (500, 503)
    assert_no_leak(response, "metric_chunks", str(app_settings.home))


def test_a_database_file_that_is_not_a_database_names_nothing(
    app_settings: Settings, celery_app: Celery, auth: dict[str, str], database: Database,
) -> None:
    with TestClient(create_app(app_settings, celery_app=celery_app),
                    raise_server_exceptions=False) as client:
        database.close()
        Path(app_settings.home / "gradlab.db").write_bytes(b"not a database" * 1000)
        for suffix in ("-wal", "-shm"):
            Path(f"{app_settings.home / 'gradlab.db'}{suffix}").unlink(missing_ok=True)
        client.app.state.services.db.engine.dispose()  # type: ignore[attr-defined]
        response = client.get("/v1/jobs", headers=auth)
    assert response.status_code == 500  # a corrupt file is the server's fault, not an outage
    assert_no_leak(response, "gradlab.db", "not a database", "file is")


@pytest.mark.integration
def test_a_postgresql_outage_names_no_host_or_database(
    pg_app_settings: Settings, pg_admin_url: str, celery_app: Celery
) -> None:
    with TestClient(create_app(pg_app_settings, celery_app=celery_app)) as client:
        drop_pg_database(pg_admin_url, pg_app_settings.database_url)
        response = client.get("/v1/jobs", headers={"Authorization": "Bearer glk_whatever"})
    assert response.status_code == 503
    assert_no_leak(response, "connection", "FATAL", "does not exist")


def test_readiness_failures_name_the_check_not_the_reason(
    client: TestClient, broker_dir: Path
) -> None:
    import shutil

    shutil.rmtree(broker_dir)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == "unavailable"
    for leak in [*LEAKS, str(broker_dir)]:
        assert leak not in response.text


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


GOOD = _npz(x=np.zeros((10, 3), "float32"), y=np.arange(10) % 2)
BAD_UPLOADS = {
    "not a zip": b"hello",
    "a pickle": b"\x80\x04K\x01.",
    "truncated": GOOD[: len(GOOD) // 2],
    "object array": _npz(x=np.array([object()] * 4, dtype=object), y=np.arange(4)),
    "a path in a member name": _zip({"../../etc/x.npy": b"\x93NUMPY", "y.npy": b""}),
    "not npy inside": _zip({"x.npy": b"garbage", "y.npy": b"garbage"}),
    "bad header": _zip({"x.npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': 1}      \n",
                        "y.npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': 1}      \n"}),
    "corrupt data": GOOD.replace(b"\x00" * 8, b"\x01" * 8, 1),
}


@pytest.mark.parametrize("content", BAD_UPLOADS.values(), ids=BAD_UPLOADS.keys())
def test_unusable_uploads_say_why_without_paths(
    lenient: TestClient, auth: dict[str, str], app_settings: Settings, content: bytes
) -> None:
    response = lenient.post("/v1/datasets", files={"file": ("d.npz", content)}, headers=auth)
    assert response.status_code == 422, response.text
    assert_no_leak(response, str(app_settings.uploads_dir), ".partial")


CLIENT_ERRORS = [
    ("POST", "/v1/jobs", {"json": {**SPIRAL, "model": {"hidden": "x"}}}, 422),
    ("POST", "/v1/jobs", {"content": b"{not json", "headers": {"Content-Type":
                                                              "application/json"}}, 422),
    ("POST", "/v1/jobs", {"content": b"\xff\xfe\xfd", "headers": {"Content-Type":
                                                                  "application/json"}}, 422),
    ("POST", "/v1/jobs", {"json": {**SPIRAL, "data": {"dataset": "upload:nope"}}}, 422),
    ("GET", "/v1/jobs", {"params": {"cursor": "not-a-cursor"}}, 422),
    ("GET", "/v1/jobs", {"params": {"cursor": "eyJ4IjogMX0"}}, 422),
    ("GET", "/v1/jobs", {"params": {"limit": "-1"}}, 422),
    ("GET", "/v1/jobs/no-such-id", {}, 404),
    ("GET", "/v1/jobs/%2e%2e%2f%2e%2e%2fetc%2fpasswd", {}, 404),
    ("GET", "/v1/nothing", {}, 404),
    ("DELETE", "/v1/jobs", {}, 405),
    ("POST", "/v1/datasets", {"content": b"--x\r\n", "headers": {
        "Content-Type": "multipart/form-data; boundary=x"}}, 422),
]


@pytest.mark.parametrize(("method", "path", "options", "status"), CLIENT_ERRORS)
def test_client_errors_carry_no_insides(
    lenient: TestClient, auth: dict[str, str], method: str, path: str,
    options: dict[str, object], status: int,
) -> None:
    headers = {**auth, **options.pop("headers", {})}  # type: ignore[dict-item]
    response = lenient.request(method, path, headers=headers, **options)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert_no_leak(response)
