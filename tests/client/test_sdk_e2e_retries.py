"""Retries against the real app: a transport that loses the first attempt (before it reaches the
app, or after the app has acted), and a real 503 from a database that has lost a table."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import gradlab_client as gl
import httpx
import pytest
from fastapi.testclient import TestClient
from gradlab_client import Client

from store.settings import Settings

BEFORE, AFTER = "fail before forwarding", "fail after the app answered"


class Flaky(httpx.BaseTransport):
    """Forwards to the app through its TestClient, failing the attempts the script says."""

    def __init__(self, app: TestClient, script: list[str | None]) -> None:
        self.app = app
        self.script = script
        self.attempts = 0
        self.forwarded = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        failure = self.script.pop(0) if self.script else None
        self.attempts += 1
        if failure == BEFORE:
            raise httpx.ConnectError("connection refused", request=request)
        answer = self.app.send(request)
        self.forwarded += 1
        if failure == AFTER:  # the app made its change; its answer never reaches the caller
            raise httpx.ReadError("connection reset by peer", request=request)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content,
                              request=request)


def flaky_sdk(app: TestClient, api_key: str, script: list[str | None]) -> tuple[Client, Flaky]:
    transport = Flaky(app, script)
    client = Client(base_url=str(app.base_url), api_key=api_key,
                    http_client=httpx.Client(transport=transport))
    client._http.sleep = lambda seconds: None
    return client, transport


@pytest.mark.parametrize("failure", [BEFORE, AFTER])
def test_a_keyed_create_is_retried_into_exactly_one_job(
    test_client: TestClient, api_key: str, sdk: Client, spiral: dict[str, Any], failure: str
) -> None:
    client, transport = flaky_sdk(test_client, api_key, [failure])
    job = client.jobs.create(spiral, idempotency_key="pipeline-run-7")
    assert transport.attempts == 2
    assert [listed.id for listed in sdk.jobs.list()] == [job.id]


@pytest.mark.parametrize(("failure", "jobs_made"), [(BEFORE, 0), (AFTER, 1)])
def test_a_create_without_a_key_is_never_retried(
    test_client: TestClient, api_key: str, sdk: Client, spiral: dict[str, Any],
    failure: str, jobs_made: int,
) -> None:
    client, transport = flaky_sdk(test_client, api_key, [failure])
    with pytest.raises(gl.TransportError):
        client.jobs.create(spiral)
    assert transport.attempts == 1
    # AFTER shows why: the job exists, and a blind retry would have made a second one.
    assert len(list(sdk.jobs.list())) == jobs_made


def test_reads_and_cancel_are_retried_after_a_lost_answer(
    test_client: TestClient, api_key: str, sdk: Client, spiral: dict[str, Any]
) -> None:
    job = sdk.jobs.create(spiral)
    client, transport = flaky_sdk(test_client, api_key, [AFTER, BEFORE, AFTER])
    assert client.jobs.get(job.id).id == job.id
    assert client.jobs.cancel(job.id).status == "cancelled"
    assert transport.attempts == 5


@pytest.fixture
def jobs_table_gone(db_settings: Settings, test_client: TestClient) -> Iterator[Any]:
    """Rename the jobs table away, so every job read fails in the database (a 503 from the
    service); yields a function that puts it back."""
    path = db_settings.database_url.removeprefix("sqlite:///")

    def rename(old: str, new: str) -> None:
        with sqlite3.connect(path) as connection:
            connection.execute(f"ALTER TABLE {old} RENAME TO {new}")

    rename("jobs", "jobs_away")
    state = {"gone": True}

    def restore() -> None:
        if state["gone"]:
            rename("jobs_away", "jobs")
            state["gone"] = False

    yield restore
    restore()


def test_a_real_503_is_retried_after_its_retry_after(
    sdk: Client, spiral: dict[str, Any], db_settings: Settings, request: pytest.FixtureRequest
) -> None:
    job = sdk.jobs.create(spiral)
    restore = request.getfixturevalue("jobs_table_gone")
    delays: list[float] = []

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        restore()  # the outage ends while the client waits

    sdk._http.sleep = sleep
    assert sdk.jobs.get(job.id).id == job.id
    assert delays == [5.0]  # the service's Retry-After for an unavailable database


def test_a_lasting_503_raises_service_unavailable(
    sdk: Client, spiral: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    job = sdk.jobs.create(spiral)
    request.getfixturevalue("jobs_table_gone")
    with pytest.raises(gl.ServiceUnavailable) as caught:
        sdk.jobs.get(job.id)
    assert caught.value.status == 503 and caught.value.code == "unavailable"
