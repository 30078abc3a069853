"""/v1/datasets: the built-in data sets and your team's uploads."""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from gradlab_contract.models import DatasetInfo

from service.deps import CurrentTeam, ServicesDep
from service.http.body_limit import Limit
from service.http.problems import problem_doc
from service.uploads import builtin_datasets, save_upload
from store import datasets
from store.settings import Settings

# Room for the multipart framing and the name and description fields around the file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
# Form fields are stored as text, which PostgreSQL refuses to hold a NUL in (service.http.nul_guard
# searches JSON bodies; an upload's body is binary, so its text fields say so themselves).
NO_NUL = r"^[^\x00]*$"


def upload_dataset(
    team: CurrentTeam,
    services: ServicesDep,
    file: Annotated[UploadFile, File(description="An .npz saved with numpy.savez(_compressed): "
                                     "x (rows first), y (integer labels), and optionally "
                                     "x_test, y_test.")],
    name: Annotated[str | None, Form(max_length=200, pattern=NO_NUL,
                                     description="Default: the file's name.")] = None,
    description: Annotated[str, Form(max_length=2000, pattern=NO_NUL)] = "",
) -> DatasetInfo:
    """Upload a data set as an .npz of numeric arrays: `x` (rows, features), (rows, h, w) or
    (rows, channels, h, w); `y` with one integer label >= 0 per row; optionally a fixed test
    split `x_test`, `y_test`. Arrays are read without unpickling, so object arrays are refused.

    Returns the data set; use its `id` (`upload:<id>`) as `data.dataset` in a job spec. Files
    over `max_upload_bytes` (see `GET /v1/catalog`) get 413; unusable files get 422 saying why,
    and leave nothing stored."""
    filename = (file.filename or "").replace("\x00", "")  # a name PostgreSQL can store
    label = name or PurePath(filename or "upload").stem or "upload"
    return save_upload(services, team=team, source=file.file, name=label[:200],
                       description=description)


def list_datasets(team: CurrentTeam, services: ServicesDep) -> list[DatasetInfo]:
    """The built-in data sets (with their default options) followed by your team's uploads,
    newest first."""
    with services.db.read() as session:
        uploads = datasets.list_datasets(session, team_id=team.id)
    return [*builtin_datasets(), *uploads]


router = APIRouter(prefix="/v1/datasets", tags=["datasets"], responses=problem_doc(401, 503))
router.add_api_route(
    "", upload_dataset, methods=["POST"], status_code=201, summary="Upload a data set",
    responses=problem_doc(413, 422), form_limits={"max_files": 1, "max_fields": 2},
)
router.add_api_route("", list_datasets, methods=["GET"], summary="List data sets")


def body_limits(settings: Settings) -> dict[tuple[str, str], Limit]:
    """The upload's request size limit (service.http.body_limit), from the settings."""
    limit = Limit(settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES,
                  f"uploads are limited to {settings.max_upload_bytes:,} bytes", field="file")
    return {("POST", "/v1/datasets"): limit}
