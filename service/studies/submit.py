"""Submitting a study: resolve its template, expand and check every variant, commit the study
and all its jobs in one transaction, then publish the job ids to the study queue.

Nothing is stored until every job passed validation and the deployment's limits, so a refused
study leaves no rows and no broker messages. Study jobs go to settings.study_queue (taskqueue.
queue_for), which workers take turns with the main queue: one team's large study does not starve
another team's job. An Idempotency-Key makes a retried submit return the first study, as for jobs.
"""

from __future__ import annotations

from typing import Any

from gradlab_contract.models import StudyCreate
from gradlab_contract.spec import JobSpec

from service.deps import Services
from service.errors import InvalidSpec
from service.limits import check_limits
from service.studies.expand import Run, expand, set_path
from service.studies.templates import TEMPLATES
from service.submission import fingerprint, resolve_upload
from store import studies
from store.studies import CreatedStudy
from store.teams import Team
from taskqueue import publish_or_reconcile


def resolve_request(body: StudyCreate) -> StudyCreate:
    """The request with a template's base, grid and seeds filled in, and `overrides` applied."""
    if body.template is None:
        if body.base is None:
            raise InvalidSpec("a study needs a `base` spec or a `template`", field="base")
        if body.overrides:
            raise InvalidSpec("overrides apply to a template's base only", field="overrides")
        return body
    if body.base is not None:
        raise InvalidSpec("give a `template` or a `base`, not both", field="base")
    if body.template not in TEMPLATES:
        raise InvalidSpec(f"{body.template!r} is not one of {', '.join(TEMPLATES)}",
                          field="template")
    template: dict[str, Any] = dict(TEMPLATES[body.template][1])
    base = template["base"]
    for path, value in body.overrides.items():
        base = set_path(base, path, value)
    return StudyCreate(
        name=body.name or template["name"], template=body.template, base=base,
        grid=body.grid if body.grid is not None or body.search else template["grid"],
        search=body.search, seeds=body.seeds or template.get("seeds"),
    )


def submit_study(
    services: Services, *, team: Team, body: StudyCreate, idempotency_key: str | None = None
) -> CreatedStudy:
    """Create (or, for a repeated Idempotency-Key, find) the team's study and publish the jobs
    of a new one."""
    request = resolve_request(body)
    assert request.base is not None  # resolve_request guarantees it
    expansion = expand(request.base, grid=request.grid, search=request.search,
                       seeds=request.seeds, max_jobs=services.settings.max_study_jobs)
    runs = [_checked(services, team, run) for run in expansion.runs]
    with services.db.transaction() as session:
        created = studies.create_study(
            session, team_id=team.id, name=request.name, template=request.template,
            request=request.model_dump(mode="json", exclude_none=True), varied=expansion.varied,
            variants=[variant.values for variant in expansion.variants], runs=runs,
            max_queued=services.settings.max_queued_study_jobs_per_team,
            idempotency_key=idempotency_key, request_hash=request_hash(body),
        )
    for job_id in created.job_ids:
        publish_or_reconcile(services.celery, services.settings, job_id,
                             study_id=created.study.id)
    return created


def request_hash(body: StudyCreate) -> str:
    """A fingerprint of the request as sent, its base spec validated: bodies that differ only in
    spacing, key order or spelled-out defaults are the same request. Call it once the base has
    passed validation (expand)."""
    document = body.model_dump(mode="json")
    if body.base is not None:
        document["base"] = JobSpec.model_validate(body.base).model_dump(mode="json")
    return fingerprint(document)


def _checked(services: Services, team: Team, run: Run) -> studies.NewRun:
    spec: JobSpec = run.spec
    upload = resolve_upload(services, team=team, spec=spec)
    try:
        estimate = check_limits(spec, services.settings, upload)
    except InvalidSpec as exc:
        raise InvalidSpec(exc.message, field=f"variant {run.variant}: {exc.field}") from None
    return studies.NewRun(run.variant, run.seed, spec, estimate.total_steps)

