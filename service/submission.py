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
from service.warm_start import check_warm_start
from store import datasets, job_artifacts, jobs, remedies
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
    fingerprint_of_request: str | None = None,
    remedy_codes: Sequence[str] = (),
) -> CreatedJob:
    """Create (or, for a repeated Idempotency-Key, find) the team's job and enqueue a new one.
    `parent_id` names the job whose diagnosis' remedies (of `remedy_codes`) made this spec; the
    remedy is recorded with the job, so its outcome can be settled when it ends. The replay is
    looked up before the caps: a request that was accepted once is answered the same way again,
    even if the caps were lowered since. `fingerprint_of_request` replaces the spec's
    fingerprint (the remedy route fingerprints its own request)."""
    settings = services.settings
    fingerprint_of_request = fingerprint_of_request or request_hash(spec, parent_id)
    replayed = replayed_job(services, team=team, idempotency_key=idempotency_key,
                            fingerprint_of_request=fingerprint_of_request)
    if replayed is not None:
        return replayed
    upload = resolve_upload(services, team=team, spec=spec)
    estimate = check_limits(spec, settings, upload)
    check_warm_start(services, team=team, spec=spec, upload=upload)
    with services.db.transaction() as session:
        # A job keeps files: a team over its storage quota frees some before it trains more.
        job_artifacts.check_storage_quota(
            session, team_id=team.id, quota_bytes=settings.max_storage_bytes_per_team
        )
        created = jobs.create_job(
            session, team_id=team.id, spec=spec, total_steps=estimate.total_steps,
            idempotency_key=idempotency_key, request_hash=fingerprint_of_request,
            max_queued=settings.max_queued_jobs_per_team, parent_id=parent_id,
        )
        if created.created and parent_id is not None and remedy_codes:
            remedies.record_remedy(session, parent_id=parent_id, child_id=created.job.id,
                                   codes=remedy_codes)
    if created.created:
        publish_or_reconcile(services.celery, services.settings, created.job.id, study_id=None)
    return created


def replayed_job(
    services: Services, *, team: Team, idempotency_key: str | None, fingerprint_of_request: str,
) -> CreatedJob | None:
    """The job an earlier request with this key made (Conflict for another request), or None."""
    if idempotency_key is None:
        return None
    with services.db.read() as session:
        job = jobs.replayed_job(session, team_id=team.id, idempotency_key=idempotency_key,
                               request_hash=fingerprint_of_request)
    return None if job is None else CreatedJob(job, created=False)


def remedy_key(idempotency_key: str | None) -> str | None:
    """The stored key of a /remedy request: remedies have a key space of their own, apart from
    POST /v1/jobs (keys are unique per team in one column; a digest keeps the prefixed key
    within its length). A team could only collide with itself, by sending this very string."""
    if idempotency_key is None:
        return None
    return "remedy:" + hashlib.sha256(idempotency_key.encode()).hexdigest()


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


def request_hash(spec: JobSpec, parent_id: str | None = None) -> str:
    """A fingerprint of the validated spec and its parent: bodies that differ only in spacing,
    key order or spelled-out defaults are the same request."""
    document = spec.model_dump(mode="json")
    return fingerprint(document if parent_id is None else {"spec": document,
                                                           "parent_id": parent_id})


def fingerprint(document: Any) -> str:
    """sha256 of the JSON document written canonically (sorted keys, no spaces)."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()

