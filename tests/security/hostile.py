"""What every test of the hostile-request suite asserts after a refusal: it was quick, it
changed nothing, and the service still serves the next request."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.security.conftest import Snapshot
from tests.service.support import SPIRAL, JsonDict

# CPU seconds of this process (the app runs in it) a refusal may take: one that does no work
# takes milliseconds. CPU time, not wall time, so that a loaded machine cannot fail the test,
# while the work itself (building a billion variants, reading a body) would.
QUICK_SECONDS = 1.0
CHUNK = 64 * 1024


def served_next(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post("/v1/jobs", json=SPIRAL, headers=auth)
    assert response.status_code == 201, response.text


def refused(client: TestClient, auth: dict[str, str], path: str, body: Any,
             snapshot: Callable[[], Snapshot], status: int = 422) -> JsonDict:
    """POST `body`; assert `status`, under QUICK_SECONDS, nothing created, and the next submit
    served. Returns the problem."""
    before = snapshot()
    started = time.process_time()
    response = client.post(path, json=body, headers=auth)
    elapsed = time.process_time() - started
    assert response.status_code == status, response.text
    assert elapsed < QUICK_SECONDS, f"{elapsed:.2f} CPU seconds to refuse"
    assert snapshot() == before
    served_next(client, auth)
    problem: JsonDict = response.json()
    return problem
