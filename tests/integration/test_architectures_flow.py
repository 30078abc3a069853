"""resnet and sequential jobs through a real worker on both backends: layers named by path in
depth order, per-layer snapshots, a diagnosis; and the residual_vs_plain template shows a plain
deep network failing where the residual one of the same depth trains."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import Stack
from tests.integration.test_studies_flow import wait_for_study
from tests.integration.test_worker_flow import is_done

RESNET = {"kind": "resnet", "activation": "prelu", "resnet": {
    "stem_channels": 8, "norm": "group", "groups": 4,
    "stages": [{"channels": 8, "blocks": 1}, {"channels": 16, "blocks": 1, "stride": 2}]}}
SEQUENTIAL = {"kind": "sequential", "layers": [
    {"type": "conv", "channels": 8}, {"type": "batch_norm"}, {"type": "activation"},
    {"type": "residual", "layers": [{"type": "conv", "channels": 8}, {"type": "layer_norm"},
                                    {"type": "activation", "name": "tanh"}]},
    {"type": "pool", "mode": "max"}, {"type": "flatten"}, {"type": "dropout", "p": 0.1},
    {"type": "linear", "units": 16}, {"type": "activation"}]}


def _spec(model: dict[str, Any]) -> dict[str, Any]:
    return {"name": f"tiny {model['kind']}", "data": {"dataset": "mnist1d",
                                                       "options": {"samples": 500}},
            "model": model, "training": {"steps": 30, "batch_size": 32, "eval_every": 10},
            "telemetry": {"snapshot_every": 10, "bins": 16}}


def test_resnet_and_sequential_jobs_train_with_layer_paths(stack: Stack) -> None:
    expected = {
        "resnet": ["stem", "stage1.block1.conv1", "stage1.block1.conv2", "stage2.block1.conv1",
                   "stage2.block1.shortcut", "stage2.block1.conv2", "out"],
        "sequential": ["conv0", "res3.conv0", "linear7", "out"],
    }
    for model in (RESNET, SEQUENTIAL):
        job = stack.wait_for(stack.submit(_spec(model))["id"], is_done, timeout=180)
        assert job["status"] == "succeeded", (job, stack.log_tail())
        layers = stack.client.get(f"/v1/jobs/{job['id']}/layers").json()
        names = [layer["name"] for layer in layers]
        assert names == expected[model["kind"]]
        depths = [layer["depth"] for layer in layers]
        assert depths == sorted(depths)
        for kind in ("gradient", "weight"):
            snaps = stack.client.get(f"/v1/jobs/{job['id']}/snapshots",
                                     params={"kind": kind, "step": 30}).json()["items"]
            assert [s["layer"] for s in snaps] == names, kind
        acts = stack.client.get(f"/v1/jobs/{job['id']}/snapshots",
                                params={"kind": "activation", "step": 30}).json()["items"]
        assert [s["layer"] for s in acts] == [n for n in names
                                               if n != "out" and not n.endswith("shortcut")]
        diagnosis = stack.client.get(f"/v1/jobs/{job['id']}/diagnosis").json()
        assert diagnosis["final"] is True, diagnosis


def _blocks(row: dict[str, Any]) -> int:
    return int(row["values"]["model.resnet.stages"][0]["blocks"])


@pytest.mark.timeout(1500)  # four real jobs of up to 22 layers on a shared CPU
def test_residual_vs_plain_template_shows_degradation_and_its_cure(stack: Stack) -> None:
    created = stack.client.post("/v1/studies", json={"template": "residual_vs_plain"})
    assert created.status_code == 201, created.text
    study = wait_for_study(stack, created.json()["id"], timeout=1400)
    assert study["counts"] == {"succeeded": 4}
    rows = stack.client.get(f"/v1/studies/{study['id']}/compare").json()["rows"]
    accuracy = {(_blocks(row), row["values"]["model.resnet.shortcut"]):
                row["metrics"]["final_val_accuracy"]["mean"] for row in rows}
    deep = max(blocks for blocks, _ in accuracy)
    shallow = min(blocks for blocks, _ in accuracy)
    assert accuracy[(deep, "identity")] > accuracy[(deep, "none")] + 0.2, accuracy  # the cure
    assert accuracy[(shallow, "none")] > accuracy[(deep, "none")] + 0.2, accuracy  # degradation
    deep_plain = next(row for row in rows if _blocks(row) == deep
                      and row["values"]["model.resnet.shortcut"] == "none")
    diagnosis = stack.client.get(f"/v1/jobs/{deep_plain['job_ids'][0]}/diagnosis").json()
    vanishing = [f for f in diagnosis["findings"] if f["code"] == "vanishing_gradients"]
    assert vanishing, diagnosis
    assert vanishing[0]["layer"] == "stem"
    # A root vanishing is cured by shortcuts; a symptom takes its root cause's remedy (with
    # PyTorch's default init the activations collapse first, and Kaiming init is that remedy).
    cause = next((f for f in diagnosis["findings"] if f["code"] == vanishing[0]["caused_by"]),
                 None)
    expected = cause["remedy"] if cause else {"model.resnet.shortcut": "identity"}
    assert vanishing[0]["remedy"] == expected and expected, diagnosis
    assert "no shortcuts" in vanishing[0]["detail"]
