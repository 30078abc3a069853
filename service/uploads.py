"""Data sets: the built-in ones (described from the spec's shapes) and the teams' uploads.

An upload is streamed from the request (service.upload_stream, after authentication and under
the size cap) into settings.uploads_dir as a hidden partial file, checked (see service.npz), put
in the artifact store as uploads/<team>/<id>.npz (so workers on other hosts read it from there)
and only then recorded; any failure on the way removes the file and the object, so a rejected
upload leaves neither a file nor a row. (A crash between the put and the commit can leave an
unrecorded object, never a row without its object.)
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path, PurePath

from fastapi import Request
from gradlab_contract.catalog import DESCRIPTIONS
from gradlab_contract.models import DatasetInfo
from gradlab_contract.shapes import data_shape, upload_shape
from gradlab_contract.spec import BUILTIN_DATASETS, DataSpec
from starlette.concurrency import run_in_threadpool

from service.deps import Services
from service.npz import FIELD, inspect_npz
from service.upload_stream import ReceivedForm, boundary_of, receive_form
from store import datasets, job_artifacts
from store.orm import new_id
from store.teams import Team


def builtin_datasets() -> list[DatasetInfo]:
    """The built-in data sets with their default options."""
    infos = []
    for name in BUILTIN_DATASETS:
        shape = data_shape(DataSpec(dataset=name))
        infos.append(DatasetInfo(
            id=name, name=name, builtin=True, kind=shape.kind,
            input_shape=list(shape.input_shape), num_classes=shape.num_classes,
            rows=shape.n_train + shape.n_val, description=DESCRIPTIONS["data.dataset"][name],
        ))
    return infos


async def save_upload(
    services: Services, *, team: Team, request: Request
) -> DatasetInfo:
    """Stream the request's multipart body to a partial file under max_upload_bytes, check
    the .npz, then record it; raises PayloadTooLarge or InvalidUpload and leaves nothing."""
    settings = services.settings
    boundary = boundary_of(request.headers.get("content-type", ""))
    dataset_id = new_id()
    # The partial file waits beside the teams' folders; nothing is kept for a refused upload.
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    partial = settings.uploads_dir / f".{dataset_id}.partial"
    key = datasets.upload_key(team.id, dataset_id)
    try:
        form = await receive_form(request.stream(), boundary=boundary, target=partial,
                                  max_file_bytes=settings.max_upload_bytes)
        return await run_in_threadpool(
            _record, services, team=team, dataset_id=dataset_id, partial=partial, key=key,
            form=form,
        )
    except BaseException:
        with suppress(Exception):  # the store may be what failed; the first error is the news
            services.artifacts.delete([key])
        raise
    finally:
        partial.unlink(missing_ok=True)


def delete_upload(services: Services, *, team: Team, dataset_id: str) -> None:
    """Delete the team's upload (row and object); Conflict while a queued or running job of
    the team trains on it."""
    with services.db.transaction() as session:
        key = datasets.delete_dataset(session, team_id=team.id, dataset_id=dataset_id)
        # After the row: a crash in between leaves an object no row names (harmless), never a
        # row whose object is gone.
        if Path(key).is_absolute():  # an upload from before the artifact store
            Path(key).unlink(missing_ok=True)
        else:
            services.artifacts.delete([key])


def _record(
    services: Services, *, team: Team, dataset_id: str, partial: Path, key: str,
    form: ReceivedForm,
) -> DatasetInfo:
    """Check the received file, put it in the artifact store within the team's storage quota and
    record it (in a worker thread: fsync, reading the archive's headers and the put block)."""
    settings = services.settings
    with partial.open("rb") as received:
        os.fsync(received.fileno())  # complete before it is checked and stored
    info = inspect_npz(partial, max_upload_bytes=settings.max_upload_bytes)
    with services.db.read() as session:
        job_artifacts.check_storage_quota(
            session, team_id=team.id, quota_bytes=settings.max_storage_bytes_per_team,
            adding=form.size, field=FIELD,
        )
    services.artifacts.put_file(key, partial)
    name = form.fields.get("name") or PurePath(form.filename or "upload").stem or "upload"
    with services.db.transaction() as session:
        return datasets.create_dataset(
            session, team_id=team.id, dataset_id=dataset_id, name=name.replace("\x00", "")[:200],
            kind=upload_shape(info, val_fraction=0.2).kind, path=key,
            x_shape=list(info.x_shape[1:]), rows=info.x_shape[0], test_rows=info.test_rows,
            num_classes=info.num_classes, size_bytes=form.size,
            description=form.fields.get("description", ""),
        )
