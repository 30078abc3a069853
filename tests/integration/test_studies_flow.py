"""A study through a real worker: a 2x2 grid trains to completion and its comparison agrees
with the jobs' own summaries; a template study runs and the CLI prints its table."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from gradlab_client import cli

from tests.integration.conftest import Stack
from tests.integration.test_worker_flow import tiny_spec

TERMINAL = {"succeeded", "failed", "cancelled", "diverged"}


def wait_for_study(stack: Stack, study_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        study: dict[str, Any] = stack.client.get(f"/v1/studies/{study_id}").json()
        if sum(n for status, n in study["counts"].items() if status in TERMINAL) == study["jobs"]:
            return study
        assert stack.worker.poll() is None, stack.log_tail()
        time.sleep(0.5)
    raise AssertionError(f"study {study_id} did not finish\n{stack.log_tail()}")


def test_a_2x2_study_trains_and_its_comparison_matches_the_jobs(stack: Stack) -> None:
    body = {"base": tiny_spec(steps=40), "seeds": [0, 1],
            "grid": {"model.activation": ["relu", "tanh"], "optimizer.lr": [0.01, 0.003]}}
    created = stack.client.post("/v1/studies", json=body)
    assert created.status_code == 201, created.text
    study = wait_for_study(stack, created.json()["id"])
    assert study["counts"] == {"succeeded": 8}
    compared = stack.client.get(f"/v1/studies/{study['id']}/compare",
                                params={"target_metric": "train_loss", "target_value": 5.0})
    rows = compared.json()["rows"]
    expected = [{"model.activation": activation, "optimizer.lr": lr}
                for activation in ("relu", "tanh") for lr in (0.01, 0.003)]
    assert [row["values"] for row in rows] == expected
    for row in rows:
        jobs = [stack.get(job_id) for job_id in row["job_ids"]]
        assert {job["spec"]["model"]["activation"] for job in jobs} == {
            row["values"]["model.activation"]}
        finals = [job["summary"]["final_val_accuracy"] for job in jobs]
        stat = row["metrics"]["final_val_accuracy"]
        assert math.isclose(stat["mean"], sum(finals) / 2) and stat["n"] == 2
        assert math.isclose(stat["std"], abs(finals[0] - finals[1]) / 2, abs_tol=1e-12)
        assert row["reached_target"] == 2 and row["steps_to_target"]["mean"] <= 1  # the first step


def test_a_template_study_runs_and_the_cli_prints_its_table(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    overrides = {"training.steps": 30, "training.eval_every": 10, "model.hidden": [16] * 3,
                 "telemetry.snapshot_every": 10}
    created = stack.client.post("/v1/studies", json={"template": "init_x_activation",
                                                     "overrides": overrides})
    assert created.status_code == 201, created.text
    study = wait_for_study(stack, created.json()["id"])
    assert study["counts"] == {"succeeded": 12}
    code = cli.main(["study", "compare", study["id"], "--sort", "final_val_accuracy",
                     "--order", "desc"], http_client=stack.client)
    printed = capsys.readouterr().out
    assert code == 0
    lines = printed.splitlines()
    assert lines[0].split()[:3] == ["model.init.scheme", "model.activation", "val_acc"]
    assert len(lines) == 13
    assert "symmetry" in printed  # zero init is diagnosed as never breaking symmetry
