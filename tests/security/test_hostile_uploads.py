"""OWASP API4 at the upload route: a caller without a valid key, over its rate limit or over
the size cap is answered from the headers before any of the body is read (the route reads the
multipart stream itself, after its dependencies; FastAPI would parse it first); an endless body
stops at the cap; a malformed archive is a 422, never a 500; nothing is left behind."""

from __future__ import annotations

import asyncio
import io
import struct
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from celery import Celery
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service import create_app
from store.settings import Settings
from tests.security.conftest import Snapshot
from tests.security.hostile import CHUNK, served_next

# -- before the body --------------------------------------------------------------------------


def _asgi_post(app: FastAPI, path: str, headers: dict[str, str]) -> tuple[int, int]:
    """POST an endless body straight to the ASGI app; (status, body chunks it pulled)."""
    pulled = 0
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"\0" * CHUNK, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 1), "server": ("testserver", 80),
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
    }
    asyncio.run(app(scope, receive, send))
    return status[0], pulled


MULTIPART = {"Content-Type": "multipart/form-data; boundary=b0undary"}


@pytest.mark.parametrize("authorization", [None, "Bearer glk_not-a-key"])
def test_an_upload_without_a_valid_key_is_401_before_its_body_is_read(
    app: FastAPI, client: TestClient, auth: dict[str, str], app_settings: Settings,
    snapshot: Callable[[], Snapshot], authorization: str | None,
) -> None:
    before = snapshot()
    headers = {**MULTIPART, **({"Authorization": authorization} if authorization else {})}
    status, pulled = _asgi_post(app, "/v1/datasets", headers)
    assert (status, pulled) == (401, 0)
    assert snapshot() == before and not any(app_settings.uploads_dir.rglob("*"))
    served_next(client, auth)


def test_an_upload_over_the_rate_limit_is_429_before_its_body_is_read(
    app_settings: Settings, celery_app: Celery, auth: dict[str, str],
    snapshot: Callable[[], Snapshot],
) -> None:
    app = create_app(app_settings.model_copy(update={"rate_limit_per_minute": 2}),
                     celery_app=celery_app)
    with TestClient(app) as client:
        for _ in range(2):
            assert client.get("/v1/datasets", headers=auth).status_code == 200
        before = snapshot()
        status, pulled = _asgi_post(app, "/v1/datasets", {**MULTIPART, **auth})
        assert (status, pulled) == (429, 0)
        assert snapshot() == before
        assert client.get("/healthz").status_code == 200  # served; the key waits its minute


def test_an_upload_declared_over_the_cap_is_413_before_its_body_is_read(
    app: FastAPI, client: TestClient, auth: dict[str, str], app_settings: Settings,
) -> None:
    declared = str(app_settings.max_upload_bytes * 2)
    status, pulled = _asgi_post(app, "/v1/datasets",
                                {**MULTIPART, **auth, "Content-Length": declared})
    assert (status, pulled) == (413, 0)
    served_next(client, auth)


def test_an_endless_upload_stops_at_the_cap_and_leaves_nothing(
    app: FastAPI, client: TestClient, auth: dict[str, str], app_settings: Settings,
    snapshot: Callable[[], Snapshot],
) -> None:
    before = snapshot()
    status, pulled = _asgi_post(app, "/v1/datasets", {**MULTIPART, **auth})
    assert status in (413, 422)  # the cap, or the framing (zeros are no multipart) first
    assert pulled * CHUNK <= app_settings.max_upload_bytes + 2 * CHUNK + 64 * 1024
    assert snapshot() == before and not any(app_settings.uploads_dir.rglob("*"))
    served_next(client, auth)


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def _member_without_suffix() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x", b"\x93NUMPY not an array")
        archive.writestr("y.npy", b"")
    return buffer.getvalue()


def _unsupported_compression() -> bytes:
    """A valid .npz whose members claim compression method 99 (AES), which zipfile lacks."""
    data = bytearray(_npz(x=np.zeros((4, 2), np.float32), y=np.array([0, 1, 0, 1])))
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        start = data.find(signature)
        while start != -1:
            struct.pack_into("<H", data, start + offset, 99)
            start = data.find(signature, start + 4)
    return bytes(data)


def _truncated() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        header = _npz(x=np.zeros((1000, 2), np.float32), y=np.arange(1000) % 2)
        with zipfile.ZipFile(io.BytesIO(header)) as source:
            archive.writestr("x.npy", source.read("x.npy")[:200])
            archive.writestr("y.npy", source.read("y.npy"))
    return buffer.getvalue()


@pytest.mark.parametrize("content", [
    _member_without_suffix(), _unsupported_compression(), _truncated(), b"PK\x03\x04broken",
], ids=["no-npy-suffix", "compression-99", "truncated-array", "broken-zip"])
def test_a_malformed_archive_is_422_never_500(
    client: TestClient, auth: dict[str, str], app_settings: Settings,
    snapshot: Callable[[], Snapshot], content: bytes,
) -> None:
    before = snapshot()
    response = client.post("/v1/datasets", files={"file": ("bad.npz", content)}, headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "file"
    assert snapshot() == before and not any(app_settings.uploads_dir.rglob("*"))
    served_next(client, auth)


def test_a_good_upload_still_goes_through_the_streamed_reader(
    client: TestClient, auth: dict[str, str],
) -> None:
    content = _npz(x=np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32),
                   y=np.arange(50) % 3)
    response = client.post("/v1/datasets", files={"file": ("mine.npz", content)},
                           data={"description": "three classes"}, headers=auth)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["name"], body["rows"], body["num_classes"]) == ("mine", 50, 3)
    assert body["description"] == "three classes"
