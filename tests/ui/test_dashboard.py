"""The dashboard in a real browser, on real runs: log in, read the jobs list, open a job and see
every chart drawn, follow a finding to the layer it is about, submit its remedy, and nothing
logged to the console on the way. Screenshots go to test-artifacts/ui/."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from store import teams
from store.db import Database
from store.settings import Settings
from tests.diagnosis.scenarios import KAIMING, mlp
from tests.ui.conftest import UiStack
from tests.ui.synthetic import write_big_job

pytestmark = [pytest.mark.ui, pytest.mark.slow]

Drive = Callable[..., dict[str, Any]]
JOB_CHARTS = {"loss", "accuracy", "lr", "update-ratios", "gradient-scale", "band",
              "step-bin-heatmap", "ridge"}


def assert_clean(report: dict[str, Any]) -> None:
    assert report["console"] == [], report["console"]
    assert report["pageErrors"] == [], report["pageErrors"]
    assert report["failedRequests"] == [], report["failedRequests"]


def assert_drawn(charts: list[dict[str, Any]]) -> None:
    for chart in charts:
        # Points the library was given, and pixels it drew: axes alone are thin grey lines, a
        # drawn heatmap, band or curve moves the variance well above that.
        assert chart["points"] > 0, chart
        assert chart["variance"] > 20, chart


def test_login_then_the_jobs_list_shows_both_runs(drive: Drive, ui_stack: UiStack) -> None:
    report = drive([{"do": "login"}, {"do": "jobs", "shot": "jobs.png"},
                    {"do": "jobs", "query": "status=succeeded&name=deep-sigmoid"}])
    assert_clean(report)
    login, everything, filtered = report["results"]
    assert login["stored"] == 1  # the key, in sessionStorage only
    ids = {row["id"] for row in everything["rows"]}
    assert set(ui_stack.jobs.values()) <= ids
    assert all("succeeded" in row["cells"][1] for row in everything["rows"])
    assert [row["id"] for row in filtered["rows"]] == [ui_stack.jobs["deep_sigmoid"]]


def test_a_healthy_job_page_draws_every_chart(drive: Drive, ui_stack: UiStack) -> None:
    job_id = ui_stack.jobs["healthy"]
    report = drive([{"do": "login"}, {"do": "job", "id": job_id, "shot": "job-healthy.png"}])
    assert_clean(report)
    page = report["results"][1]
    names = {chart["name"] for chart in page["charts"]}
    assert names >= JOB_CHARTS
    multiples = [n for n in names if n.startswith("at-step-")]
    assert len(multiples) == 4  # the activations of the 4 hidden layers, side by side
    assert_drawn(page["charts"])
    assert not [f for f in page["findings"] if f["code"] == "vanishing_gradients"]
    print(f"\nhealthy job page rendered in {page['ms']} ms")


def test_a_deep_sigmoid_finding_leads_to_its_layer(drive: Drive, ui_stack: UiStack) -> None:
    job_id = ui_stack.jobs["deep_sigmoid"]
    report = drive([
        {"do": "login"},
        {"do": "job", "id": job_id, "shot": "job-deep-sigmoid.png"},
        {"do": "follow", "id": job_id, "code": "vanishing_gradients",
         "shot": "job-deep-sigmoid-evidence.png"},
        {"do": "remedy", "code": "vanishing_gradients"},
    ])
    assert_clean(report)
    page, evidence, remedy = report["results"][1:]
    assert_drawn(page["charts"])
    finding = next(f for f in page["findings"] if f["code"] == "vanishing_gradients")
    assert finding["evidence"] and finding["remedy"]
    # The link opens the gradient of the finding's layer: selected in the controls, named in the
    # title, outlined among the per-layer histograms.
    assert evidence["kind"] == "gradient"
    layer = evidence["layer"]
    assert f"layer={layer}" in evidence["href"]
    assert evidence["title"].startswith(f"{layer}: gradient")
    assert evidence["selected"] == layer
    assert_drawn(evidence["charts"])
    # Its remedy button submitted the job again, with the fix, as a child of this one.
    child_id = remedy["href"].removeprefix("#/jobs/")
    child = ui_stack.get(f"/v1/jobs/{child_id}")
    assert child["parent_id"] == job_id
    assert child["spec"]["model"]["activation"] != "sigmoid"
    ui_stack.post(f"/v1/jobs/{child_id}/cancel")


def test_a_running_job_page_follows_its_progress(drive: Drive, ui_stack: UiStack) -> None:
    spec = {**mlp([32, 32], init=KAIMING, steps=20_000), "name": "long-running"}
    job = ui_stack.post("/v1/jobs", spec).json()
    try:
        deadline = time.monotonic() + 120
        while ui_stack.get(f"/v1/jobs/{job['id']}")["progress"]["step"] < 1:
            assert time.monotonic() < deadline, "the job did not start"
            time.sleep(0.5)
        report = drive([{"do": "login"}, {"do": "live", "id": job["id"]}])
    finally:
        ui_stack.post(f"/v1/jobs/{job['id']}/cancel")
    assert_clean(report)
    live = report["results"][1]
    assert live["first"] != live["later"]


def test_a_100k_step_50_layer_job_page_stays_responsive(drive: Drive, ui_stack: UiStack) -> None:
    database = Database.from_settings(Settings(home=ui_stack.home, _env_file=None))
    try:
        with database.read() as session:
            team = teams.authenticate(session, key=ui_stack.key)
        assert team is not None
        started = time.monotonic()
        job_id = write_big_job(database, team_id=team.id, steps=100_000, layers=50)
        print(f"\nwrote the synthetic job in {time.monotonic() - started:.1f} s")
    finally:
        database.close()
    report = drive([{"do": "login"}, {"do": "job", "id": job_id, "shot": "job-100k-50.png"},
                    {"do": "job", "id": job_id, "query": "layer=fc25&kind=gradient&step=50000"}],
                   timeout_ms=120_000)
    assert_clean(report)
    first, other_layer = report["results"][1:]
    print(f"100,000 steps x 50 layers: job page in {first['ms']} ms, "
          f"another layer and step in {other_layer['ms']} ms")
    assert_drawn(first["charts"])
    assert len([c for c in first["charts"] if c["name"].startswith("at-step-")]) == 50
    # Downsampled by the server: a few hundred points per curve, not 100,000.
    loss = next(c for c in first["charts"] if c["name"] == "loss")
    assert loss["points"] <= 2 * 600
    assert first["ms"] < 60_000 and other_layer["ms"] < 60_000  # a sanity bound, not a benchmark


def test_a_study_page_compares_its_variants(drive: Drive, ui_stack: UiStack) -> None:
    base = {**mlp([32, 32], init=KAIMING, steps=150), "name": "ui-study"}
    response = ui_stack.post("/v1/studies", {
        "name": "activation", "base": base, "grid": {"model.activation": ["relu", "tanh"]}})
    assert response.status_code == 201, response.text  # the studies API is part of the product
    study = response.json()
    deadline = time.monotonic() + 400
    while not _study_done(ui_stack, study["id"]):
        assert time.monotonic() < deadline, "the study's jobs did not finish"
        time.sleep(0.5)
    report = drive([{"do": "login"}, {"do": "study", "id": study["id"], "shot": "study.png"}])
    assert_clean(report)
    page = report["results"][1]
    assert len(page["rows"]) == 2
    assert {row[1] for row in page["rows"]} == {'"relu"', '"tanh"'}
    curves = [c for c in page["charts"] if c["name"] == "study-curves"]
    assert len(curves) == 1
    assert_drawn(curves)


def _study_done(stack: UiStack, study_id: str) -> bool:
    study = stack.get(f"/v1/studies/{study_id}")
    finished = sum(n for status, n in study["counts"].items()
                   if status not in ("queued", "running"))
    return bool(finished == study["jobs"])
