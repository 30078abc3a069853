"""What follows a job's end: settle the remedy it was (cured or not), and advance the heal it is
a round of, or start the heal its spec asked for (diagnosis.heal). The logic is store.heals' and
store.remedies'; this is the glue that commits, then publishes the next round's job.

It must never cost the job: a failure is logged, and the service makes it up when the heal or
the parent's diagnosis is next read (both advance and settle are idempotent).
"""

from __future__ import annotations

import logging

from diagnosis import remedy
from store import findings, heals, remedies
from taskqueue import publish_job
from worker.context import WorkerContext

log = logging.getLogger(__name__)


def after_job(ctx: WorkerContext, job_id: str) -> list[str]:
    """Settle and advance; return the ids of the jobs published (a heal's next round)."""
    try:
        with ctx.database.transaction() as session:
            found = findings.list_findings(session, job_id=job_id)
            remedies.settle(session, child_id=job_id, findings=found)
            asked = heals.heal_to_start(session, job_id=job_id)
            if asked is not None:
                team_id, rounds = asked
                heals.start_heal(session, team_id=team_id, job_id=job_id, max_rounds=rounds)
            published: list[str] = []
            for heal_id in heals.running_heals_of(session, job_id=job_id):
                published += heals.advance(session, heal_id=heal_id,
                                           max_queued=ctx.settings.max_queued_jobs_per_team,
                                           planner=remedy)
    except Exception:
        log.exception("could not settle or advance what follows job %s", job_id)
        return []
    for next_job in published:
        try:
            publish_job(ctx.celery, ctx.settings, next_job, study_id=None)
        except Exception:  # queued in the database: the reconciler sends it later
            log.warning("could not send job %s to the broker", next_job, exc_info=True)
    return published
