"""Heal: diagnose -> remedy -> train rounds, run by the service until a job is healthy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from gradlab_contract.models import Heal, HealRequest

from service import healing
from service.deps import CurrentTeam, JobDep, ServicesDep
from service.http.problems import problem_doc
from store import heals

router = APIRouter(tags=["heal"], responses=problem_doc(401, 404, 503))
HealId = Annotated[str, Path(max_length=36, description="The heal's id.")]


@router.post("/v1/jobs/{job_id}/heal", status_code=201, summary="Heal a job",
             responses={200: {"model": Heal, "description": "The job's heal, made before"},
                        **problem_doc(422)})
def create_heal(body: HealRequest, job: JobDep, team: CurrentTeam, services: ServicesDep,
                response: Response) -> Heal:
    """Run rounds of diagnose -> remedy -> train on this job until a job is healthy (it
    succeeds with no warning or error finding) or `max_rounds` remedy jobs have run. Each round
    applies the remedies of the previous job's root causes (findings no other explains) and
    submits the result as a child job, within the team's queued-jobs quota; a round never
    trains longer or builds a larger model than this job. A job has one heal: asking again
    returns it (200). The job may still be running: the first round starts when it ends. The
    heal is also started by the spec option `diagnosis: {heal: {max_rounds}}`."""
    heal, created = healing.start(services, team=team, job_id=job.id,
                                  max_rounds=body.max_rounds)
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/v1/heals/{heal.id}"
    return heal


@router.get("/v1/heals", summary="List heals")
def list_heals(
    team: CurrentTeam, services: ServicesDep,
    job_id: Annotated[str | None, Query(max_length=36, description="Only the heal of this job "
                                        "(a job has at most one).")] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Heals at most.")] = 50,
) -> list[Heal]:
    """Your team's heals, newest first; with `job_id`, the heal of that job (an empty list when
    it has none, e.g. to find the heal its spec's `diagnosis.heal` started)."""
    with services.db.read() as session:
        found = heals.list_heals(session, team_id=team.id, job_id=job_id, limit=limit)
    return [healing.refresh(services, team=team, heal=heal) for heal in found]


@router.get("/v1/heals/{heal_id}", summary="Get a heal")
def get_heal(heal_id: HealId, team: CurrentTeam, services: ServicesDep) -> Heal:
    """The heal's status (running, healed, exhausted, failed, cancelled), its rounds (each
    round's job, its status, its warnings and errors, the root causes, the changes that made
    its spec and its outcome against the previous round), the healthy job when healed, and
    the training steps its remedy jobs cost."""
    return healing.read(services, team=team, heal_id=heal_id)


@router.post("/v1/heals/{heal_id}/cancel", status_code=202, summary="Cancel a heal")
def cancel_heal(heal_id: HealId, team: CurrentTeam, services: ServicesDep) -> Heal:
    """Stop the heal and cancel its current job; a finished heal is returned unchanged. Safe
    to repeat."""
    return healing.cancel(services, team=team, heal_id=heal_id)
