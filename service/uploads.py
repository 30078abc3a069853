"""Data sets: the built-in ones (described from the spec's shapes) and the teams' uploads.

An upload is streamed from the request (service.upload_stream, after authentication and under
the size cap) into settings.uploads_dir as a hidden partial file, checked (see service.npz),
renamed to <team>/<id>.npz and only then recorded; any failure on the way removes the file, so
a rejected upload leaves neither a file nor a row. (A crash between the rename and the commit
can leave an unrecorded file, never a row without its file.)
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath

from fastapi import Request
from gradlab_contract.catalog import DESCRIPTIONS
from gradlab_contract.models import DatasetInfo
from gradlab_contract.shapes import data_shape, upload_shape
from gradlab_contract.spec import BUILTIN_DATASETS, DataSpec
from starlette.concurrency import run_in_threadpool

from service.deps import Services
from service.npz import inspect_npz
from service.upload_stream import ReceivedForm, boundary_of, receive_form
from store import datasets
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
    """Stream the request's multipart body into the team's folder under max_upload_bytes, check
    the .npz, then record it; raises PayloadTooLarge or InvalidUpload and leaves nothing."""
    settings = services.settings
    boundary = boundary_of(request.headers.get("content-type", ""))
    dataset_id = new_id()
    # The partial file waits beside the teams' folders; the team's folder is made only for a
    # file that passed, so a refused upload leaves nothing behind.
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    partial = settings.uploads_dir / f".{dataset_id}.partial"
    final = settings.uploads_dir / team.id / f"{dataset_id}.npz"
    try:
        form = await receive_form(request.stream(), boundary=boundary, target=partial,
                                  max_file_bytes=settings.max_upload_bytes)
        return await run_in_threadpool(
            _record, services, team=team, dataset_id=dataset_id, partial=partial, final=final,
            form=form,
        )
    except BaseException:
        partial.unlink(missing_ok=True)
        final.unlink(missing_ok=True)
        raise


def _record(
    services: Services, *, team: Team, dataset_id: str, partial: Path, final: Path,
    form: ReceivedForm,
) -> DatasetInfo:
    """Check the received file, move it into place and record it (in a worker thread: fsync
    and reading the archive's headers block)."""
    settings = services.settings
    with partial.open("rb") as received:
        os.fsync(received.fileno())  # on disk before a row points at it
    info = inspect_npz(partial, max_upload_bytes=settings.max_upload_bytes)
    final.parent.mkdir(exist_ok=True)
    os.replace(partial, final)
    name = form.fields.get("name") or PurePath(form.filename or "upload").stem or "upload"
    with services.db.transaction() as session:
        return datasets.create_dataset(
            session, team_id=team.id, dataset_id=dataset_id, name=name.replace("\x00", "")[:200],
            kind=upload_shape(info, val_fraction=0.2).kind, path=str(final),
            x_shape=list(info.x_shape[1:]), rows=info.x_shape[0], test_rows=info.test_rows,
            num_classes=info.num_classes, size_bytes=form.size,
            description=form.fields.get("description", ""),
        )
