"""create_app(settings): the one place the API is assembled. Nothing is built at import time.

The app refuses to start on a database whose schema is not at the migrations' head: running old
code against a new schema (or the reverse) corrupts data quietly, so `gradlab-server migrate`
must run first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from celery import Celery
from fastapi import FastAPI

from service.deps import Services
from service.http.body_limit import BodyLimit, Limit
from service.http.nul_guard import NulGuard
from service.http.problems import (
    document_common_problems,
    document_problem_media_type,
    install_handlers,
)
from service.http.prometheus import install_metrics
from service.http.ratelimit import make_limiter
from service.links import document_links
from service.live.streams import StreamSlots
from service.routes import (
    artifacts,
    catalog,
    datasets,
    diagnosis,
    heals,
    health,
    jobs,
    live,
    studies,
    telemetry,
    webhooks,
)
from service.ui import VENDOR, mount_ui
from store.artifacts import open_artifact_store
from store.db import Database
from store.event_bus import install_publisher
from store.migrate import is_at_head
from store.settings import Settings
from taskqueue import make_celery

DESCRIPTION = """Train neural networks from a job spec and inspect how they learn: per-step
metrics and per-layer distributions of gradients, weights and activations.

Every route but `/healthz`, `/readyz` and `/metrics` (Prometheus; restrict it at the network
level) needs `Authorization: Bearer <key>`. A key belongs to a team, and a team sees only its
own jobs and data sets. Every error is `application/problem+json` with a stable `code` and the
offending `field`."""


class SchemaNotAtHead(RuntimeError):
    """The database's schema differs from the code's migrations: run `gradlab-server migrate`."""


def create_app(settings: Settings, *, celery_app: Celery | None = None) -> FastAPI:
    """Build the API for these settings; pass `celery_app` to publish to a broker of your own."""
    services = Services(
        settings=settings,
        db=Database.from_settings(settings),
        celery=celery_app or make_celery(
            settings.broker_url, queue=settings.task_queue,
            transport_options=settings.broker_transport_options,
        ),
        limiter=make_limiter(settings),
        artifacts=open_artifact_store(settings),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            if not is_at_head(services.db.engine):
                raise SchemaNotAtHead("the database schema is not at the migrations' head: "
                                      "run `gradlab-server migrate`")
            yield
        finally:
            services.db.close()
            services.limiter.close()
            if celery_app is None:
                services.celery.close()

    app = FastAPI(
        title="gradlab", version="1", description=DESCRIPTION, lifespan=lifespan,
    )
    default_limit = Limit(settings.max_request_bytes,
                          f"request bodies are limited to {settings.max_request_bytes:,} bytes")
    app.add_middleware(BodyLimit, default=default_limit, routes=datasets.body_limits(settings))
    app.add_middleware(NulGuard)
    app.state.services = services
    app.state.stream_slots = StreamSlots()
    install_publisher(services.db, settings)  # wakes event streams on Redis
    _document_problems(app)
    install_handlers(app)
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.include_router(telemetry.router)
    app.include_router(diagnosis.router)
    app.include_router(heals.router)
    app.include_router(catalog.router)
    app.include_router(datasets.router)
    app.include_router(studies.router)
    app.include_router(artifacts.router)
    app.include_router(live.router)
    app.include_router(webhooks.router)
    # Static pages; their data comes from the routes above, with a key.
    mount_ui(app, vendor=settings.ui_vendor_dir or VENDOR)
    # Last: its middleware is then the outermost, timing everything the others do.
    install_metrics(app, services.db, services.celery, study_queue=settings.study_queue)
    return app


def _document_problems(app: FastAPI) -> None:
    """Extend the generated OpenAPI document (FastAPI's documented way: replace app.openapi)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_links(document_problem_media_type(
                document_common_problems(generate())))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
