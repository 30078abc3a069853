"""Submitting a job: check it against the caps, commit it as queued, then hand its id to the broker.

The order matters: the row is committed before the id is published, so a worker never receives an
id it cannot read. A failed publish leaves the job queued in the database, where the worker's
reconciler finds it and publishes it again, so the submit still succeeds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from gradlab_contract.shapes import UploadInfo
from gradlab_contract.spec import JobSpec

from service.deps import Services
from service.errors import InvalidSpec
from service.limits import check_limits
from store import datasets, jobs, remedies
from store.errors import NotFound
from store.jobs import CreatedJob
from store.teams import Team
from taskqueue import publish_or_reconcile


def submit_job(
    services: Services,
    *,
    team: Team,
    spec: JobSpec,
    idempotency_key: str | None,
    parent_id: str | None = None,
    remedy_codes: Sequence[str] = (),
) -> CreatedJob:
    """Create (or, for a repeated Idempotency-Key, find) the team's job and enqueue a new one.
    `parent_id` names the job whose diagnosis' remedies (of `remedy_codes`) made this spec; the
    remedy is recorded with the job, so its outcome can be settled when it ends."""
    settings = services.settings
    upload = resolve_upload(services, team=team, spec=spec)
    estimate = check_limits(spec, settings, upload)
    with services.db.transaction() as session:
        created = jobs.create_job(
            session, team_id=team.id, spec=spec, total_steps=estimate.total_steps,
            idempotency_key=idempotency_key, request_hash=request_hash(spec),
            max_queued=settings.max_queued_jobs_per_team, parent_id=parent_id,
        )
        if created.created and parent_id is not None and remedy_codes:
            remedies.record_remedy(session, parent_id=parent_id, child_id=created.job.id,
                                   codes=remedy_codes)
    if created.created:
        publish_or_reconcile(services.celery, services.settings, created.job.id, study_id=None)
    return created


def resolve_upload(services: Services, *, team: Team, spec: JobSpec) -> UploadInfo | None:
    """The shape of the team's uploaded data set named by data.dataset, if it names one."""
    if spec.data.upload_id is None:
        return None
    try:
        with services.db.read() as session:
            found = datasets.get_dataset_file(session, team_id=team.id,
                                              dataset_id=spec.data.upload_id)
    except NotFound:
        raise InvalidSpec(f"{spec.data.dataset!r} is not one of your team's uploads (see "
                          "GET /v1/datasets)", field="data.dataset") from None
    return UploadInfo(x_shape=(found.rows, *found.x_shape), num_classes=found.num_classes,
                      test_rows=found.test_rows)


def request_hash(spec: JobSpec) -> str:
    """A fingerprint of the validated spec: bodies that differ only in spacing, key order or
    spelled-out defaults are the same request."""
    return fingerprint(spec.model_dump(mode="json"))


def fingerprint(document: Any) -> str:
    """sha256 of the JSON document written canonically (sorted keys, no spaces)."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()

