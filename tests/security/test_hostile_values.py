"""Values a database cannot hold are refused at the door with 422, never a 500 from the
database: NUL characters anywhere a caller can put text (PostgreSQL's text and JSONB refuse
them), numbers past the 32-bit step columns, forged cursors. Found by schemathesis (SQLite) and
then on PostgreSQL; both backends run here."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.security.conftest import Snapshot
from tests.service.support import BOTH_BACKENDS, PROBLEM_JSON, SPIRAL, JsonDict


def _cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


def _npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x=np.zeros((10, 3), "float32"), y=np.arange(10) % 2)
    return buffer.getvalue()


# (method, path with {job}, request options, the field the problem names)
HOSTILE: list[tuple[str, str, dict[str, Any], str]] = [
    ("GET", "/v1/jobs", {"params": {"name": "a\x00b"}}, "query"),
    ("GET", "/v1/jobs/{job}/snapshots", {"params": {"layer": "fc\x001"}}, "query"),
    ("GET", "/v1/jobs/{job}/metrics", {"params": {"names": "loss\x00"}}, "query"),
    ("GET", "/v1/jobs/a%00b", {}, "path"),
    ("POST", "/v1/jobs", {"json": {**SPIRAL, "name": "x\x00y"}}, "body"),
    ("POST", "/v1/jobs", {"json": {**SPIRAL, "data": {"dataset": "spiral",
                                                       "options": {"n\x00": 1}}}}, "body"),
    ("POST", "/v1/jobs", {"json": SPIRAL, "headers": {"Idempotency-Key": "k\x00"}}, "header"),
    ("POST", "/v1/datasets", {"files": {"file": ("d.npz", _npz())}, "data": {"name": "n\x00"}},
     "name"),
    ("POST", "/v1/datasets", {"files": {"file": ("d.npz", _npz())},
                              "data": {"description": "\x00"}}, "description"),
    ("GET", "/v1/jobs/{job}/snapshots", {"params": {"step": 2**31}}, "step"),
    ("GET", "/v1/jobs/{job}/metrics", {"params": {"end_step": 2**63}}, "end_step"),
    ("GET", "/v1/jobs/{job}/snapshots", {"params": {"cursor": _cursor(2**63, "a", 0, "b")}},
     "cursor"),
    ("GET", "/v1/jobs/{job}/snapshots", {"params": {"cursor": _cursor(1, "a\x00", 0, "b")}},
     "cursor"),
    ("GET", "/v1/jobs", {"params": {"cursor": _cursor("2024-01-01T00:00:00+00:00", "\x00")}},
     "cursor"),
]


@BOTH_BACKENDS
def test_values_the_database_cannot_hold_are_422_and_change_nothing(
    client: TestClient, auth: dict[str, str], submit: Callable[..., JsonDict],
    snapshot: Callable[[], Snapshot],
) -> None:
    job = submit()["id"]
    before = snapshot()
    for method, path, options, field in HOSTILE:
        headers = {**auth, **options.get("headers", {})}
        extra = {key: value for key, value in options.items() if key != "headers"}
        response = client.request(method, path.format(job=job), headers=headers, **extra)
        assert response.status_code == 422, (path, options, response.text)
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["field"] == field, (path, response.json())
    assert snapshot() == before


@pytest.mark.parametrize("split", [1, 3, 5])
def test_an_escaped_nul_split_across_body_chunks_is_found(
    client: TestClient, auth: dict[str, str], split: int
) -> None:
    body = json.dumps({**SPIRAL, "name": "x\x00"}).encode()
    cut = body.index(b"\\u0000") + split
    response = client.post("/v1/jobs", content=iter([body[:cut], body[cut:]]),
                           headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 422 and response.json()["field"] == "body"


def test_a_spec_that_converts_quietly_is_refused_naming_the_field(
    client: TestClient, auth: dict[str, str]
) -> None:
    """Types are the documented ones: no false-for-0.0, no "500"-for-500."""
    cases = [({"regularization": {"l2": False}}, "regularization.l2"),
             ({"training": {"steps": "20"}}, "training.steps"),
             ({"training": {"steps": True}}, "training.steps"),
             ({"model": {"hidden": ["16"]}}, "model.hidden.0")]
    for overrides, field in cases:
        response = client.post("/v1/jobs", json={**SPIRAL, **overrides}, headers=auth)
        assert response.status_code == 422, (overrides, response.text)
        assert response.json()["field"] == field
    ok = client.post("/v1/jobs", json={**SPIRAL, "optimizer": {"lr": 1, "betas": [0.9, 0.99]}},
                     headers=auth)
    assert ok.status_code == 201, ok.text  # an integer is a number; a list is a pair
