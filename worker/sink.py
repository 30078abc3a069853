"""The store writes of one (job, attempt), in the reporter's terms.

Each write is one short transaction; the store fences it by the attempt number. A fenced-out
attempt becomes AttemptFenced (stop now), an unreachable database TransientStoreError (keep
the rows and try again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from gradlab_contract.models import Layer, Snapshot
from sqlalchemy.orm import Session

from store import events, leases, series, snapshots
from store.db import Database
from store.errors import NotFound, StaleAttempt, Unavailable
from worker.reporter import AttemptFenced, TransientStoreError

T = TypeVar("T")


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except (StaleAttempt, NotFound) as error:
        raise AttemptFenced(str(error)) from error
    except Unavailable as error:
        raise TransientStoreError(str(error)) from error


class StoreSink:
    def __init__(
        self, database: Database, *, job_id: str, attempt: int, lease_seconds: float
    ) -> None:
        self._db = database
        self._job_id = job_id
        self._attempt = attempt
        self._lease_seconds = lease_seconds
        self._progress_step = -1

    def _write(self, action: Callable[[Session], T]) -> T:
        with _translated(), self._db.transaction() as session:
            return action(session)

    def write_layers(self, layers: list[Layer]) -> None:
        rows = [layer.model_dump() for layer in layers]
        self._write(
            lambda s: snapshots.write_layers(
                s, job_id=self._job_id, attempt=self._attempt, layers=rows
            )
        )

    def write_metrics(self, rows: list[tuple[int, str, float]]) -> None:
        def write(session: Session) -> None:
            series.write_metrics(session, job_id=self._job_id, attempt=self._attempt, rows=rows)
            events.metrics(session, job_id=self._job_id, rows=rows)  # the streams' latest values

        self._write(write)

    def write_snapshots(self, items: list[Snapshot]) -> None:
        rows = [item.model_dump() for item in items]
        self._write(
            lambda s: snapshots.write_snapshots(
                s, job_id=self._job_id, attempt=self._attempt, snapshots=rows
            )
        )

    def record_checkpoint(self, step: int) -> None:
        self._write(
            lambda s: leases.record_checkpoint(
                s, job_id=self._job_id, attempt=self._attempt, step=step
            )
        )

    def heartbeat(self, step: int) -> bool:
        def renew(session: Session) -> bool:
            cancel = leases.renew_lease(
                session, job_id=self._job_id, attempt=self._attempt,
                lease_seconds=self._lease_seconds, progress_step=step,
            )
            if step != self._progress_step:  # a `progress` event when the step moved
                events.progress(session, job_id=self._job_id, step=step)
            return cancel

        cancel = self._write(renew)
        self._progress_step = step
        return cancel
