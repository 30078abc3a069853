"""Recovery of jobs that nobody is working on.

- A running job whose lease expired lost its worker: it is queued again for a new attempt that
  resumes from its last checkpoint, or failed once it has used its attempts.
- A job queued in the database but last sent to the broker long ago may have been lost by the
  broker (a wiped Redis): its id is sent again, unless its message still waits in the broker
  (taskqueue.waiting), so a long backlog does not fill up with duplicates. A duplicate is
  harmless anyway, since only one claim of a queued job succeeds.
- One job whose recovery fails (the broker refuses a message) does not stop the pass.

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
from taskqueue.waiting import waiting_job_ids
from worker.checkpoints import CheckpointFiles

log = logging.getLogger(__name__)


def reap_once(database: Database, celery: Celery, settings: Settings) -> Counter[str]:
    """One pass; returns how many jobs were requeued, failed, cancelled and re-sent. A job whose
    recovery fails (the broker refuses its message) is logged and the pass goes on: it is
    queued in the database, so the reconciler sends it again later."""
    outcomes: Counter[str] = Counter()
    with database.read() as session:
        expired = leases.expired_jobs(session)
    for lease in expired:
        try:
            outcomes[_recover(database, celery, settings, lease)] += 1
        except Unavailable:
            raise  # the next lease would fail the same way: end the pass
        except Exception:
            outcomes["errors"] += 1
            log.exception("reaper: recovering job %s failed; going on", lease.job_id)
    outcomes["republished"] += _republish_lost(database, celery, settings)
    return outcomes


def _recover(database: Database, celery: Celery, settings: Settings,
             lease: leases.ExpiredLease) -> str:
    with database.transaction() as session:
        outcome = leases.retry_or_fail(
            session,
            job_id=lease.job_id,
            expected_attempt=lease.attempt,
            max_attempts=settings.max_attempts,
        )
    if outcome in ("failed", "cancelled"):  # no attempt will resume it
        store = open_artifact_store(settings)
        CheckpointFiles(settings.checkpoints_dir, lease.job_id, store).remove_all()
    if outcome == "requeued":
        log.warning(
            "job %s lost its worker at attempt %d; queued again", lease.job_id, lease.attempt
        )
        publish_job(celery, settings, lease.job_id, study_id=lease.study_id)
    return outcome


def _republish_lost(database: Database, celery: Celery, settings: Settings) -> int:
    """Re-send the jobs queued long ago whose message is not in the broker any more; the ones
    still waiting there are left alone (and wait another period)."""
    with database.read() as session:
        stale = leases.queued_jobs_older_than(session, seconds=settings.republish_after_seconds)
    if not stale:
        return 0
    waiting = waiting_job_ids(celery, {settings.task_queue, settings.study_queue})
    lost = [job for job in stale if waiting is None or job.job_id not in waiting]
    with database.transaction() as session:
        leases.mark_enqueued(session, job_ids=[job.job_id for job in stale])
    sent = 0
    for job in lost:
        try:
            publish_job(celery, settings, job.job_id, study_id=job.study_id)
        except Exception:
            log.exception("reconciler: could not send job %s; going on", job.job_id)
            continue
        sent += 1
        log.info("job %s queued for over %.0f s and not in the broker: sent again", job.job_id,
                 settings.republish_after_seconds)
    return sent


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
