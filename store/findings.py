"""A job's diagnosis: its findings (written by the worker, fenced like every worker write) and
what the diagnosis reads back from the store when the service diagnoses a job itself.

Each write replaces the job's findings as a whole: a diagnosis is a statement about the run so
far, not a log, so a live diagnosis is superseded by the next and by the final one. The
diagnoses row says whether a job was diagnosed at all, since a healthy job has no findings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gradlab_contract.models import FINDING_CODES, Diagnosis, Finding, Layer, MetricSeries
from pydantic import BaseModel, ValidationError
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from store import events, orm, remedies, series, snapshots
from store._codec import json_safe
from store._sql import fence
from store.errors import InvalidInput

_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def replace_findings(
    session: Session,
    *,
    job_id: str,
    attempt: int,
    findings: Iterable[Any],
    final: bool,
    now: datetime | None = None,
) -> int:
    """Make `findings` the job's diagnosis (fenced by the attempt); return how many were stored.

    Findings may be the diagnosis' dataclasses, the API model, or dicts of the same fields.
    """
    fence(session, job_id=job_id, attempt=attempt)
    now = now or orm.utcnow()
    rows = [_row(job_id, _validated(item), final, now) for item in findings]
    before = set(session.scalars(select(orm.Finding.code).where(orm.Finding.job_id == job_id)))
    events.findings_changed(session, job_id=job_id, before=before, found=rows, final=final)
    session.execute(delete(orm.Finding).where(orm.Finding.job_id == job_id))
    if rows:
        session.execute(insert(orm.Finding), rows)
    header = session.get(orm.Diagnosis, job_id)
    if header is None:
        session.add(orm.Diagnosis(job_id=job_id, attempt=attempt, final=final, updated_at=now))
    else:
        header.attempt, header.final, header.updated_at = attempt, final, now
    session.flush()
    return len(rows)


def list_findings(session: Session, *, job_id: str) -> list[Finding]:
    """The job's findings, most severe first, causes before symptoms."""
    rows = session.scalars(select(orm.Finding).where(orm.Finding.job_id == job_id))
    found = [_to_finding(row) for row in rows]
    return sorted(found, key=_order)


def get_diagnosis(session: Session, *, job_id: str) -> Diagnosis | None:
    """The job's stored diagnosis, or None when it has never been diagnosed."""
    header = session.get(orm.Diagnosis, job_id)
    if header is None:
        return None
    return Diagnosis(job_id=job_id, findings=list_findings(session, job_id=job_id),
                     final=header.final, updated_at=header.updated_at)


def with_outcomes(session: Session, diagnosis: Diagnosis) -> Diagnosis:
    """The diagnosis with each finding's remedy jobs and what they proved (store.remedies)."""
    found = remedies.outcomes_by_code(session, parent_id=diagnosis.job_id)
    if not found:
        return diagnosis
    findings = [f.model_copy(update={"outcomes": found.get(f.code, [])})
                for f in diagnosis.findings]
    return diagnosis.model_copy(update={"findings": findings})


@dataclass(frozen=True)
class SnapshotStats:
    """A snapshot's statistics without its histograms: what the diagnosis reads."""

    step: int
    kind: str
    layer: str
    depth: int
    stats: dict[str, float | None]


@dataclass(frozen=True)
class RunTelemetry:
    layers: list[Layer]
    snapshots: list[SnapshotStats]
    series: list[MetricSeries]


def read_telemetry(
    session: Session, *, job_id: str, window: int, max_points: int
) -> RunTelemetry:
    """What a diagnosis of the job reads: its layers, the statistics of its first snapshot step
    and of the latest `window` ones, and every metric series downsampled to `max_points`."""
    steps = snapshots.snapshot_steps(session, job_id=job_id)
    chosen = sorted(set(steps[:1] + steps[-window:]))
    table = orm.Snapshot
    query = (
        select(table.step, table.kind, table.layer, table.depth, table.stats)
        .where(table.job_id == job_id, table.step.in_(chosen))
        .order_by(table.step, table.kind, table.depth)
    )
    stats = [SnapshotStats(*row) for row in session.execute(query)] if chosen else []
    return RunTelemetry(
        layers=snapshots.list_layers(session, job_id=job_id),
        snapshots=stats,
        series=series.query_series(session, job_id=job_id, max_points=max_points),
    )


def _validated(item: Any) -> Finding:
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        item = dataclasses.asdict(item)
    elif isinstance(item, BaseModel):
        item = item.model_dump()
    if not isinstance(item, Mapping):
        raise InvalidInput("findings", f"cannot store a {type(item).__name__}")
    try:
        return Finding.model_validate(item)
    except ValidationError as error:
        raise InvalidInput("findings", str(error).splitlines()[0]) from None


def _row(job_id: str, finding: Finding, final: bool, now: datetime) -> dict[str, Any]:
    return {
        "id": orm.new_id(), "job_id": job_id, "code": finding.code,
        "severity": finding.severity, "title": finding.title, "detail": finding.detail,
        "layer": finding.layer, "step": finding.step, "evidence": json_safe(finding.evidence),
        "suggestion": finding.suggestion, "remedy": json_safe(finding.remedy),
        "final": final, "created_at": now, "onset_step": finding.onset_step,
        "caused_by": finding.caused_by,
    }


def _to_finding(row: orm.Finding) -> Finding:
    return Finding.model_validate({
        "code": row.code, "severity": row.severity, "title": row.title, "detail": row.detail,
        "layer": row.layer, "step": row.step, "evidence": row.evidence,
        "suggestion": row.suggestion, "remedy": row.remedy, "onset_step": row.onset_step,
        "caused_by": row.caused_by,
    })


def _order(finding: Finding) -> tuple[int, float, int, str]:
    """As diagnosis.engine orders them: root causes by severity, then the symptoms by onset."""
    codes = FINDING_CODES
    known = codes.index(finding.code) if finding.code in codes else len(codes)
    if finding.caused_by is None:
        return 0, _SEVERITY_ORDER.get(finding.severity, 3), known, finding.layer or ""
    onset = finding.onset_step if finding.onset_step is not None else float("inf")
    return 1, onset, known, finding.layer or ""
