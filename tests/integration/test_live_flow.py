"""Following jobs live through a real worker, on both backends: early stopping and stop_on,
the event stream from submit to end (and resumed), the job's log, and a signed webhook."""

from __future__ import annotations

from typing import Any

import pytest
from gradlab_client import Client, EndEvent, MetricsEvent, StatusEvent

from tests.integration.conftest import Stack
from tests.live.receiver import receiver

TERMINAL = {"succeeded", "failed", "cancelled", "diverged"}


STREAMED_STEPS = 1500


def spiral(steps: int, **training: Any) -> dict[str, Any]:
    return {
        "data": {"dataset": "spiral", "options": {"points": 100}},
        "model": {"hidden": [16, 16]},
        "training": {"steps": steps, "batch_size": 32, "eval_every": 10, **training},
        "telemetry": {"snapshot_every": 20, "bins": 16},
    }


def is_done(job: dict[str, Any]) -> bool:
    return job["status"] in TERMINAL


@pytest.fixture
def sdk(stack: Stack) -> Client:
    return Client(base_url=str(stack.client.base_url), http_client=stack.client, max_retries=0)


def test_early_stopping_ends_the_job_as_succeeded_with_its_best_step(stack: Stack) -> None:
    # No evaluation can beat the first by 1e6: the job stops after two more evaluations.
    early = {"metric": "val_loss", "patience": 2, "min_delta": 1e6}
    job = stack.submit(spiral(100_000, early_stopping=early))
    done = stack.wait_for(job["id"], is_done)
    assert done["status"] == "succeeded", done
    assert done["stopped_early"] is True and done["best_step"] == 10
    assert done["progress"]["step"] == 30 and done["progress"]["total_steps"] == 100_000
    assert done["stop_reason"].startswith("early stopping: val_loss did not improve")
    assert done["error"] is None


def test_stop_on_stops_a_run_stuck_at_chance_within_a_snapshot_interval(stack: Stack) -> None:
    # Zero weights never break symmetry: the loss sits at ln(3) (no_learning, from step 50).
    spec = spiral(100_000, stop_on=["no_learning"])
    spec["model"]["init"] = {"scheme": "zeros"}
    job = stack.submit(spec)
    done = stack.wait_for(job["id"], is_done)
    assert done["status"] == "failed", done
    assert done["stop_reason"].startswith("stop_on no_learning at step ")
    assert done["error"] == done["stop_reason"]
    assert done["stopped_early"] is False
    # The rule can speak from step 50; the next snapshot step (60) is where it is heard.
    assert 50 <= done["progress"]["step"] <= 60 + 20, done["progress"]
    codes = {f["code"] for f in stack.client.get(f"/v1/jobs/{job['id']}/diagnosis").json()
             ["findings"]}
    assert "no_learning" in codes


def test_a_pipeline_follows_a_job_from_submit_to_end_and_can_resume(
    stack: Stack, sdk: Client
) -> None:
    # Long enough to run through several reporter flushes: metric events exist only while the
    # job runs (a 120-step job could end before the first poll saw one).
    job = sdk.jobs.create(spiral(STREAMED_STEPS))
    events = list(sdk.jobs.stream(job.id, timeout=120))
    statuses = [e.data.status for e in events if isinstance(e, StatusEvent)]
    assert statuses == ["queued", "running", "succeeded"], statuses
    assert isinstance(events[-1], EndEvent) and events[-1].data["status"] == "succeeded"
    ids = [e.id for e in events[:-1]]
    assert all(i is not None for i in ids) and ids == sorted(ids) and len(set(ids)) == len(ids)
    metrics = [e for e in events if isinstance(e, MetricsEvent)]
    steps = [e.data.points["train_loss"].step for e in metrics]
    assert steps and steps == sorted(steps) and steps[-1] <= STREAMED_STEPS
    # The ending carries the final values (the last metric events may be gone by then).
    ending = [e for e in events if isinstance(e, StatusEvent)][-1]
    assert ending.data.summary and ending.data.summary["final_train_loss"] is not None
    # Reconnecting after the third event replays exactly the rest that is kept: progress and
    # metric events go when the job ends (its metrics are in /metrics).
    resumed = list(sdk.jobs.stream(job.id, last_event_id=ids[2], timeout=30))
    kept = [e.id for e in events[3:-1] if e.type not in ("progress", "metrics")]
    assert [e.id for e in resumed[:-1]] == kept and kept
    assert isinstance(resumed[-1], EndEvent)


def test_the_job_log_has_the_claim_and_the_error_without_host_paths(stack: Stack) -> None:
    # cifar10 without its files: the worker fails reading a folder on its own disk.
    spec = {"data": {"dataset": "cifar10", "options": {"limit": 10}},
            "model": {"kind": "mlp", "hidden": [8]}, "training": {"steps": 5}}
    job = stack.submit(spec)
    done = stack.wait_for(job["id"], is_done)
    assert done["status"] == "failed", done

    def lines() -> list[dict[str, Any]]:
        page = stack.client.get(f"/v1/jobs/{job['id']}/logs").json()
        return list(page["lines"])

    found = _eventually(lines, lambda got: any(line["level"] == "ERROR" for line in got))
    text = "\n".join(line["message"] for line in found)
    assert "attempt 1 claimed" in text
    assert "Traceback" in text and 'File "' in text
    assert str(stack.settings.home) not in text and "/site-packages/" not in text
    after = found[0]["id"]
    page = stack.client.get(f"/v1/jobs/{job['id']}/logs", params={"after": after}).json()
    assert [line["id"] for line in page["lines"]] == [line["id"] for line in found[1:]]


def test_a_webhook_receiver_gets_a_signed_job_finished(stack: Stack, sdk: Client) -> None:
    with receiver() as hook_receiver:
        hook = sdk.webhooks.create(hook_receiver.url, events=["job.finished"])
        assert hook.secret is not None and hook.secret.startswith("whsec_")
        hook_receiver.secret = hook.secret
        hook_receiver.statuses = [503]  # the first try fails: the delivery is retried
        job = stack.submit(spiral(20))
        stack.wait_for(job["id"], is_done)
        assert hook_receiver.arrived.wait(60), (hook_receiver.rejected, stack.log_tail())
    payload = hook_receiver.received[0]
    assert payload["type"] == "job.finished"
    assert payload["data"]["job_id"] == job["id"] and payload["data"]["status"] == "succeeded"
    assert hook_receiver.rejected == [] and hook_receiver.hits == 2
    deliveries = _eventually(lambda: sdk.webhooks.deliveries(hook.id),
                             lambda got: bool(got) and got[0].status != "pending")
    assert [(d.type, d.status, d.attempts, d.response_status) for d in deliveries] == [
        ("job.finished", "succeeded", 2, 204)]
    sdk.webhooks.delete(hook.id)


def _eventually(read: Any, ok: Any, timeout: float = 30) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while True:
        got = read()
        if ok(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.2)
