"""Heals as the API drives them: start one (and its first round when the job has already
ended), read one (advancing it when its current job has ended, in case the worker's step was
lost), cancel one. The rounds themselves are store.heals'; this commits, then publishes."""

from __future__ import annotations

import logging

from gradlab_contract.models import Heal

from diagnosis import remedy
from service.deps import Services
from store import heals, jobs
from store.teams import Team
from taskqueue import publish_job

log = logging.getLogger(__name__)


def start(services: Services, *, team: Team, job_id: str, max_rounds: int) -> tuple[Heal, bool]:
    """The job's heal (made now: True), advanced at once if the job has already ended."""
    with services.db.transaction() as session:
        heal, created = heals.start_heal(session, team_id=team.id, job_id=job_id,
                                         max_rounds=max_rounds)
    return refresh(services, team=team, heal=heal), created


def read(services: Services, *, team: Team, heal_id: str) -> Heal:
    with services.db.read() as session:
        heal = heals.get_heal(session, team_id=team.id, heal_id=heal_id)
    return refresh(services, team=team, heal=heal)


def refresh(services: Services, *, team: Team, heal: Heal) -> Heal:
    """Advance a running heal whose current job has ended; the heal as it is then."""
    if heal.done:
        return heal
    with services.db.read() as session:
        (current,) = jobs.jobs_by_id(session, job_ids=[heal.current_job_id])
    if not current.done:
        return heal
    with services.db.transaction() as session:
        published = heals.advance(session, heal_id=heal.id,
                                  max_queued=services.settings.max_queued_jobs_per_team,
                                  planner=remedy)
        heal = heals.get_heal(session, team_id=team.id, heal_id=heal.id)
    for job_id in published:
        try:
            publish_job(services.celery, services.settings, job_id, study_id=None)
        except Exception:  # queued in the database: the reconciler sends it later
            log.warning("could not publish job %s; the reconciler will retry", job_id,
                        exc_info=True)
    return heal


def cancel(services: Services, *, team: Team, heal_id: str) -> Heal:
    with services.db.transaction() as session:
        return heals.cancel_heal(session, team_id=team.id, heal_id=heal_id)
