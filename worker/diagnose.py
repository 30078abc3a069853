"""The diagnosis of a job while it trains and when it ends.

LiveDiagnosis is one of the reporter's observers: it sees every metric row and snapshot the loop
reports and keeps what the diagnosis reads (diagnosis.RecordBuilder: bounded, no histograms). At
a snapshot step, at most every `every_seconds`, it diagnoses the run so far and replaces the
job's findings; at the end it writes the final diagnosis, before the job leaves `running`, so
the write is fenced like every other write of the attempt.

Diagnosing must never stop training: a failing rule or write is logged and skipped, and the next
snapshot step tries again. A fenced-out attempt stops writing (the reporter stops the loop).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from gradlab_contract.models import Layer, Snapshot
from gradlab_contract.spec import JobSpec

from diagnosis import DEFAULT, Finding, RecordBuilder, RunRecord, diagnose, metrics_of
from store import findings
from store.db import Database
from store.errors import NotFound, StaleAttempt, Unavailable
from store.leases import JobState

log = logging.getLogger(__name__)

EVERY_SECONDS = 5.0  # a diagnosis costs milliseconds; the write is what is kept rare
TELEMETRY_POINTS = 4096  # per series, when a retry starts from what the store holds

Write = Callable[[list[Finding], bool], None]  # (findings, final)


class LiveDiagnosis:
    def __init__(
        self,
        spec: JobSpec,
        write: Write,
        *,
        total_steps: int = 0,
        every_seconds: float = EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.builder = RecordBuilder(spec)
        self._write = write
        self._total_steps = total_steps
        self._every = every_seconds
        self._clock = clock
        self._last: float | None = None
        self._stopped = False  # fenced out: another attempt owns the job

    @classmethod
    def for_job(
        cls, database: Database, state: JobState, attempt: int, *, resume: bool
    ) -> LiveDiagnosis:
        """The live diagnosis of one attempt; a resumed one starts from what the store holds."""
        live = cls(state.spec, _store_writer(database, state.id, attempt),
                   total_steps=state.total_steps)
        if resume:
            live.builder.seed(_stored_record(database, state))
        return live

    # -- the reporter's observer calls (the training loop's thread) ---------------------------

    def on_layers(self, layers: list[Layer]) -> None:
        self.builder.add_layers(layers)

    def on_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self.builder.add_metrics(step, metrics)

    def on_snapshots(self, step: int, snapshots: list[Snapshot]) -> None:
        self.builder.add_snapshots(step, snapshots)
        now = self._clock()
        if self._last is None or now - self._last >= self._every:
            self._last = now
            self._run(self.builder.record(total_steps=self._total_steps), final=False)

    # -- the end (the runner's thread, after training returned) -------------------------------

    def finish(self, status: str) -> list[Finding]:
        """Diagnose the whole run and write it as the final diagnosis; return the findings."""
        return self._run(self.builder.record(status=status, total_steps=self._total_steps),
                         final=True)

    def _run(self, record: RunRecord, *, final: bool) -> list[Finding]:
        if self._stopped:
            return []
        try:
            found = diagnose(record)
        except Exception:  # a rule's bug must not cost the job
            log.exception("diagnosis failed at step %d", record.final_step)
            return []
        try:
            self._write(found, final)
        except (StaleAttempt, NotFound):
            self._stopped = True
        except Unavailable:
            log.warning("store unavailable: diagnosis at step %d not written", record.final_step)
        return found


def _store_writer(database: Database, job_id: str, attempt: int) -> Write:
    def write(found: list[Finding], final: bool) -> None:
        with database.transaction() as session:
            findings.replace_findings(session, job_id=job_id, attempt=attempt,
                                      findings=[f.to_dict() for f in found], final=final)

    return write


def _stored_record(database: Database, state: JobState) -> RunRecord:
    with database.read() as session:
        telemetry = findings.read_telemetry(session, job_id=state.id, window=DEFAULT.window,
                                            max_points=TELEMETRY_POINTS)
    return RunRecord.build(state.spec, layers=telemetry.layers, snapshots=telemetry.snapshots,
                           metrics=metrics_of(telemetry.series))
