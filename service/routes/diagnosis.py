"""What went wrong in a job, and a new job with the fixes applied."""

from __future__ import annotations

from fastapi import APIRouter, Response
from gradlab_contract.models import Diagnosis, Job, RemedyRequest

from service.deps import CurrentTeam, JobDep, ServicesDep
from service.diagnosing import job_diagnosis, remedied_spec
from service.http.problems import problem_doc
from service.routes.jobs import IdempotencyKey
from service.submission import submit_job

router = APIRouter(prefix="/v1/jobs/{job_id}", tags=["diagnosis"],
                   responses=problem_doc(401, 404, 503))


@router.get("/diagnosis", summary="What went wrong in a job")
def get_diagnosis(job: JobDep, services: ServicesDep) -> Diagnosis:
    """The job's findings, most severe first: each has a `code` (symmetry, vanishing_gradients,
    dead_units, lr_too_high, overfitting, ...), a `severity` (info, warning, error), a title
    and detail in plain words, the `layer` and `step` it was seen at, the numbers behind it
    (`evidence`), a `suggestion`, and a `remedy`: the spec changes that address it, by dotted
    path. `onset_step` is the first recorded step where it held; `caused_by` names the finding
    that explains it (a cause that began no later), whose remedy it shares: root causes come
    first, then their symptoms by onset. `outcomes` lists the remedy jobs submitted for it
    (`POST /remedy`, heal rounds) and what each proved: `cured` (no error-level finding and a
    clearly better best validation loss), `not_cured`, or `pending` while it runs. While the
    job runs the findings are updated every few seconds (`final` false); once it has ended,
    `final` is true. No findings on a final diagnosis means nothing went wrong."""
    return job_diagnosis(services, job)


@router.post(
    "/remedy",
    status_code=201,
    summary="Submit the job again with its findings' remedies applied",
    responses={200: {"model": Job, "description": "A replay: the job this Idempotency-Key made"},
               **problem_doc(409, 422, 429)},
)
def create_remedy(
    body: RemedyRequest,
    job: JobDep,
    team: CurrentTeam,
    services: ServicesDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Job:
    """Apply the remedies of the findings named in `codes` (in order; where two set the same
    field the later wins) to this job's spec and submit the result as a new job whose
    `parent_id` is this one, with the same limits as `POST /v1/jobs`. A code that is unknown,
    not among this job's findings, or without a remedy is 422 naming `codes`."""
    spec = remedied_spec(job, job_diagnosis(services, job), body.codes)
    created = submit_job(services, team=team, spec=spec, idempotency_key=idempotency_key,
                         parent_id=job.id, remedy_codes=body.codes)
    if not created.created:
        response.status_code = 200
    response.headers["Location"] = f"/v1/jobs/{created.job.id}"
    return created.job
