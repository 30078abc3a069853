"""GET /metrics: Prometheus text that a scraper parses, labelled by route template, and numbers
that move as jobs are submitted, claimed and finished."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from celery import Celery
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.http.prometheus import queue_depth, queued_age_seconds
from store import leases
from store.db import Database
from store.settings import Settings
from taskqueue import make_celery, publish_job
from tests.service.support import SPIRAL, JsonDict

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_need_no_key_and_parse(client: TestClient) -> None:
    samples = scrape(client)
    names = {name for name, _ in samples}
    assert {"gradlab_jobs", "gradlab_queue_depth", "gradlab_oldest_queued_job_age_seconds"} <= names
    assert value(samples, "gradlab_jobs", status="queued") == 0
    assert value(samples, "gradlab_oldest_queued_job_age_seconds") == 0


def test_requests_are_counted_per_route_template_not_per_path(
    client: TestClient, auth: dict[str, str]
) -> None:
    for job_id in ("one", "two", "three"):
        assert client.get(f"/v1/jobs/{job_id}", headers=auth).status_code == 404
    client.get("/no/such/route")
    samples = scrape(client)
    route = "/v1/jobs/{job_id}"
    assert value(samples, "gradlab_http_requests_total", method="GET", route=route,
                 status="404") == 3
    assert value(samples, "gradlab_http_request_duration_seconds_count", method="GET",
                 route=route) == 3
    assert value(samples, "gradlab_http_requests_total", method="GET", route="unmatched",
                 status="404") == 1
    assert not any("one" in dict(labels).get("route", "") for _, labels in samples)


def test_study_jobs_are_counted_in_the_study_queue(
    client: TestClient, auth: dict[str, str], submit: Callable[..., JsonDict]
) -> None:
    submit()
    study = {"base": SPIRAL, "grid": {"optimizer.lr": [0.01, 0.1, 1.0]}}
    assert client.post("/v1/studies", json=study, headers=auth).status_code == 201
    samples = scrape(client)
    assert value(samples, "gradlab_study_queue_depth") == 3
    assert value(samples, "gradlab_queue_depth") == 1  # the single job, in its own queue


def test_job_counts_queue_depth_and_age_move_as_jobs_run(
    client: TestClient, auth: dict[str, str], submit: Callable[..., JsonDict],
    claim: Callable[[str], int], database: Database,
) -> None:
    first, second = submit()["id"], submit()["id"]
    samples = scrape(client)
    assert value(samples, "gradlab_jobs", status="queued") == 2
    assert value(samples, "gradlab_queue_depth") == 2  # no worker reads the broker here
    assert value(samples, "gradlab_study_queue_depth") == 0
    assert value(samples, "gradlab_oldest_queued_job_age_seconds") >= 0
    assert value(samples, "gradlab_http_requests_total", method="POST", route="/v1/jobs",
                 status="201") == 2

    attempt = claim(first)
    with database.transaction() as session:
        leases.finish_job(session, job_id=first, attempt=attempt, status="succeeded",
                          summary={}, error=None, progress_step=20)
    client.post(f"/v1/jobs/{second}/cancel", headers=auth)
    samples = scrape(client)
    assert value(samples, "gradlab_jobs", status="queued") == 0
    assert value(samples, "gradlab_jobs", status="succeeded") == 1
    assert value(samples, "gradlab_jobs", status="cancelled") == 1
    assert value(samples, "gradlab_oldest_queued_job_age_seconds") == 0
    # Scrapes count too, each once it has answered: this one sees the first.
    assert value(samples, "gradlab_http_requests_total", method="GET", route="/metrics",
                 status="200") == 1


def test_the_oldest_queued_age_is_measured_from_submission() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert queued_age_seconds(None, now) == 0
    assert queued_age_seconds(now - timedelta(seconds=90), now) == 90
    assert queued_age_seconds(now + timedelta(seconds=1), now) == 0  # clocks of two hosts


@pytest.mark.integration
def test_queue_depth_on_redis_counts_every_priority_list(redis_url: str, tmp_path: Path) -> None:
    queues = Settings(home=tmp_path, task_queue="depth-test", _env_file=None)
    app = make_celery(redis_url, queue=queues.task_queue)
    try:
        assert queue_depth(app) == 0
        for job_id in ("a", "b", "c"):
            publish_job(app, queues, job_id, study_id=None)
        app.send_task("gradlab.run_job", args=["d"], priority=6)  # a list of its own in kombu
        assert queue_depth(app) == 4
        publish_job(app, queues, "e", study_id="a-study")
        assert queue_depth(app) == 4 and queue_depth(app, queues.study_queue) == 1
    finally:
        app.close()


def test_a_broker_it_cannot_read_leaves_the_depth_out(client: TestClient,
                                                      celery_app: Celery) -> None:
    celery_app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    samples = scrape(client)
    assert ("gradlab_queue_depth", frozenset()) not in samples
    assert value(samples, "gradlab_jobs", status="queued") == 0  # the rest still arrives
