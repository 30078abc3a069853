"""Recovery of jobs that nobody is working on.

- A running job whose lease expired lost its worker: it is queued again for a new attempt that
  resumes from its last checkpoint, or failed once it has used its attempts.
- A job queued in the database but last sent to the broker long ago may have been lost by the
  broker (a wiped Redis): its id is sent again. A duplicate message is harmless, since only one
  claim of a queued job succeeds.

Every worker runs this loop in its main process; concurrent reapers are safe (rows are taken
FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite serialises writers).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

from celery import Celery

from store import leases
from store.artifacts import open_artifact_store
from store.db import Database
from store.errors import Unavailable
from store.settings import Settings
from taskqueue import publish_job
from worker.checkpoints import CheckpointFiles

log = logging.getLogger(__name__)


def reap_once(database: Database, celery: Celery, settings: Settings) -> Counter[str]:
    """One pass; returns how many jobs were requeued, failed, cancelled and re-sent."""
    outcomes: Counter[str] = Counter()
    with database.read() as session:
        expired = leases.expired_jobs(session)
    for lease in expired:
        with database.transaction() as session:
            outcome = leases.retry_or_fail(
                session,
                job_id=lease.job_id,
                expected_attempt=lease.attempt,
                max_attempts=settings.max_attempts,
            )
        outcomes[outcome] += 1
        if outcome in ("failed", "cancelled"):  # no attempt will resume it
            store = open_artifact_store(settings)
            CheckpointFiles(settings.checkpoints_dir, lease.job_id, store).remove_all()
        if outcome == "requeued":
            publish_job(celery, settings, lease.job_id, study_id=lease.study_id)
            log.warning(
                "job %s lost its worker at attempt %d; queued again", lease.job_id, lease.attempt
            )
    outcomes["republished"] += _republish_lost(database, celery, settings)
    return outcomes


def _republish_lost(database: Database, celery: Celery, settings: Settings) -> int:
    with database.transaction() as session:
        lost = leases.queued_jobs_older_than(session, seconds=settings.republish_after_seconds)
        leases.mark_enqueued(session, job_ids=[job.job_id for job in lost])
    for job in lost:
        publish_job(celery, settings, job.job_id, study_id=job.study_id)
        log.info("job %s queued for over %.0f s: sent to the broker again", job.job_id,
                 settings.republish_after_seconds)
    return len(lost)


class Reaper(threading.Thread):
    def __init__(self, database: Database, celery: Celery, settings: Settings) -> None:
        super().__init__(name="reaper", daemon=True)
        self._database, self._celery, self._settings = database, celery, settings
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self._settings.reaper_interval_seconds):
            try:
                reap_once(self._database, self._celery, self._settings)
            except Unavailable:
                log.warning("reaper: database unavailable; trying again later")
            except Exception:
                log.exception("reaper pass failed")

    def stop(self) -> None:
        self._stopped.set()
