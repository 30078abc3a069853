"""Metrics, layers and snapshots of a job, written as a worker writes them (claim, then fenced
batches through the store) and read back through the API."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from gradlab_contract.models import MetricsResponse, SnapshotPage

from store import leases, series, snapshots
from store.db import Database
from tests.service.support import BOTH_BACKENDS, JsonDict


@pytest.fixture
def running(submit: Callable[..., JsonDict], claim: Callable[[str], int]) -> tuple[str, int]:
    job_id = submit()["id"]
    return job_id, claim(job_id)


def write_metrics(database: Database, job: tuple[str, int], rows: list[Any]) -> None:
    with database.transaction() as session:
        series.write_metrics(session, job_id=job[0], attempt=job[1], rows=rows)


def snapshot(step: int, kind: str, layer: str, depth: int) -> dict[str, Any]:
    return {"step": step, "kind": kind, "layer": layer, "depth": depth,
            "stats": {"mean": 0.5, "std": math.inf},
            "histogram": {"edges": [0.0, 0.5, 1.0], "counts": [3, 4]}}


@BOTH_BACKENDS
def test_metrics_are_downsampled_on_the_server_keeping_spikes(
    client: TestClient, auth: dict[str, str], database: Database, running: tuple[str, int],
) -> None:
    loss = [(step, "loss", 1.0 + (50.0 if step == 1234 else 0.0)) for step in range(5000)]
    write_metrics(database, running, [*loss, (10, "val_acc", 0.5), (20, "val_acc", math.nan)])
    url = f"/v1/jobs/{running[0]}/metrics"
    response = client.get(url, params={"names": "loss", "max_points": 100}, headers=auth)
    assert response.status_code == 200, response.text
    (series,) = MetricsResponse.model_validate(response.json()).series
    assert series.name == "loss" and 2 <= len(series.steps) <= 100
    assert 1234 in series.steps and max(v for v in series.values if v is not None) == 51.0
    assert series.steps == sorted(series.steps)
    both = client.get(f"{url}?names=val_acc&names=loss&start_step=0&end_step=99",
                      headers=auth).json()["series"]
    assert [s["name"] for s in both] == ["val_acc", "loss"]
    assert both[0]["values"] == [0.5, None]  # a NaN comes back as null
    assert len(both[1]["steps"]) == 100
    everything = client.get(url, params={"names": "loss,val_acc"}, headers=auth).json()
    assert len(everything["series"][0]["steps"]) <= 1000  # the default max_points


@BOTH_BACKENDS
def test_a_whole_series_streams_as_ndjson_in_step_order(
    client: TestClient, auth: dict[str, str], database: Database, running: tuple[str, int],
) -> None:
    rows = [(step, "loss", 1.0 / (step + 1)) for step in range(0, 5000, 2)]
    write_metrics(database, running, [*rows, (3, "loss", math.inf)])
    url = f"/v1/jobs/{running[0]}/metrics/loss/points"
    response = client.get(url, headers=auth)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert len(lines) > 1  # one line per stored block, not one document
    steps = [step for line in lines for step in line["steps"]]
    values = [value for line in lines for value in line["values"]]
    assert steps == sorted([*range(0, 5000, 2), 3])
    assert values[:4] == [1.0, 1 / 3, None, 0.2]  # step 3 was not finite
    window = client.get(url, params={"start_step": 100, "end_step": 110}, headers=auth)
    assert [s for line in window.text.splitlines() for s in json.loads(line)["steps"]] == list(
        range(100, 111, 2))
    missing = client.get(f"/v1/jobs/{running[0]}/metrics/nothing/points", headers=auth)
    assert missing.status_code == 200 and missing.text == ""  # not recorded (yet): empty
    backwards = client.get(url, params={"start_step": 9, "end_step": 2}, headers=auth)
    assert backwards.status_code == 422 and "end_step" in backwards.text


@pytest.mark.parametrize(
    ("params", "field"),
    [({"max_points": 1}, "max_points"), ({"max_points": 100_001}, "max_points"),
     ({"start_step": 10, "end_step": 5}, "end_step"), ({"start_step": -1}, "start_step")],
)
def test_bad_metric_parameters_are_422_naming_them(
    client: TestClient, auth: dict[str, str], running: tuple[str, int],
    params: dict[str, Any], field: str,
) -> None:
    response = client.get(f"/v1/jobs/{running[0]}/metrics", params=params, headers=auth)
    assert response.status_code == 422 and response.json()["field"] == field


def test_a_job_without_metrics_has_no_series(
    client: TestClient, auth: dict[str, str], submit: Callable[..., JsonDict]
) -> None:
    job_id = submit()["id"]
    assert client.get(f"/v1/jobs/{job_id}/metrics", headers=auth).json() == {"series": []}
    assert client.get(f"/v1/jobs/{job_id}/layers", headers=auth).json() == []


@BOTH_BACKENDS
def test_layers_come_in_depth_order(
    client: TestClient, auth: dict[str, str], database: Database, running: tuple[str, int],
) -> None:
    layers = [{"name": "out", "type": "linear", "shape": [3, 16], "parameters": 51, "depth": 1},
              {"name": "fc1", "type": "linear", "shape": [16, 2], "parameters": 48, "depth": 0}]
    with database.transaction() as session:
        snapshots.write_layers(session, job_id=running[0], attempt=running[1], layers=layers)
    response = client.get(f"/v1/jobs/{running[0]}/layers", headers=auth)
    assert [layer["name"] for layer in response.json()] == ["fc1", "out"]
    assert response.json()[0] == layers[1]


@BOTH_BACKENDS
def test_snapshots_filter_and_page(
    client: TestClient, auth: dict[str, str], database: Database, running: tuple[str, int],
) -> None:
    rows = [snapshot(step, kind, layer, depth) for step in (0, 10, 20)
            for kind in ("gradient", "weight") for depth, layer in enumerate(["fc1", "out"])]
    with database.transaction() as session:
        snapshots.write_snapshots(session, job_id=running[0], attempt=running[1], snapshots=rows)
    url = f"/v1/jobs/{running[0]}/snapshots"
    seen, cursor = [], None
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = SnapshotPage.model_validate(client.get(url, params=params, headers=auth).json())
        seen += [(item.step, item.kind, item.layer) for item in page.items]
        if not (cursor := page.next_cursor):
            break
    assert seen == [(row["step"], row["kind"], row["layer"]) for row in rows]
    one = client.get(url, params={"kind": "weight", "layer": "out", "step": 10}, headers=auth)
    (item,) = one.json()["items"]
    assert (item["step"], item["kind"], item["layer"]) == (10, "weight", "out")
    assert item["stats"] == {"mean": 0.5, "std": None}  # inf is sent as null
    ranged = client.get(url, params={"start_step": 10, "end_step": 20, "kind": "gradient"},
                        headers=auth).json()["items"]
    assert {entry["step"] for entry in ranged} == {10, 20} and len(ranged) == 4
    bad = client.get(url, params={"kind": "bias"}, headers=auth)
    assert bad.status_code == 422 and bad.json()["field"] == "kind"


def test_a_diverged_jobs_summary_sends_non_finite_numbers_as_null(
    client: TestClient, auth: dict[str, str], database: Database, running: tuple[str, int],
) -> None:
    with database.transaction() as session:
        leases.finish_job(session, job_id=running[0], attempt=running[1], status="diverged",
                          summary={"final_loss": math.nan, "best_val_acc": 0.4},
                          error="non-finite loss at step 12")
    job = client.get(f"/v1/jobs/{running[0]}", headers=auth).json()
    assert job["status"] == "diverged" and job["summary"] == {"final_loss": None,
                                                              "best_val_acc": 0.4}
