"""A job's diagnosis as the API gives it, and the spec its findings' remedies make.

The worker writes the diagnosis live and when the job ends. A job that ended without a final
one (its worker was lost and the reaper failed it, or it ran before diagnosis existed) is
diagnosed here, from what the store holds: the same rules over the same statistics.
"""

from __future__ import annotations

from gradlab_contract.models import Diagnosis, Finding, Job
from gradlab_contract.spec import JobSpec, describe_errors
from pydantic import ValidationError

from diagnosis import DEFAULT, RemedyError, RunRecord, apply_remedies, diagnose, metrics_of
from service.deps import Services
from service.errors import InvalidSpec
from store import findings, jobs, remedies
from store.errors import InvalidInput

SERIES_POINTS = 4096  # per metric series: the worker's diagnosis keeps as many


def job_diagnosis(services: Services, job: Job) -> Diagnosis:
    """The diagnosis with its remedy jobs' outcomes, each settled here if its job has ended and
    the worker has not settled it yet (it settles them as each ends)."""
    settle_remedies(services, job.id)
    found = bare_diagnosis(services, job)
    with services.db.read() as session:
        return findings.with_outcomes(session, found)


def settle_remedies(services: Services, parent_id: str) -> None:
    with services.db.read() as session:
        pending = remedies.pending_children(session, parent_id=parent_id)
        children = jobs.jobs_by_id(session, job_ids=pending)
    for child in children:
        if child.done:
            found = bare_diagnosis(services, child).findings
            with services.db.transaction() as session:
                remedies.settle(session, child_id=child.id, findings=found)


def bare_diagnosis(services: Services, job: Job) -> Diagnosis:
    """The stored diagnosis; for a finished job without a final one, a diagnosis made now."""
    with services.db.read() as session:
        stored = findings.get_diagnosis(session, job_id=job.id)
        if stored is not None and (stored.final or not job.done):
            return stored
        if not job.done:
            return Diagnosis(job_id=job.id)  # queued, or no snapshot step reached yet
        telemetry = findings.read_telemetry(session, job_id=job.id, window=DEFAULT.window,
                                            max_points=SERIES_POINTS)
    record = RunRecord.build(
        job.spec, layers=telemetry.layers, snapshots=telemetry.snapshots,
        metrics=metrics_of(telemetry.series), status=job.status,
        total_steps=job.progress.total_steps,
    )
    found = [Finding.model_validate(finding.to_dict()) for finding in diagnose(record)]
    return Diagnosis(job_id=job.id, findings=found, final=True, updated_at=job.finished_at)


def remedied_spec(job: Job, diagnosis: Diagnosis, codes: list[str]) -> JobSpec:
    """The job's spec with the remedies of `codes` applied; InvalidInput naming `codes` when a
    code is unknown, not among the findings or without a remedy, InvalidSpec when the result
    breaks the spec's own rules."""
    try:
        changed = apply_remedies(job.spec.model_dump(mode="json"), diagnosis.findings, codes)
    except RemedyError as error:
        raise InvalidInput("codes", str(error)) from None
    try:
        return JobSpec.model_validate(changed)
    except ValidationError as error:
        first = describe_errors(error)[0]
        raise InvalidSpec(f"the remedies make an invalid spec: {first.message}",
                          field=first.field) from None
