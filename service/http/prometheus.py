"""GET /metrics: the API's Prometheus metrics, in the text exposition format.

- gradlab_http_requests_total{method,route,status} and gradlab_http_request_duration_seconds
  {method,route}: `route` is the route's template (/v1/jobs/{job_id}), never the raw path, so a
  series per job id cannot pile up; a path that matches no route is counted as "unmatched".
- gradlab_jobs{status}, gradlab_oldest_queued_job_age_seconds, gradlab_queue_depth and
  gradlab_study_queue_depth are read at scrape time (the database and the broker are the truth,
  and every API replica reports the same numbers), so they are right after a restart and cost
  nothing between scrapes.

The route needs no API key: scrapers carry none, and it shows counts, never a team's data.
Restrict it at the network level (docker-compose.yml publishes only the API; put /metrics
behind your proxy's allow-list if the API faces the internet).

Each app has its own registry (create_app is called many times in one test process, and the
global registry refuses a metric name twice).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from celery import Celery
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from store import jobs
from store.db import Database

log = logging.getLogger(__name__)
UNMATCHED = "unmatched"
# Seconds a scrape waits for Redis before it leaves the queue depth out.
BROKER_TIMEOUT_SECONDS = 2.0


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "gradlab_http_requests", "HTTP requests answered, by route template and status.",
            ["method", "route", "status"], registry=registry,
        )
        self.latency = Histogram(
            "gradlab_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by route template.",
            ["method", "route"], registry=registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)


class RequestMetrics:
    """ASGI middleware (not BaseHTTPMiddleware: it streams and adds no task per request) that
    times every HTTP request, labelled with the template of the route that served it."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app fails before it starts a response

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            seconds = time.perf_counter() - started
            self.metrics.observe(scope["method"], route_template(scope), status, seconds)


def route_template(scope: Scope) -> str:
    """The path template of the route that handled the request; routing writes it into the
    scope (FastAPI's APIRoute puts itself under "route")."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else UNMATCHED


class StoreCollector(Collector):
    """The numbers read at scrape time from the database and the broker. A source that does not
    answer is left out of this scrape (and logged), so the other numbers still arrive."""

    def __init__(self, db: Database, celery: Celery, *, study_queue: str) -> None:
        self.db = db
        self.celery = celery
        self.study_queue = study_queue

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._jobs()
        depth = self._queue_depth(None)
        if depth is not None:
            yield GaugeMetricFamily(
                "gradlab_queue_depth", "Job messages waiting in the broker's queue.", value=depth
            )
        depth = self._queue_depth(self.study_queue)
        if depth is not None:
            yield GaugeMetricFamily(
                "gradlab_study_queue_depth",
                "Study job messages waiting in the broker's study queue.",
                value=depth,
            )

    def _jobs(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self.db.read() as session:
                counts = jobs.count_by_status(session)
                oldest = jobs.oldest_queued_created_at(session)
        except Exception:
            log.warning("/metrics: cannot read job counts from the database", exc_info=True)
            return
        by_status = GaugeMetricFamily("gradlab_jobs", "Jobs by status.", labels=["status"])
        for status, count in sorted(counts.items()):
            by_status.add_metric([status], count)
        yield by_status
        yield GaugeMetricFamily(
            "gradlab_oldest_queued_job_age_seconds",
            "Seconds since the longest-waiting queued job was submitted; 0 when none waits.",
            value=queued_age_seconds(oldest, datetime.now(UTC)),
        )

    def _queue_depth(self, queue: str | None) -> int | None:
        try:
            return queue_depth(self.celery, queue)
        except Exception:
            log.warning("/metrics: cannot read the queue depth from the broker", exc_info=True)
            return None


def queued_age_seconds(oldest: datetime | None, now: datetime) -> float:
    if oldest is None:
        return 0.0
    return max(0.0, (now - oldest).total_seconds())


def queue_depth(celery: Celery, queue: str | None = None) -> int | None:
    """Messages waiting in ``queue`` (default: the app's default queue): LLEN on Redis, message
    files on the filesystem transport; None for a broker this does not know how to read."""
    url = str(celery.conf.broker_url or "")
    queue = queue or str(celery.conf.task_default_queue)
    if url.startswith("filesystem:"):
        return _filesystem_depth(celery.conf.broker_transport_options, queue)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return _redis_depth(url, queue)
    return None


def _filesystem_depth(options: dict[str, Any], queue: str) -> int:
    # kombu's filesystem transport names each message <time>_<uuid>.<queue>.msg.
    folder = Path(options["data_folder_in"])
    return sum(1 for path in folder.iterdir() if path.name.endswith(f".{queue}.msg"))


def _redis_depth(url: str, queue: str) -> int:
    import redis
    from kombu.transport.redis import PRIORITY_STEPS, Channel

    # kombu keeps one list per priority step: the queue's name, then name + sep + step.
    keys = [queue if not step else f"{queue}{Channel.sep}{step}" for step in PRIORITY_STEPS]
    client = redis.Redis.from_url(
        url, socket_timeout=BROKER_TIMEOUT_SECONDS, socket_connect_timeout=BROKER_TIMEOUT_SECONDS
    )
    try:
        with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.llen(key)
            return sum(int(size) for size in pipe.execute())
    finally:
        client.close()


def install_metrics(app: FastAPI, db: Database, celery: Celery, *, study_queue: str) -> None:
    """Time every request and serve GET /metrics from a registry of this app's own."""
    registry = CollectorRegistry()
    registry.register(StoreCollector(db, celery, study_queue=study_queue))
    app.add_middleware(RequestMetrics, metrics=HttpMetrics(registry))
    app.state.metrics_registry = registry
    app.include_router(router)


router = APIRouter(tags=["operations"])


@router.get(
    "/metrics", summary="Prometheus metrics", response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}},
                     "description": "Prometheus text exposition format"}},
)
def metrics(request: Request) -> Response:
    """Request counts and latencies per route, jobs by status, the broker's queue depth and the
    age of the oldest queued job. Needs no key: restrict it at the network level."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
