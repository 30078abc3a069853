"""A succeeded job keeps its model: listed, downloaded (streamed, ETag, Range), checked, loaded;
a finished job is deleted with its files. A real worker on both backends."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from gradlab_client import Client
from gradlab_contract.spec import JobSpec

from store.artifacts import open_artifact_store
from tests.integration.conftest import Stack
from training.data import load_dataset

SPEC = {
    "data": {"dataset": "digits"},
    "model": {"kind": "cnn", "conv": [{"channels": 4, "pool": "max"}], "hidden": [16]},
    "training": {"steps": 40, "eval_every": 10, "batch_size": 32, "keep": "both"},
    "telemetry": {"snapshot_every": 20},
}
EXPECTED = {
    "weights-best.safetensors", "weights-final.safetensors", "model-best.pt", "model-final.pt",
    "model-best.onnx", "model-final.onnx", "model-card.json",
}


def _accuracy(logits: np.ndarray | torch.Tensor, labels: torch.Tensor) -> float:
    return float((torch.as_tensor(logits).argmax(dim=1) == labels).float().mean())


def test_a_succeeded_job_keeps_its_model(stack: Stack, tmp_path: Path) -> None:
    job = stack.submit(SPEC)
    done = stack.wait_for(job["id"], lambda j: j["status"] not in ("queued", "running"), 180)
    assert done["status"] == "succeeded", done
    assert done["artifact_errors"] == {}
    client = Client(base_url=str(stack.client.base_url), http_client=stack.client)
    listed = {artifact.name: artifact for artifact in client.jobs.artifacts(job["id"])}
    assert set(listed) == EXPECTED

    onnx_path = client.jobs.download(job["id"], name="model-best.onnx", path=tmp_path)
    assert hashlib.sha256(onnx_path.read_bytes()).hexdigest() == listed["model-best.onnx"].sha256
    card = client.jobs.model_card(job["id"])
    assert card["kept"]["best"] % 10 == 0 and card["input"]["scaling"]["axis"] == 1

    # The validation rows as generated (raw), through each export, give the recorded accuracy.
    spec = JobSpec.model_validate(SPEC)
    data = load_dataset(spec.data, seed=spec.training.seed)
    scaling = card["input"]["scaling"]
    view = (1, -1, 1, 1)
    raw = data.x_val * torch.tensor(scaling["scale"]).reshape(view) + torch.tensor(
        scaling["shift"]).reshape(view)
    (logits,) = onnxruntime.InferenceSession(str(onnx_path)).run(None, {"x": raw.numpy()})
    best_accuracy = done["summary"]["best_val_accuracy"]
    assert _accuracy(logits, data.y_val) == pytest.approx(best_accuracy, abs=1e-4)
    model = client.jobs.load_model(job["id"], which="final")
    with torch.no_grad():
        final_logits = model(raw)
    assert _accuracy(final_logits, data.y_val) == pytest.approx(
        done["summary"]["final_val_accuracy"], abs=1e-4)


def test_download_serves_etag_and_ranges(stack: Stack) -> None:
    job = stack.submit({**SPEC, "training": {**SPEC["training"], "keep": "best"}})
    stack.wait_for(job["id"], lambda j: j["status"] == "succeeded", 180)
    url = f"/v1/jobs/{job['id']}/artifacts/weights-best.safetensors"
    whole = stack.client.get(url)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    etag, size = whole.headers["etag"], len(whole.content)
    assert etag == f'"{hashlib.sha256(whole.content).hexdigest()}"'
    assert stack.client.get(url, headers={"If-None-Match": etag}).status_code == 304
    part = stack.client.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == whole.content[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{size}"
    tail = stack.client.get(url, headers={"Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == whole.content[-5:]
    beyond = stack.client.get(url, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
    missing = stack.client.get(f"/v1/jobs/{job['id']}/artifacts/nothing.bin")
    assert missing.status_code == 404 and missing.json()["field"] == "name"


def test_delete_a_finished_job_removes_rows_and_files(stack: Stack) -> None:
    job = stack.submit({**SPEC, "training": {**SPEC["training"], "keep": "final"}})
    stack.wait_for(job["id"], lambda j: j["status"] == "succeeded", 180)
    store = open_artifact_store(stack.settings)
    assert store.listing(f"jobs/{job['id']}")
    used = stack.client.get("/v1/usage").json()
    assert used["artifact_bytes"] >= sum(i.size for i in store.listing(f"jobs/{job['id']}"))
    assert stack.client.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert stack.client.get(f"/v1/jobs/{job['id']}").status_code == 404
    assert store.listing(f"jobs/{job['id']}") == []
    after = stack.client.get("/v1/usage").json()
    assert after["artifact_bytes"] < used["artifact_bytes"]
    assert stack.client.delete(f"/v1/jobs/{job['id']}").status_code == 404


def test_an_unfinished_job_cannot_be_deleted(stack: Stack) -> None:
    job = stack.submit({**SPEC, "training": {**SPEC["training"], "steps": 100_000}})
    response = stack.client.delete(f"/v1/jobs/{job['id']}")
    assert response.status_code == 409 and response.json()["field"] == "status"
    stack.client.post(f"/v1/jobs/{job['id']}/cancel")


def test_a_warm_start_begins_from_the_kept_weights(stack: Stack) -> None:
    base = {"data": {"dataset": "spiral"}, "model": {"hidden": [16]},
            "training": {"steps": 60, "eval_every": 20, "keep": "final"}}
    source = stack.submit(base)
    done = stack.wait_for(source["id"], lambda j: j["status"] == "succeeded", 180)
    warm = {
        **base,
        "model": {"hidden": [16], "init": {"scheme": "from_job", "job": source["id"],
                                           "which": "final"}},
        # One step too small to move anything: its evaluation is the source's final one.
        "optimizer": {"name": "sgd", "lr": 1e-9},
        "training": {"steps": 1, "eval_every": 1},
    }
    job = stack.submit(warm)
    started = stack.wait_for(job["id"], lambda j: j["status"] not in ("queued", "running"), 180)
    assert started["status"] == "succeeded", started
    assert started["summary"]["final_val_accuracy"] == pytest.approx(
        done["summary"]["final_val_accuracy"], abs=1e-6)

    def refused(spec: dict[str, object]) -> dict[str, object]:
        response = stack.client.post("/v1/jobs", json=spec)
        assert response.status_code == 422, response.text
        return dict(response.json())

    wider = {**warm, "model": {**warm["model"], "hidden": [32]}}  # type: ignore[dict-item]
    assert refused(wider)["field"] == "model.init.job"
    best = {**warm, "model": {"hidden": [16], "init": {"scheme": "from_job", "job": source["id"],
                                                       "which": "best"}}}
    assert refused(best)["field"] == "model.init.which"  # it kept its final weights only
    unknown = {**warm, "model": {"hidden": [16], "init": {"scheme": "from_job", "job": "nope"}}}
    assert refused(unknown)["field"] == "model.init.job"
    bare = {**warm, "model": {"hidden": [16], "init": {"scheme": "from_job"}}}
    assert "model.init.job" in str(refused(bare))
