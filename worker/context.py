"""What a worker process holds: its settings, its database and the Celery app it publishes with.

Set once in the worker's main process before the pool forks; each child inherits it, and the
store drops inherited database connections after fork, so a child opens its own.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from celery import Celery

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
        return cls(settings=settings, database=Database.from_settings(settings), celery=celery)

    @property
    def process_name(self) -> str:
        """This process's name (a pool child differs from the parent that made the context)."""
        return f"{socket.gethostname()}:{os.getpid()}"


_current: WorkerContext | None = None


def set_context(context: WorkerContext) -> None:
    global _current
    _current = context


def current_context() -> WorkerContext:
    if _current is None:
        raise RuntimeError("no worker context: start workers with `gradlab-server worker`")
    return _current
