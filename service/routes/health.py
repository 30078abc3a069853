"""/healthz (is the process alive) and /readyz (can it serve: database, schema, broker).

Neither needs a key: load balancers and orchestrators call them. /readyz names which check
failed but not why (no hosts or driver messages); the reason goes to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio
from celery import Celery
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from gradlab_contract.models import Health

from service.deps import ServicesDep
from store.db import Database
from store.migrate import is_at_head

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)
# A readiness probe must answer quickly even when a dependency hangs.
CHECK_TIMEOUT_SECONDS = 3.0
T = TypeVar("T")


@router.get("/healthz", summary="Liveness")
def healthz() -> Health:
    """200 while the process runs. Touches nothing else, so a database outage does not get the
    API restarted."""
    return Health(status="ok")


@router.get("/readyz", summary="Readiness", response_model=Health,
            responses={503: {"model": Health, "description": "A check failed"}})
async def readyz(services: ServicesDep) -> JSONResponse:
    """200 when the database answers, its schema is at the migrations' head and the broker
    accepts connections; otherwise 503, with `checks` saying which one failed."""
    checks = {
        "database": await _timed(_check_database, services.db),
        "broker": await _timed(_check_broker, services.celery),
    }
    checks["schema"] = (await _timed(_check_schema, services.db)
                        if checks["database"] == "ok" else "unknown")
    ready = all(value == "ok" for value in checks.values())
    health = Health(status="ok" if ready else "unavailable", checks=checks)
    return JSONResponse(health.model_dump(mode="json"), status_code=200 if ready else 503)


async def _timed(check: Callable[[T], str], target: T) -> str:
    with anyio.move_on_after(CHECK_TIMEOUT_SECONDS):
        # abandon_on_cancel: a hung connect cannot be interrupted, so it is left to time out
        # on its own thread instead of holding the probe.
        return await anyio.to_thread.run_sync(check, target, abandon_on_cancel=True)
    return "timeout"


def _check_database(db: Database) -> str:
    try:
        db.ping()
    except Exception:
        log.warning("readyz: the database does not answer", exc_info=True)
        return "unavailable"
    return "ok"


def _check_schema(db: Database) -> str:
    try:
        return "ok" if is_at_head(db.engine) else "not at head: run `gradlab-server migrate`"
    except Exception:
        log.warning("readyz: cannot read the schema version", exc_info=True)
        return "unavailable"


def _check_broker(celery: Celery) -> str:
    try:
        folder = celery.conf.broker_transport_options.get("data_folder_out")
        if folder is not None and not Path(folder).is_dir():
            # The filesystem transport "connects" to anything; a missing folder fails on send.
            return "unavailable"
        with celery.connection_for_write(connect_timeout=CHECK_TIMEOUT_SECONDS) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0,
                                         timeout=CHECK_TIMEOUT_SECONDS)
    except Exception:
        log.warning("readyz: the broker does not accept connections", exc_info=True)
        return "unavailable"
    return "ok"
