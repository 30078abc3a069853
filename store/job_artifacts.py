"""The rows of the files jobs keep (the files themselves are objects in store.artifacts), and a
team's storage use against its quota.

A worker uploads a job's files first and records them here after, in one fenced transaction with
the export errors: a row never points at an object that is not there, and a fenced-out attempt
records nothing (its objects are overwritten by the attempt that owns the job, byte for byte,
since training is deterministic).
"""

from __future__ import annotations

from dataclasses import dataclass

from gradlab_contract.models import Artifact, StorageUsage
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from store import orm
from store._sql import fence
from store.errors import NotFound, QuotaExceeded, StaleAttempt


@dataclass(frozen=True)
class KeptFile:
    """A file a worker has put in the artifact store under `key`."""

    name: str
    kind: str
    which: str | None
    key: str
    size: int
    sha256: str


def job_prefix(job_id: str) -> str:
    """Where a job's objects live in the artifact store."""
    return f"jobs/{job_id}"


def record_artifacts(
    session: Session, *, job_id: str, attempt: int, files: list[KeptFile],
    errors: dict[str, str],
) -> None:
    """Record what attempt `attempt` kept (replacing what an earlier attempt recorded), fenced:
    StaleAttempt when the attempt no longer owns the running job."""
    stmt = (
        update(orm.Job)
        .where(orm.Job.id == job_id, orm.Job.attempt == attempt, orm.Job.status == "running")
        .values(artifact_errors=errors or None)
        .returning(orm.Job.team_id)
    )
    team_id = session.execute(stmt).scalar_one_or_none()
    if team_id is None:
        fence(session, job_id=job_id, attempt=attempt)
        raise StaleAttempt(f"job {job_id} attempt {attempt} is fenced out")
    session.execute(delete(orm.Artifact).where(orm.Artifact.job_id == job_id))
    session.add_all(
        orm.Artifact(job_id=job_id, team_id=team_id, name=f.name, kind=f.kind, which=f.which,
                     key=f.key, size=f.size, sha256=f.sha256)
        for f in files
    )
    session.flush()


def list_artifacts(session: Session, *, job_id: str) -> list[Artifact]:
    """The job's files by name (the caller has checked the job is the team's)."""
    rows = session.scalars(
        select(orm.Artifact).where(orm.Artifact.job_id == job_id).order_by(orm.Artifact.name)
    )
    return [_to_artifact(row) for row in rows]


def get_artifact(session: Session, *, job_id: str, name: str) -> tuple[Artifact, str]:
    """The file `name` of the job and its object key; NotFound names the field."""
    row = session.get(orm.Artifact, (job_id, name))
    if row is None:
        raise NotFound(f"job {job_id} has no artifact {name!r}", field="name")
    return _to_artifact(row), row.key


def storage_usage(session: Session, *, team_id: str, quota_bytes: int) -> StorageUsage:
    artifact_bytes = session.scalar(
        select(func.coalesce(func.sum(orm.Artifact.size), 0)).where(
            orm.Artifact.team_id == team_id)
    )
    upload_bytes = session.scalar(
        select(func.coalesce(func.sum(orm.Dataset.size_bytes), 0)).where(
            orm.Dataset.team_id == team_id)
    )
    artifacts, uploads = int(artifact_bytes or 0), int(upload_bytes or 0)
    return StorageUsage(artifact_bytes=artifacts, upload_bytes=uploads,
                        used_bytes=artifacts + uploads, quota_bytes=quota_bytes)


def check_storage_quota(
    session: Session, *, team_id: str, quota_bytes: int, adding: int = 0, field: str | None = None
) -> None:
    """QuotaExceeded when the team keeps `quota_bytes` or more (with `adding` more bytes)."""
    usage = storage_usage(session, team_id=team_id, quota_bytes=quota_bytes)
    if usage.used_bytes + adding > quota_bytes:
        raise QuotaExceeded(
            f"the team keeps {usage.used_bytes:,} bytes of artifacts and uploads"
            + (f" and this adds {adding:,}" if adding else "")
            + f"; its quota is {quota_bytes:,}: delete finished jobs or data sets "
            "(DELETE /v1/jobs/{id}, DELETE /v1/datasets/{id})",
            field=field,
        )


def _to_artifact(row: orm.Artifact) -> Artifact:
    return Artifact.model_validate({
        "name": row.name, "kind": row.kind, "which": row.which, "size": row.size,
        "sha256": row.sha256, "created_at": row.created_at,
    })
