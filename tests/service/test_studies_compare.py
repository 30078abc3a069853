"""GET /v1/studies/{id}/compare: a row per variant, seeds reduced to mean and spread, the first
step reaching a target, diagnosis codes, and sorting by any column."""

from __future__ import annotations

import math
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from store import orm, series
from store.db import Database
from tests.service.support import BOTH_BACKENDS, SPIRAL, JsonDict

GRID = {"model.activation": ["relu", "tanh"]}
# (activation, seed) -> final_val_accuracy, and the step its val_accuracy first reaches 0.9
RESULTS = {("relu", 1): (0.95, 10), ("relu", 2): (0.91, 20), ("tanh", 1): (0.5, None),
           ("tanh", 2): (0.7, None)}


def fake_results(database: Database, study_id: str) -> None:
    """What workers would have written: summaries, a val_accuracy series, a finding."""
    with database.transaction() as session:
        for job in session.scalars(select(orm.Job).where(orm.Job.study_id == study_id)):
            key = (job.spec["model"]["activation"], job.spec["training"]["seed"])
            final, reach = RESULTS[key]
            job.status, job.summary = "succeeded", {"final_val_accuracy": final,
                                                    "final_train_loss": 1 - final}
            job.status, job.attempt = "running", 1  # a fenced write needs a running attempt
            session.flush()
            series.write_metrics(session, job_id=job.id, attempt=1, rows=[
                (step, "val_accuracy", 0.95 if reach is not None and step >= reach else 0.3)
                for step in (0, 10, 20, 30)])
            job.status = "succeeded"
            if key[0] == "tanh":
                session.add(orm.Finding(job_id=job.id, code="saturation", severity="warning",
                                        title="t", detail="d", evidence={}, final=True))


@pytest.fixture
def study(client: TestClient, auth: dict[str, str], database: Database) -> JsonDict:
    response = client.post("/v1/studies", headers=auth,
                           json={"base": SPIRAL, "grid": GRID, "seeds": [1, 2]})
    body: JsonDict = response.json()
    fake_results(database, body["id"])
    return body


def compare(client: TestClient, auth: dict[str, str], study: JsonDict, **params: Any) -> JsonDict:
    response = client.get(f"/v1/studies/{study['id']}/compare", params=params, headers=auth)
    assert response.status_code == 200, response.text
    body: JsonDict = response.json()
    return body


@BOTH_BACKENDS
def test_rows_reduce_seeds_to_mean_and_spread(
    client: TestClient, auth: dict[str, str], study: JsonDict
) -> None:
    body = compare(client, auth, study, target_metric="val_accuracy", target_value=0.9)
    assert body["target"] == "val_accuracy >= 0.9"
    relu, tanh = body["rows"]
    assert relu["values"] == {"model.activation": "relu"} and relu["seeds"] == [1, 2]
    accuracy = relu["metrics"]["final_val_accuracy"]
    assert math.isclose(accuracy["mean"], 0.93) and math.isclose(accuracy["std"], 0.02)
    assert relu["steps_to_target"]["mean"] == 15 and relu["reached_target"] == 2
    assert tanh["steps_to_target"] is None and tanh["reached_target"] == 0
    assert tanh["codes"] == ["saturation"] and relu["codes"] == []
    assert relu["statuses"] == {"succeeded": 2} and relu["metrics"]["final_val_loss"] is None


def test_rows_sort_by_any_column(
    client: TestClient, auth: dict[str, str], study: JsonDict
) -> None:
    by_loss = compare(client, auth, study, sort="final_train_loss", order="asc")["rows"]
    assert [row["values"]["model.activation"] for row in by_loss] == ["relu", "tanh"]
    by_path = compare(client, auth, study, sort="model.activation", order="desc")["rows"]
    assert [row["values"]["model.activation"] for row in by_path] == ["tanh", "relu"]
    response = client.get(f"/v1/studies/{study['id']}/compare", params={"sort": "nope"},
                          headers=auth)
    assert response.status_code == 422 and response.json()["field"] == "sort"
