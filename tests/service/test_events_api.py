"""GET /v1/jobs/{id}/events and /v1/studies/{id}/events: server-sent events replayed from the
event table, resumable, team-scoped, bounded. The worker's side is played by the store."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Celery
from fastapi.testclient import TestClient

from service import create_app
from service.errors import RateLimited
from store import leases, studies, teams
from store.db import Database
from store.settings import Settings
from tests.service.support import JsonDict


@pytest.fixture
def client(app_settings: Settings, celery_app: Celery) -> Iterator[TestClient]:
    live = app_settings.model_copy(update={
        "event_poll_seconds": 0.05, "event_heartbeat_seconds": 1, "event_stream_seconds": 30,
    })
    with TestClient(create_app(live, celery_app=celery_app)) as test_client:
        yield test_client


def read_events(client: TestClient, path: str, **headers: str) -> list[tuple[str, str, Any]]:
    """(id, event, data) of each event of the stream, read to its end."""
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    found = []
    for block in response.text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines()
                      if ": " in line and not line.startswith(":"))
        if "event" in fields:
            found.append((fields.get("id", ""), fields["event"], json.loads(fields["data"])))
    return found


def finish(database: Database, job_id: str, attempt: int, status: str = "succeeded") -> None:
    with database.transaction() as session:
        leases.finish_job(session, job_id=job_id, attempt=attempt, status=status,
                          summary={"final_train_loss": 0.5}, progress_step=100)


def test_a_finished_job_replays_its_events_then_ends(
    client: TestClient, auth: dict[str, str], submit: Callable[..., JsonDict],
    claim: Callable[[str], int], database: Database,
) -> None:
    job = submit()
    finish(database, job["id"], claim(job["id"]))
    events = read_events(client, f"/v1/jobs/{job['id']}/events", **auth)
    assert [(kind, body["data"].get("status")) for _, kind, body in events] == [
        ("status", "queued"), ("status", "running"), ("status", "succeeded"),
        ("end", "succeeded")]
    ids = [int(event_id) for event_id, _, _ in events[:-1]]
    assert ids == sorted(ids) and events[-1][0] == ""
    assert events[2][2]["data"]["stopped_early"] is False
    resumed = read_events(client, f"/v1/jobs/{job['id']}/events",
                          **{**auth, "Last-Event-ID": str(ids[0])})
    assert [int(event_id) for event_id, _, _ in resumed[:-1]] == ids[1:]
    # Resuming after the ending's event: nothing more but the end.
    last = read_events(client, f"/v1/jobs/{job['id']}/events",
                       **{**auth, "Last-Event-ID": str(ids[-1])})
    assert [kind for _, kind, _ in last] == ["end"]


def test_a_waiting_stream_wakes_for_new_events_and_keeps_alive(
    client: TestClient, auth: dict[str, str], submit: Callable[..., JsonDict],
    claim: Callable[[str], int], database: Database,
) -> None:
    job = submit()

    def later() -> None:
        time.sleep(0.3)
        attempt = claim(job["id"])
        time.sleep(1.5)  # longer than a heartbeat
        finish(database, job["id"], attempt, status="diverged")

    worker = threading.Thread(target=later)
    worker.start()
    response = client.get(f"/v1/jobs/{job['id']}/events", headers=auth)
    worker.join()
    assert "\n: ping" in "\n" + response.text.replace("\r\n", "\n")  # the heartbeat comment
    assert response.text.count("event: status") == 3 and "event: end" in response.text


def test_a_stream_closes_after_its_lifetime_and_resumes_where_it_stopped(
    app_settings: Settings, celery_app: Celery, auth: dict[str, str],
    submit: Callable[..., JsonDict], claim: Callable[[str], int], database: Database,
) -> None:
    job = submit()
    short = app_settings.model_copy(update={"event_poll_seconds": 0.05,
                                            "event_stream_seconds": 0.5})
    with TestClient(create_app(short, celery_app=celery_app)) as client:
        first = read_events(client, f"/v1/jobs/{job['id']}/events", **auth)
        assert [kind for _, kind, _ in first] == ["status"]  # queued; no end: it goes on
        finish(database, job["id"], claim(job["id"]))
        rest = read_events(client, f"/v1/jobs/{job['id']}/events",
                           **{**auth, "Last-Event-ID": first[0][0]})
    assert [kind for _, kind, _ in rest] == ["status", "status", "end"]


def test_streams_are_authenticated_team_scoped_and_bounded(
    client: TestClient, auth: dict[str, str], other_key: str, submit: Callable[..., JsonDict],
) -> None:
    job = submit()
    path = f"/v1/jobs/{job['id']}/events"
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": f"Bearer {other_key}"}).status_code == 404
    # The team's other streams hold every slot (a TestClient cannot hold a stream open).
    slots = client.app.state.stream_slots  # type: ignore[attr-defined]
    limit = client.app.state.services.settings.max_event_streams_per_team  # type: ignore[attr-defined]
    team_id = _team_id(client, auth)
    held = [slots.take(team_id, limit) for _ in range(limit)]
    response = client.get(path, headers=auth)
    assert response.status_code == 429 and response.json()["code"] == "rate_limited"
    held[0]()
    held[0]()  # releasing twice frees one slot, once
    slots.take(team_id, limit)
    with pytest.raises(RateLimited, match="event streams open"):
        slots.take(team_id, limit)


def test_a_study_stream_has_its_jobs_events_and_ends_with_the_study(
    client: TestClient, auth: dict[str, str], claim: Callable[[str], int], database: Database,
) -> None:
    body = {"base": {"data": {"dataset": "spiral"}, "training": {"steps": 50}},
            "grid": {"optimizer.lr": [0.01, 0.1]}}
    study = client.post("/v1/studies", json=body, headers=auth).json()
    with database.read() as session:
        row = studies.study_row(session, team_id=_team_id(client, auth), study_id=study["id"])
    for run in row.runs:
        finish(database, run["job_id"], claim(run["job_id"]))
    events = read_events(client, f"/v1/studies/{study['id']}/events", **auth)
    kinds = [kind for _, kind, _ in events]
    assert kinds.count("status") == 6 and kinds[-2:] == ["study", "end"]
    assert events[-2][2]["data"]["counts"] == {"succeeded": 2}
    assert {body["job_id"] for _, kind, body in events if kind == "status"} == {
        run["job_id"] for run in row.runs}


def _team_id(client: TestClient, auth: dict[str, str]) -> str:
    with client.app.state.services.db.read() as session:  # type: ignore[attr-defined]
        team = teams.authenticate(session, key=auth["Authorization"].split()[1])
    assert team is not None
    return team.id
