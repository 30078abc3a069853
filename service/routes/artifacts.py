"""A job's kept files (weights, exports, model card), the team's storage use, and deleting a
finished job with everything it kept."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Header, Path, Response
from fastapi.responses import StreamingResponse
from gradlab_contract.models import TERMINAL_STATUSES, Artifact, StorageUsage

from service.deps import CurrentTeam, JobDep, ServicesDep
from service.errors import RangeNotSatisfiable
from service.http.problems import problem_doc
from store import job_artifacts, jobs
from store.errors import Conflict, NotFound

router = APIRouter(tags=["artifacts"], responses=problem_doc(401, 503))
JOB = "/v1/jobs/{job_id}"
# One range of bytes, as clients resume a download ("bytes=100-", "bytes=100-199", "bytes=-50").
# Several ranges in one request (multipart/byteranges) are not served: the whole file is.
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")

ArtifactName = Annotated[str, Path(max_length=100, description="An artifact's `name`, as "
                                   "listed by GET /v1/jobs/{job_id}/artifacts.")]


@router.get(f"{JOB}/artifacts", summary="List a job's artifacts", responses=problem_doc(404))
def list_artifacts(job: JobDep, services: ServicesDep) -> list[Artifact]:
    """The files a succeeded job keeps: `weights-<which>.safetensors`, `model-<which>.pt`
    (TorchScript), `model-<which>.onnx` and `model-card.json` (spec, layers, summary, diagnosis
    and the preprocessing the exports apply), where `which` is `best` or `final` as
    `training.keep` asked. Exports that failed are named in the job's `artifact_errors`. Empty
    until the job has succeeded."""
    with services.db.read() as session:
        return job_artifacts.list_artifacts(session, job_id=job.id)


@router.get(
    f"{JOB}/artifacts/{{name}}", summary="Download an artifact",
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The file"},
               206: {"description": "The requested range"}, 304: {"description": "Unchanged"},
               **problem_doc(404, 416)},
)
def download_artifact(
    job: JobDep,
    services: ServicesDep,
    name: ArtifactName,
    range_header: Annotated[str | None, Header(alias="Range", max_length=200)] = None,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match", max_length=200)] = None,
) -> Response:
    """The file, streamed. Its `ETag` is its sha256 (in quotes); send it as `If-None-Match` to
    get 304 when you have it. `Range: bytes=start-end` (one range) resumes a download with 206;
    a range past the end is 416."""
    with services.db.read() as session:
        artifact, key = job_artifacts.get_artifact(session, job_id=job.id, name=name)
    etag = f'"{artifact.sha256}"'
    headers = {"ETag": etag, "Accept-Ranges": "bytes"}
    if if_none_match is not None and etag in {tag.strip() for tag in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    size = artifact.size
    span = _parse_range(range_header, size)
    start, end = span if span is not None else (0, size)
    headers["Content-Length"] = str(end - start)
    headers["Content-Disposition"] = f'attachment; filename="{artifact.name}"'
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    body = _stream(services, key, start, end) if end > start else iter([b""])
    return StreamingResponse(body, status_code=206 if span is not None else 200,
                             media_type="application/octet-stream", headers=headers)


def _stream(services: ServicesDep, key: str, start: int, end: int) -> Iterator[bytes]:
    try:
        yield from services.artifacts.stream(key, start=start, end=end)
    except FileNotFoundError:
        # The row is there and the object is not (deleted behind the service's back): the
        # headers are sent already, so the download ends short and the client's length check
        # (and the SDK's sha256 check) reports it.
        return


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, end) of a one-range Range header; None to send the whole file."""
    if header is None:
        return None
    match = _RANGE.match(header.strip())
    if match is None or match.groups() == ("", ""):
        return None  # a form we do not serve: RFC 9110 lets the server send the whole file
    first, last = match.groups()
    if first == "":  # the last N bytes
        start, end = max(0, size - int(last)), size
    else:
        start = int(first)
        end = size if last == "" else min(size, int(last) + 1)
    if start >= size or end <= start:
        raise RangeNotSatisfiable(f"range {header!r} is outside the file's {size} bytes",
                                  field="Range", size=size)
    return start, end


@router.get("/v1/usage", summary="Your team's storage use")
def usage(team: CurrentTeam, services: ServicesDep) -> StorageUsage:
    """Bytes your team keeps in jobs' artifacts and uploaded data sets, and its quota. Over the
    quota, new jobs and uploads are refused (429) until finished jobs or data sets are
    deleted."""
    with services.db.read() as session:
        return job_artifacts.storage_usage(
            session, team_id=team.id, quota_bytes=services.settings.max_storage_bytes_per_team
        )


@router.delete(JOB, status_code=204, summary="Delete a finished job",
               responses=problem_doc(404, 409))
def delete_job(job: JobDep, team: CurrentTeam, services: ServicesDep) -> Response:
    """Delete a finished job (succeeded, failed, cancelled or diverged) with its metrics,
    snapshots, diagnosis, artifacts and checkpoints. A queued or running job is 409: cancel it
    first. Deleting a job that is gone already is 404."""
    if job.status not in TERMINAL_STATUSES:
        raise Conflict(f"job {job.id} is {job.status}: cancel it and wait for it to end",
                       field="status")
    # The objects first: a crash in between leaves a row without files (listed, then 404 to
    # download, and deleted again by a repeat), never files that no row accounts for.
    services.artifacts.delete_prefix(job_artifacts.job_prefix(job.id))
    with services.db.transaction() as session:
        if not jobs.delete_finished_job(session, team_id=team.id, job_id=job.id):
            raise NotFound(f"job {job.id} not found", field="job_id")
    return Response(status_code=204)
