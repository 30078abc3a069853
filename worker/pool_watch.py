"""Hand a job back the moment the pool process training it dies, instead of after its lease.

A pool process killed outright (kill -9, the kernel's OOM killer, a segfault in a native
library) cannot release its job, and its lease keeps the job `running` for up to
settings.lease_seconds before the reaper retries it. The worker's main process sees the death at
once: its pool's set of processes changes. This thread, in the main process, compares that set
every POLL_SECONDS; for each process gone it recovers the running jobs claimed under that
process's name (leases.retry_or_fail with lease_expired=False: fenced by attempt, counted as a
loss) and sends them to the broker again. Billiard's own WorkerLostError comes only after a
fixed 10 s, and only for the task, not the job; the lease stays the fallback for a dead host.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_ready, worker_shutting_down

from store import leases
from store.db import Database
from store.errors import Unavailable
from store.settings import Settings
from taskqueue import publish_job
from worker.shutdown import pool_pids

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5


def worker_name(pid: int) -> str:
    """The name a pool process claims jobs under (WorkerContext.process_name)."""
    return f"{socket.gethostname()}:{pid}"


def recover_jobs_of(database: Database, celery: Celery, settings: Settings, pid: int) -> int:
    """Queue again (or fail, past max_attempts losses) the running jobs of the dead pool
    process `pid` of this host; returns how many were queued again."""
    worker = worker_name(pid)
    with database.read() as session:
        lost = leases.running_jobs_of(session, worker=worker)
    requeued = 0
    for lease in lost:
        with database.transaction() as session:
            outcome = leases.retry_or_fail(
                session, job_id=lease.job_id, expected_attempt=lease.attempt,
                max_attempts=settings.max_attempts, lease_expired=False,
            )
        log.warning("job %s attempt %d: its pool process %d died; %s", lease.job_id,
                    lease.attempt, pid, outcome)
        if outcome == "requeued":
            publish_job(celery, settings, lease.job_id, study_id=lease.study_id)
            requeued += 1
    return requeued


class PoolWatch(threading.Thread):
    def __init__(self, database: Database, celery: Celery, settings: Settings,
                 pids: Callable[[], list[int]]) -> None:
        super().__init__(name="pool-watch", daemon=True)
        self._database, self._celery, self._settings = database, celery, settings
        self._pids = pids
        self._stopped = threading.Event()

    def run(self) -> None:
        known = set(self._pids())
        pending: set[int] = set()  # gone, but not yet recovered (the database was down)
        while not self._stopped.wait(POLL_SECONDS):
            current = set(self._pids())
            pending |= known - current
            known = current
            for pid in sorted(pending):
                if self._stopped.is_set():
                    return
                try:
                    recover_jobs_of(self._database, self._celery, self._settings, pid)
                except Unavailable:
                    log.warning("pool watch: database unavailable; trying again")
                    break
                except Exception:  # a broker error: the reconciler re-sends the queued job
                    log.exception("pool watch: recovering the jobs of process %d failed", pid)
                pending.discard(pid)

    def stop(self) -> None:
        self._stopped.set()


def install(database: Database, celery: Celery, settings: Settings) -> None:
    """Watch the pool of the worker being started (call in the main process, before it starts);
    stops as the worker shuts down, when its processes end by design."""
    controller: list[Any] = []
    watch = PoolWatch(database, celery, settings,
                      lambda: pool_pids(controller[0] if controller else None))

    @worker_init.connect(weak=False)
    def _remember(sender: Any = None, **_: Any) -> None:
        controller[:] = [sender]

    @worker_ready.connect(weak=False)
    def _start(**_: Any) -> None:
        watch.start()

    @worker_shutting_down.connect(weak=False)
    def _stop(**_: Any) -> None:
        watch.stop()
