"""Persistence of gradlab: settings, engine and sessions, tables, repositories, domain errors.

Repositories (store.teams, store.jobs, store.leases, store.series, store.snapshots,
store.datasets) are modules of keyword-only functions that take a Session from
``Database.transaction()`` (writes) or ``Database.read()`` and return the client's API models
or small dataclasses, never ORM rows. The store imports neither torch, nor HTTP, nor Celery.
"""

from store.db import Database, make_engine
from store.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    QuotaExceeded,
    StaleAttempt,
    Unavailable,
)
from store.settings import Settings

__all__ = [
    "Conflict",
    "Database",
    "DomainError",
    "InvalidInput",
    "NotFound",
    "QuotaExceeded",
    "Settings",
    "StaleAttempt",
    "Unavailable",
    "make_engine",
]
