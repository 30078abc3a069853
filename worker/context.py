"""What a worker process holds: its settings, its database and the Celery app it publishes with.

Set once in the worker's main process before the pool forks; each child inherits it, and the
store drops inherited database connections after fork, so a child opens its own.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from celery import Celery
from sqlalchemy import Engine, event

from store.artifacts import ArtifactStore, open_artifact_store
from store.db import Database
from store.settings import Settings
from taskqueue import make_celery


@dataclass
class WorkerContext:
    settings: Settings
    database: Database
    celery: Celery

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerContext:
        settings.ensure_directories()
        celery = make_celery(
            settings.broker_url,
            queue=settings.task_queue,
            transport_options=settings.broker_transport_options,
        )
        database = Database.from_settings(settings)
        if database.dialect == "postgresql":
            bound_abandoned_transactions(database.engine, settings.lease_seconds)
        return cls(settings=settings, database=database, celery=celery)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        """Where this worker keeps checkpoints and a job's files, and finds uploads: opened in
        the process that uses it (obstore's clients are not shared across a fork)."""
        return open_artifact_store(self.settings)

    @property
    def process_name(self) -> str:
        """This process's name (a pool child differs from the parent that made the context)."""
        return f"{socket.gethostname()}:{os.getpid()}"


def bound_abandoned_transactions(engine: Engine, lease_seconds: float) -> None:
    """Have PostgreSQL end this worker's sessions that leave a transaction open for a lease.

    A worker frozen in the middle of a write (a stopped or swapped-out process, a VM pause, a
    network partition that leaves the socket open) keeps the job's row locked; the reaper takes
    rows with SKIP LOCKED, so it would pass that job over until the server noticed the dead
    session, which for a silent peer takes TCP's two hours. A worker's transactions last
    milliseconds, so one idle for a whole lease is abandoned: the server rolls it back and the
    reaper can act once the lease has run out. Keepalives do the same for a vanished host.
    """
    timeout_ms = max(1000, int(lease_seconds * 1000))
    probe = max(1, int(lease_seconds / 3))

    @event.listens_for(engine, "connect")
    def _limit(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET idle_in_transaction_session_timeout = {timeout_ms}")
        cursor.execute(f"SET tcp_keepalives_idle = {probe}")
        cursor.execute(f"SET tcp_keepalives_interval = {probe}")
        cursor.execute("SET tcp_keepalives_count = 3")
        cursor.close()
        dbapi_connection.commit()  # psycopg opened a transaction for the SETs


_current: WorkerContext | None = None


def set_context(context: WorkerContext) -> None:
    global _current
    _current = context


def current_context() -> WorkerContext:
    if _current is None:
        raise RuntimeError("no worker context: start workers with `gradlab-server worker`")
    return _current
