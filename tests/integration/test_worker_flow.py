"""Submit, train, read back, cancel and resubmit through a real worker process, on both
backends (SQLite + the filesystem broker, PostgreSQL + Redis)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.integration.conftest import Stack

TERMINAL = {"succeeded", "failed", "cancelled", "diverged"}


def tiny_spec(steps: int = 60, **training: Any) -> dict[str, Any]:
    return {
        "name": "tiny spiral",
        "data": {"dataset": "spiral", "options": {"points": 100}},
        "model": {"hidden": [16, 16]},
        "training": {"steps": steps, "batch_size": 32, "eval_every": 20, **training},
        "telemetry": {"snapshot_every": 20, "bins": 16},
    }


def is_done(job: dict[str, Any]) -> bool:
    return job["status"] in TERMINAL


def test_a_job_trains_and_its_records_are_served(stack: Stack) -> None:
    job = stack.submit(tiny_spec())
    assert job["status"] == "queued"
    done = stack.wait_for(job["id"], is_done)
    assert done["status"] == "succeeded", done
    assert done["attempt"] == 1 and done["device"] == "cpu"
    assert done["progress"] == {"step": 60, "total_steps": 60}
    assert done["summary"]["final_train_loss"] is not None

    series = stack.client.get(
        f"/v1/jobs/{job['id']}/metrics", params={"names": "train_loss,val_loss"}
    ).json()
    by_name = {item["name"]: item for item in series["series"]}
    assert len(by_name["train_loss"]["steps"]) == 60
    assert len(set(by_name["train_loss"]["steps"])) == 60  # one row per step
    assert by_name["val_loss"]["steps"]

    layers = stack.client.get(f"/v1/jobs/{job['id']}/layers").json()
    assert [layer["name"] for layer in layers] == ["fc1", "fc2", "out"]

    page = stack.client.get(
        f"/v1/jobs/{job['id']}/snapshots", params={"kind": "gradient", "layer": "fc1"}
    ).json()
    assert page["items"], page
    first = page["items"][0]
    assert sum(first["histogram"]["counts"]) == 16 * 2  # every entry of fc1's weight gradient
    assert len(first["histogram"]["edges"]) == 17


def test_cancelling_a_running_job_stops_it_within_seconds(stack: Stack) -> None:
    job = stack.submit(tiny_spec(steps=1_000_000))
    stack.wait_for(job["id"], lambda j: j["status"] == "running" and j["progress"]["step"] > 0)
    asked = time.monotonic()
    assert stack.client.post(f"/v1/jobs/{job['id']}/cancel").status_code == 202
    done = stack.wait_for(job["id"], is_done, timeout=30)
    assert done["status"] == "cancelled"
    assert time.monotonic() - asked < 10


def test_a_cancelled_queued_job_never_starts(stack: Stack) -> None:
    blocker = stack.submit(tiny_spec(steps=1_000_000))
    stack.wait_for(blocker["id"], lambda j: j["status"] == "running")
    queued = stack.submit(tiny_spec())
    assert stack.client.post(f"/v1/jobs/{queued['id']}/cancel").json()["status"] == "cancelled"
    stack.client.post(f"/v1/jobs/{blocker['id']}/cancel")
    stack.wait_for(blocker["id"], is_done, timeout=30)
    # Synchronised, not slept: the one worker takes messages in order, so once it has run a job
    # sent after the cancelled one, it has taken (and skipped) the cancelled one's message.
    after = stack.submit(tiny_spec(steps=5))
    stack.wait_for(after["id"], is_done)
    assert f"job {queued['id']} is no longer queued" in stack.worker_log.read_text()
    never = stack.get(queued["id"])
    assert never["status"] == "cancelled" and never["attempt"] == 0 and never["started_at"] is None


def test_idempotent_submit_trains_one_job(stack: Stack) -> None:
    name = f"idempotent {uuid.uuid4().hex[:8]}"  # no other test's job has it
    spec = {**tiny_spec(steps=20), "name": name}
    headers = {**stack.client.headers, "Idempotency-Key": f"pipeline-run-{name}"}
    first = stack.client.post("/v1/jobs", json=spec, headers=headers)
    again = stack.client.post("/v1/jobs", json=spec, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert again.json()["id"] == first.json()["id"]
    done = stack.wait_for(first.json()["id"], is_done)
    listed = stack.client.get("/v1/jobs", params={"name": name, "limit": 200}).json()["items"]
    assert [job["id"] for job in listed] == [done["id"]]  # one job of that name, not two
    assert done["status"] == "succeeded" and done["attempt"] == 1
