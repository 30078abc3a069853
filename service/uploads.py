"""Data sets: the built-in ones (described from the spec's shapes) and the teams' uploads.

An upload is copied under settings.uploads_dir/<team>/ as a hidden partial file, checked (see
service.npz), renamed to <id>.npz and only then recorded; any failure on the way removes the file,
so a rejected upload leaves neither a file nor a row. (A crash between the rename and the commit
can leave an unrecorded file, never a row without its file.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from gradlab_contract.catalog import DESCRIPTIONS
from gradlab_contract.models import DatasetInfo
from gradlab_contract.shapes import data_shape, upload_shape
from gradlab_contract.spec import BUILTIN_DATASETS, DataSpec

from service.deps import Services
from service.errors import PayloadTooLarge
from service.npz import FIELD, inspect_npz
from store import datasets
from store.orm import new_id
from store.teams import Team

CHUNK_BYTES = 1024 * 1024


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


def save_upload(
    services: Services, *, team: Team, source: BinaryIO, name: str, description: str
) -> DatasetInfo:
    """Store an uploaded .npz for the team; raises PayloadTooLarge or InvalidUpload."""
    settings = services.settings
    dataset_id = new_id()
    folder = settings.uploads_dir / team.id
    folder.mkdir(parents=True, exist_ok=True)
    partial, final = folder / f".{dataset_id}.partial", folder / f"{dataset_id}.npz"
    try:
        size = _copy_limited(source, partial, settings.max_upload_bytes)
        info = inspect_npz(partial, max_upload_bytes=settings.max_upload_bytes)
        os.replace(partial, final)
        with services.db.transaction() as session:
            return datasets.create_dataset(
                session, team_id=team.id, dataset_id=dataset_id, name=name,
                kind=upload_shape(info, val_fraction=0.2).kind, path=str(final),
                x_shape=list(info.x_shape[1:]), rows=info.x_shape[0], test_rows=info.test_rows,
                num_classes=info.num_classes, size_bytes=size, description=description,
            )
    except BaseException:
        partial.unlink(missing_ok=True)
        final.unlink(missing_ok=True)
        raise


def _copy_limited(source: BinaryIO, target: Path, limit: int) -> int:
    """Copy in chunks, refusing past `limit` bytes (the request limit also counts the multipart
    framing, so the file itself is checked here)."""
    size = 0
    with target.open("xb") as out:
        while chunk := source.read(CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"the file is larger than the limit of {limit:,} bytes",
                                      field=FIELD)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())  # on disk before a row points at it
    return size
