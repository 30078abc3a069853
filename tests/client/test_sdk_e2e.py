"""The SDK against the real app in process: every call, and every error class as a real server
response produces it. (Retries against the real app: test_sdk_e2e_retries.py.)"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradlab_client as gl
import numpy as np
import pytest
from fastapi.testclient import TestClient
from gradlab_client import Client

Spec = dict[str, Any]


def test_create_get_and_list_round_trip(spiral: Spec, sdk: Client) -> None:
    typed = sdk.jobs.create(gl.JobSpec.model_validate(spiral))
    plain = sdk.jobs.create({**spiral, "name": "other"})
    assert typed.status == plain.status == "queued"
    assert typed.progress.total_steps == 20 and typed.spec.model.hidden == [8]
    assert sdk.jobs.get(typed.id) == typed
    assert [job.id for job in sdk.jobs.list()] == [plain.id, typed.id]  # newest first
    assert [job.id for job in sdk.jobs.list(name="other")] == [plain.id]
    assert list(sdk.jobs.list(status="running")) == []


def test_list_walks_every_page(spiral: Spec, sdk: Client) -> None:
    created = [sdk.jobs.create(spiral).id for _ in range(5)]
    assert [job.id for job in sdk.jobs.list(page_size=2)] == created[::-1]


def test_unknown_and_foreign_jobs_are_not_found(
    spiral: Spec, sdk: Client, test_client: TestClient, other_key: str
) -> None:
    with pytest.raises(gl.NotFound) as caught:
        sdk.jobs.get("no-such-job")
    assert caught.value.status == 404 and caught.value.code == "not_found"
    theirs = Client(base_url=str(test_client.base_url), api_key=other_key, http_client=test_client)
    job = theirs.jobs.create(spiral)
    with pytest.raises(gl.NotFound):
        sdk.jobs.metrics(job.id)


@pytest.mark.parametrize("key", ["glk_wrong", None])
def test_a_wrong_or_missing_key_is_unauthorized(
    test_client: TestClient, key: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GRADLAB_API_KEY", raising=False)
    client = Client(base_url=str(test_client.base_url), api_key=key, http_client=test_client)
    with pytest.raises(gl.Unauthorized) as caught:
        client.catalog()
    assert caught.value.status == 401 and caught.value.field == "Authorization"


def test_a_bad_spec_names_the_field(spiral: Spec, sdk: Client) -> None:
    bad = {**spiral, "model": {"init": {"scheme": "he"}}, "optimizer": {"lr": -1}}
    with pytest.raises(gl.ValidationError) as caught:
        sdk.jobs.create(bad)
    error = caught.value
    assert error.status == 422 and error.field == "model.init.scheme"
    assert {e.field for e in error.errors} == {"model.init.scheme", "optimizer.lr"}
    assert "model.init.scheme" in str(error)


def test_a_spec_over_a_limit_names_the_field(spiral: Spec, sdk: Client) -> None:
    with pytest.raises(gl.ValidationError) as caught:
        sdk.jobs.create({**spiral, "model": {"hidden": [4096, 4096]}})
    assert caught.value.code == "limit_exceeded" and caught.value.field == "model.hidden"


def test_an_idempotency_key_replays_and_conflicts(spiral: Spec, sdk: Client) -> None:
    first = sdk.jobs.create(spiral, idempotency_key="nightly-1")
    assert sdk.jobs.create(spiral, idempotency_key="nightly-1").id == first.id
    with pytest.raises(gl.Conflict) as caught:
        sdk.jobs.create({**spiral, "name": "changed"}, idempotency_key="nightly-1")
    assert caught.value.status == 409
    assert len(list(sdk.jobs.list())) == 1


def test_a_full_queue_is_rate_limited_with_retry_after(spiral: Spec, sdk: Client) -> None:
    for _ in range(int(sdk.catalog().limits["max_queued_jobs_per_team"])):
        sdk.jobs.create(spiral)
    with pytest.raises(gl.RateLimited) as caught:
        sdk.jobs.create(spiral)
    assert caught.value.code == "quota_exceeded" and caught.value.retry_after == 30


def test_cancel_is_immediate_for_a_queued_job_and_repeatable(spiral: Spec, sdk: Client) -> None:
    job = sdk.jobs.create(spiral)
    assert sdk.jobs.cancel(job.id).status == "cancelled"
    assert sdk.jobs.cancel(job.id).status == "cancelled"
    assert sdk.jobs.wait(job.id, progress=False).status == "cancelled"


def test_wait_returns_when_the_worker_ends_the_job(
    spiral: Spec, sdk: Client, finish: Callable[..., None]
) -> None:
    job = sdk.jobs.create(spiral)
    ender = threading.Timer(0.3, finish, args=(job.id, "diverged"),
                            kwargs={"summary": {"final_loss": None}, "progress_step": 7})
    ender.start()
    started = time.monotonic()
    done = sdk.jobs.wait(job.id, poll_interval=0.05, timeout=30, progress=False)
    ender.join()
    assert done.status == "diverged" and done.progress.step == 7
    assert done.summary == {"final_loss": None} and time.monotonic() - started >= 0.3


def test_wait_times_out_on_a_job_that_stays_queued(spiral: Spec, sdk: Client) -> None:
    job = sdk.jobs.create(spiral)
    with pytest.raises(gl.Timeout) as caught:
        sdk.jobs.wait(job.id, timeout=0.2, poll_interval=0.05, progress=False)
    assert caught.value.job is not None and caught.value.job.status == "queued"


def test_metrics_layers_and_snapshots(
    spiral: Spec, sdk: Client, record: Callable[[str], int]
) -> None:
    job = sdk.jobs.create(spiral)
    record(job.id)
    series = sdk.jobs.metrics(job.id)
    assert {s.name for s in series} == {"train_loss", "val_accuracy"}
    loss = series.get("train_loss")
    assert loss is not None and loss.steps == list(range(10)) and loss.values[0] == 1.0
    only = sdk.jobs.metrics(job.id, names=["val_accuracy"], start_step=4, end_step=8)
    assert [s.name for s in only] == ["val_accuracy"] and only[0].steps == [4, 6, 8]
    assert len(sdk.jobs.metrics(job.id, names="train_loss", max_points=4)[0].steps) <= 4
    assert [layer.name for layer in sdk.jobs.layers(job.id)] == ["fc1", "out"]
    every = list(sdk.jobs.snapshots(job.id, page_size=3))  # 8 snapshots over 3 pages
    assert len(every) == 8
    fc1 = list(sdk.jobs.snapshots(job.id, kind="gradient", layer="fc1"))
    assert [(s.step, s.layer, s.kind) for s in fc1] == [(0, "fc1", "gradient"),
                                                        (5, "fc1", "gradient")]
    at_5 = list(sdk.jobs.snapshots(job.id, kind="weight", layer="out", step=5))
    assert len(at_5) == 1 and at_5[0].histogram.counts == [3, 5] and at_5[0].log_histogram


def test_catalog(sdk: Client) -> None:
    catalog = sdk.catalog()
    assert "relu" in {value.value for value in catalog.enums["model.activation"]}
    assert catalog.limits["max_parameters"] == 100_000


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def test_datasets_upload_and_list(spiral: Spec, sdk: Client, tmp_path: Path) -> None:
    path = tmp_path / "blobs.npz"
    rng = np.random.default_rng(0)
    path.write_bytes(npz_bytes(x=rng.normal(size=(40, 3)), y=np.arange(40) % 2))
    info = sdk.datasets.upload(path, description="two blobs")
    assert info.id.startswith("upload:") and info.name == "blobs" and info.rows == 40
    assert info.input_shape == [3] and info.num_classes == 2
    listed = {d.id: d for d in sdk.datasets.list()}
    assert info.id in listed and listed["spiral"].builtin
    job = sdk.jobs.create({**spiral, "data": {"dataset": info.id}})
    assert job.spec.data.dataset == info.id


def test_bad_and_oversized_uploads_are_validation_errors(sdk: Client, tmp_path: Path) -> None:
    bad = tmp_path / "notes.npz"
    bad.write_text("not an archive")
    with pytest.raises(gl.ValidationError) as caught:
        sdk.datasets.upload(bad)
    assert caught.value.status == 422 and caught.value.code == "invalid_upload"
    big = tmp_path / "big.npz"
    big.write_bytes(npz_bytes(x=np.zeros((20_000, 2)), y=np.zeros(20_000, dtype=np.int64)))
    with pytest.raises(gl.ValidationError) as caught:
        sdk.datasets.upload(big)
    assert caught.value.status == 413
