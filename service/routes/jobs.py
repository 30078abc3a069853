"""/v1/jobs: submit, list, read and cancel training jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Response
from gradlab_contract.models import Job, JobPage, JobStatus
from gradlab_contract.spec import JobSpec

from service.deps import CurrentTeam, JobDep, ServicesDep, idempotency_key_header
from service.http.problems import problem_doc
from service.http.strict_body import strict_json_body
from service.submission import submit_job
from store import jobs

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=problem_doc(401, 422, 503))

IdempotencyKey = Annotated[
    str | None,
    idempotency_key_header(
        "Repeating a submit with the same key and the same spec returns the job made the first "
        "time (status 200) instead of a second job; the same key with a different spec is "
        "refused with 409."
    ),
]


# Shown in /docs, and sent by API test generators as a known-good body.
SPEC_EXAMPLES = {
    "spiral": {"summary": "A small MLP on the spiral data set", "value": {
        "name": "first", "data": {"dataset": "spiral"}, "model": {"hidden": [64, 64]},
        "training": {"steps": 500}}},
    "cnn": {"summary": "A CNN on digits, with batch norm and a cosine schedule", "value": {
        "data": {"dataset": "digits"}, "model": {"kind": "cnn", "conv": [{"channels": 16}],
                                                 "hidden": [64], "batch_norm": True},
        "optimizer": {"name": "sgd", "lr": 0.05}, "schedule": {"name": "cosine"},
        "training": {"epochs": 2, "batch_size": 64}}},
}


@router.post(
    "",
    status_code=201,
    summary="Submit a training job",
    responses={200: {"model": Job, "description": "A replay: the job this Idempotency-Key made"},
               **problem_doc(409, 429)},
    dependencies=[Depends(strict_json_body(JobSpec))],
)
def create_job(
    spec: Annotated[JobSpec, Body(openapi_examples=SPEC_EXAMPLES)],
    team: CurrentTeam,
    services: ServicesDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Job:
    """Validate the spec, check it against the deployment's limits (parameters, activation
    memory, steps, batch size, histogram bins; see `GET /v1/catalog`) and queue it.

    Answers 201 with the queued job, or 200 with the existing job when the Idempotency-Key was
    used before with the same spec. A spec over a limit is 422 naming the field to change, with
    the estimate in `detail`; a team with too many queued jobs gets 429."""
    created = submit_job(services, team=team, spec=spec, idempotency_key=idempotency_key)
    if not created.created:
        response.status_code = 200
    response.headers["Location"] = f"/v1/jobs/{created.job.id}"
    return created.job


@router.get("", summary="List jobs")
def list_jobs(
    team: CurrentTeam,
    services: ServicesDep,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this status.")] = None,
    name: Annotated[str | None, Query(max_length=100, description="Only jobs of this exact "
                                      "name.")] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Jobs per page.")] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> JobPage:
    """Your team's jobs, newest first. When `next_cursor` is set, pass it as `cursor` to get the
    next page; it is opaque and keeps working while new jobs arrive."""
    with services.db.read() as session:
        return jobs.list_jobs(session, team_id=team.id, status=status, name=name, limit=limit,
                              cursor=cursor)


@router.get("/{job_id}", summary="Get a job", responses=problem_doc(404))
def get_job(job: JobDep) -> Job:
    """The job's status, spec, attempt, progress (step of total_steps), summary metrics, error,
    timestamps, and the worker and device that run it. Non-finite numbers are null."""
    return job


@router.post("/{job_id}/cancel", status_code=202, summary="Cancel a job",
             responses=problem_doc(404))
def cancel_job(job: JobDep, team: CurrentTeam, services: ServicesDep) -> Job:
    """Ask the job to stop. A queued job is cancelled at once and never starts; a running job
    gets `cancel_requested` and its worker stops it within seconds; a finished job is returned
    unchanged. Safe to repeat."""
    with services.db.transaction() as session:
        return jobs.request_cancel(session, team_id=team.id, job_id=job.id)
