"""/v1/datasets: the built-in data sets and your team's uploads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from gradlab_contract.models import DatasetInfo

from service.deps import CurrentTeam, ServicesDep
from service.http.body_limit import Limit
from service.http.problems import problem_doc
from service.uploads import builtin_datasets, delete_upload, save_upload
from store import datasets
from store.settings import Settings

# Room for the multipart framing and the name and description fields around the file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
# The body the route reads itself (service.upload_stream), as the OpenAPI document shows it.
UPLOAD_BODY = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "An .npz saved with "
                 "numpy.savez(_compressed): x (rows first), y (integer labels), and optionally "
                 "x_test, y_test."},
        "name": {"type": "string", "maxLength": 200, "description": "Default: the file's name."},
        "description": {"type": "string", "maxLength": 2000},
    }}}}}


async def upload_dataset(request: Request, team: CurrentTeam, services: ServicesDep) -> DatasetInfo:
    """Upload a data set as an .npz of numeric arrays: `x` (rows, features), (rows, h, w) or
    (rows, channels, h, w); `y` with one integer label >= 0 per row; optionally a fixed test
    split `x_test`, `y_test`. Arrays are read without unpickling, so object arrays are refused.

    Returns the data set; use its `id` (`upload:<id>`) as `data.dataset` in a job spec. The key
    and the rate limit are checked before the body is read. Files over `max_upload_bytes` (see
    `GET /v1/catalog`) get 413; unusable files get 422 saying why, and leave nothing stored."""
    return await save_upload(services, team=team, request=request)


def list_datasets(team: CurrentTeam, services: ServicesDep) -> list[DatasetInfo]:
    """The built-in data sets (with their default options) followed by your team's uploads,
    newest first."""
    with services.db.read() as session:
        uploads = datasets.list_datasets(session, team_id=team.id)
    return [*builtin_datasets(), *uploads]


def delete_dataset(
    team: CurrentTeam,
    services: ServicesDep,
    dataset_id: Annotated[str, Path(max_length=80, description="The upload's id, `upload:<id>` "
                                    "or `<id>`.")],
) -> Response:
    """Delete one of your team's uploads and its file. 409 while a queued or running job of
    your team trains on it; jobs that trained on it keep their results and artifacts."""
    delete_upload(services, team=team, dataset_id=dataset_id)
    return Response(status_code=204)


router = APIRouter(prefix="/v1/datasets", tags=["datasets"], responses=problem_doc(401, 503))
router.add_api_route(
    "", upload_dataset, methods=["POST"], status_code=201, summary="Upload a data set",
    responses=problem_doc(413, 422, 429), openapi_extra={"requestBody": UPLOAD_BODY},
)
router.add_api_route("", list_datasets, methods=["GET"], summary="List data sets")
router.add_api_route("/{dataset_id}", delete_dataset, methods=["DELETE"], status_code=204,
                     summary="Delete an uploaded data set", responses=problem_doc(404, 409))


def body_limits(settings: Settings) -> dict[tuple[str, str], Limit]:
    """The upload's request size limit (service.http.body_limit), from the settings."""
    limit = Limit(settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES,
                  f"uploads are limited to {settings.max_upload_bytes:,} bytes", field="file")
    return {("POST", "/v1/datasets"): limit}
