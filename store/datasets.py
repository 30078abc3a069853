"""Uploaded data sets. A job names one as ``upload:<id>``; built-in data sets are not stored.

The service writes the file under settings.uploads_dir, then records it here; the worker asks
for its path with get_dataset_file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gradlab_contract.models import DatasetInfo
from sqlalchemy import select
from sqlalchemy.orm import Session

from store import orm
from store.errors import InvalidInput, NotFound

UPLOAD = "upload:"
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what JobSpec accepts after "upload:"


@dataclass(frozen=True)
class DatasetFile:
    """Where an upload lives and what the worker needs to load it."""

    id: str
    path: str
    kind: str
    x_shape: list[int]
    num_classes: int
    rows: int
    test_rows: int | None
    size_bytes: int


def _bare_id(dataset_id: str) -> str:
    return dataset_id.removeprefix(UPLOAD)


def _to_info(row: orm.Dataset) -> DatasetInfo:
    return DatasetInfo(
        id=UPLOAD + row.id, name=row.name, builtin=False, kind=row.kind,
        input_shape=row.x_shape, num_classes=row.num_classes, rows=row.rows,
        description=row.description, created_at=row.created_at,
    )


def create_dataset(
    session: Session,
    *,
    team_id: str,
    name: str,
    kind: str,
    path: str,
    x_shape: list[int],
    num_classes: int,
    rows: int,
    size_bytes: int,
    test_rows: int | None = None,
    description: str = "",
    dataset_id: str | None = None,
) -> DatasetInfo:
    """Record an upload. Pass dataset_id (from store.orm.new_id) when the file is named by it."""
    if dataset_id is not None and not _ID.match(dataset_id):
        raise InvalidInput("dataset_id", "use 1 to 64 of A-Z a-z 0-9 _ -")
    row = orm.Dataset(
        team_id=team_id, name=name, kind=kind, path=path, x_shape=list(x_shape),
        num_classes=num_classes, rows=rows, test_rows=test_rows, size_bytes=size_bytes,
        description=description,
    )
    if dataset_id is not None:
        row.id = dataset_id
    session.add(row)
    session.flush()
    return _to_info(row)


def _team_row(session: Session, team_id: str, dataset_id: str) -> orm.Dataset:
    query = select(orm.Dataset).where(
        orm.Dataset.id == _bare_id(dataset_id), orm.Dataset.team_id == team_id
    )
    row = session.scalars(query).one_or_none()
    if row is None:
        raise NotFound(f"data set {dataset_id} not found", field="dataset")
    return row


def list_datasets(session: Session, *, team_id: str) -> list[DatasetInfo]:
    """The team's uploads, newest first."""
    query = (
        select(orm.Dataset)
        .where(orm.Dataset.team_id == team_id)
        .order_by(orm.Dataset.created_at.desc(), orm.Dataset.id)
    )
    return [_to_info(row) for row in session.scalars(query)]


def get_dataset(session: Session, *, team_id: str, dataset_id: str) -> DatasetInfo:
    """By "upload:<id>" or "<id>"; another team's upload is NotFound."""
    return _to_info(_team_row(session, team_id, dataset_id))


def get_dataset_file(session: Session, *, team_id: str, dataset_id: str) -> DatasetFile:
    row = _team_row(session, team_id, dataset_id)
    return DatasetFile(
        id=row.id, path=row.path, kind=row.kind, x_shape=row.x_shape,
        num_classes=row.num_classes, rows=row.rows, test_rows=row.test_rows,
        size_bytes=row.size_bytes,
    )
