"""Heal end to end through the real worker, on both backends: a zero-initialized job asks for a
heal in its spec; the worker, as the job ends, diagnoses symmetry, submits the Kaiming remedy as
round 1, trains it, settles it cured and marks the heal healed. The heal is read from the store
while it runs (reading it through the API would advance it by itself), then through the API."""

from __future__ import annotations

import time
from typing import Any

from gradlab_contract.models import Heal

from store import heals, orm
from tests.integration.conftest import Stack


def zero_init_spec(**diagnosis: Any) -> dict[str, Any]:
    return {"name": "zero-init", "data": {"dataset": "spiral"},
            "model": {"hidden": [64, 64], "init": {"scheme": "zeros"}},
            "optimizer": {"name": "adam", "lr": 0.001},
            "training": {"steps": 300, "batch_size": 64, "eval_every": 50, "device": "cpu"},
            "telemetry": {"snapshot_every": 50, "bins": 16}, "diagnosis": diagnosis}


def stored_heal(stack: Stack, job_id: str, timeout: float = 270) -> Heal:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with stack.database.read() as session:
            heal_id = session.query(orm.Heal.id).filter(orm.Heal.job_id == job_id).scalar()
            row = session.get(orm.Heal, heal_id) if heal_id else None
            found = heals._to_heal(row) if row is not None else None
        if found is not None and found.done:
            return found
        assert stack.worker.poll() is None, stack.log_tail()
        time.sleep(0.25)
    raise AssertionError(f"the heal of {job_id} did not end\n{stack.log_tail()}")


def test_a_heal_asked_for_in_the_spec_runs_through_the_worker(stack: Stack) -> None:
    job = stack.submit(zero_init_spec(heal={"max_rounds": 2}))
    heal = stored_heal(stack, job["id"])
    assert heal.status == "healed", heal
    first, second = heal.rounds
    assert "symmetry" in first.causes and first.status == "succeeded"
    assert second.changes == {"model.init.scheme": "kaiming_normal"}
    assert second.outcome == "cured" and heal.healthy_job_id == second.job_id
    child = stack.get(second.job_id)
    assert child["parent_id"] == job["id"] and child["spec"]["diagnosis"]["heal"] is None
    served = Heal.model_validate(stack.client.get(f"/v1/heals/{heal.id}").json())
    assert served == heal
    # The parent's symmetry finding records what its remedy job proved.
    findings = stack.client.get(f"/v1/jobs/{job['id']}/diagnosis").json()["findings"]
    symmetry = next(f for f in findings if f["code"] == "symmetry")
    assert [(o["child_id"], o["outcome"]) for o in symmetry["outcomes"]] == [
        (second.job_id, "cured")]
