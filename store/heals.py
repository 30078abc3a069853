"""Heal: rounds of diagnose -> remedy -> train, run by the service until a job is healthy.

A heal belongs to one job (unique: asking again returns the same heal). Round 0 is that job;
each later round is a remedy job made from the previous round's root causes (the findings no
other explains: their remedies are the diagnosis.remedy table's). `advance` is called whenever
a round's job has ended (by the worker as the job ends, by the service when a heal is read, so a
lost call is made up) and does one step under the heal's row lock:

- the job is healthy (it succeeded with no warning or error finding but not_converged, which
  says only "train longer"): the heal is `healed`;
- it was cancelled, or the heal was: `cancelled`;
- `max_rounds` remedy jobs ran already: `exhausted`;
- no root cause has a remedy, or the remedies change nothing: `failed`, with the reason;
- otherwise the next round's job is created (idempotency key heal:<id>:<round>, within the
  team's queued quota) and returned for the caller to publish after the commit.

A round's spec never trains longer or builds a larger model than the job healed (remedies of
training.steps/epochs are left out; the others change init, activation, learning rate, clipping,
normalization and regularization), so it stays within the limits that job passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from gradlab_contract.models import TERMINAL_STATUSES, Finding, Heal, HealRound
from gradlab_contract.spec import JobSpec
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from store import findings, jobs, orm, remedies
from store.errors import NotFound, QuotaExceeded


def get_heal(session: Session, *, team_id: str, heal_id: str) -> Heal:
    row = session.scalars(select(orm.Heal).where(orm.Heal.id == heal_id,
                                                 orm.Heal.team_id == team_id)).one_or_none()
    if row is None:
        raise NotFound(f"heal {heal_id} not found", field="heal_id")
    return _to_heal(row)


def list_heals(session: Session, *, team_id: str, job_id: str | None = None, limit: int = 50
               ) -> list[Heal]:
    """The team's heals, newest first; with `job_id`, that job's (at most one)."""
    query = select(orm.Heal).where(orm.Heal.team_id == team_id)
    if job_id is not None:
        query = query.where(orm.Heal.job_id == job_id)
    query = query.order_by(orm.Heal.created_at.desc(), orm.Heal.id.desc()).limit(limit)
    return [_to_heal(row) for row in session.scalars(query)]


def heal_of_job(session: Session, *, team_id: str, job_id: str) -> Heal | None:
    row = session.scalars(select(orm.Heal).where(orm.Heal.job_id == job_id,
                                                 orm.Heal.team_id == team_id)).one_or_none()
    return None if row is None else _to_heal(row)


def start_heal(session: Session, *, team_id: str, job_id: str, max_rounds: int
               ) -> tuple[Heal, bool]:
    """The job's heal, made now (True) or the one made before (False). The caller advances it
    when the job has already ended."""
    jobs.get_job(session, team_id=team_id, job_id=job_id)  # NotFound for another team's job
    jobs.lock_team(session, team_id=team_id)  # two racing starts make one heal
    existing = heal_of_job(session, team_id=team_id, job_id=job_id)
    if existing is not None:
        return existing, False
    row = orm.Heal(team_id=team_id, job_id=job_id, max_rounds=max_rounds, status="running",
                   current_job_id=job_id, rounds=[{"round": 0, "job_id": job_id}],
                   training_steps=0)
    session.add(row)
    session.flush()
    return _to_heal(row), True


def heal_to_start(session: Session, *, job_id: str) -> tuple[str, int] | None:
    """(team id, max_rounds) when the ended job asked for a heal in its spec
    (diagnosis.heal) and is no heal's round yet."""
    row = session.get(orm.Job, job_id)
    if row is None:
        return None
    spec = JobSpec.model_validate(row.spec)
    if spec.diagnosis.heal is None:
        return None
    if session.scalar(select(orm.Heal.id).where(orm.Heal.current_job_id == job_id)):
        return None
    return row.team_id, spec.diagnosis.heal.max_rounds


def cancel_heal(session: Session, *, team_id: str, heal_id: str) -> Heal:
    """Stop a running heal and cancel its current job; a finished heal is left as it is."""
    row = _locked(session, team_id, heal_id)
    if row.status == "running":
        row.status, row.reason, row.finished_at = "cancelled", "cancelled by request", orm.utcnow()
        jobs.request_cancel(session, team_id=team_id, job_id=row.current_job_id)
        session.flush()
    return _to_heal(row)


class Planner(Protocol):
    """The diagnosis' side of a round (diagnosis.remedy: alarms, healthy, next_round), handed
    in by the caller: the store does not import the diagnosis."""

    def alarms(self, findings: Sequence[Finding]) -> set[str]: ...

    def healthy(self, status: str, findings: Sequence[Finding]) -> bool: ...

    def next_round(self, spec: dict[str, Any], findings: Sequence[Finding]) -> Any: ...


def advance(session: Session, *, heal_id: str, max_queued: int | None,
            planner: Planner) -> list[str]:
    """One step of the heal whose current job has ended (see the module's opening comment);
    the ids of the jobs to publish once the transaction commits."""
    row = session.scalars(select(orm.Heal).where(orm.Heal.id == heal_id)
                          .with_for_update()).one_or_none()
    if row is None or row.status != "running":
        return []
    job = session.get(orm.Job, row.current_job_id)
    if job is None or job.status not in TERMINAL_STATUSES:
        return []
    found = _final_findings(session, job.id)
    rounds = [dict(r) for r in row.rounds]
    rounds[-1].update(_observed(session, job, found, planner))
    row.rounds = rounds
    verdict = _end_of(row, job, found, planner)
    if verdict is not None:
        row.status, row.reason = verdict
        row.finished_at = orm.utcnow()
        row.healthy_job_id = job.id if row.status == "healed" else None
        session.flush()
        return []
    return _next_round(session, row, job, found, max_queued, planner)


def running_heals_of(session: Session, *, job_id: str) -> list[str]:
    """The running heals whose current round is this job."""
    query = select(orm.Heal.id).where(orm.Heal.current_job_id == job_id,
                                      orm.Heal.status == "running")
    return list(session.scalars(query))


def _end_of(row: orm.Heal, job: orm.Job, found: Sequence[Finding], planner: Planner
            ) -> tuple[str, str] | None:
    alarms = planner.alarms
    if planner.healthy(job.status, found):
        return "healed", f"job {job.id} succeeded with no warning or error"
    if job.status == "cancelled":
        return "cancelled", f"job {job.id} was cancelled"
    if len(row.rounds) - 1 >= row.max_rounds:
        return "exhausted", (f"{row.max_rounds} remedy round(s) ran and job {job.id} still has "
                             f"{', '.join(sorted(alarms(found))) or 'no result'}")
    return None


def _next_round(session: Session, row: orm.Heal, job: orm.Job, found: Sequence[Finding],
                max_queued: int | None, planner: Planner) -> list[str]:
    alarms = planner.alarms
    planned = planner.next_round(job.spec, found)
    spec = _valid({**planned.spec, "diagnosis": {"heal": None}}) if planned else None
    if planned is None or spec is None:
        return _stop(session, row, "failed", f"no remedy applies to job {job.id}'s findings "
                     f"({', '.join(sorted(alarms(found))) or 'none'})")
    number = len(row.rounds)
    try:
        created = jobs.create_job(
            session, team_id=row.team_id, spec=spec, total_steps=job.total_steps,
            idempotency_key=f"heal:{row.id}:{number}", request_hash=None,
            max_queued=max_queued, parent_id=job.id)
    except QuotaExceeded as error:
        return _stop(session, row, "failed", f"round {number} could not be queued: {error}")
    remedies.record_remedy(session, parent_id=job.id, child_id=created.job.id,
                           codes=planned.codes)
    row.rounds = [*row.rounds, {"round": number, "job_id": created.job.id,
                                "changes": planned.changes, "remedied": planned.codes}]
    row.current_job_id = created.job.id
    row.training_steps = row.training_steps + job.total_steps
    session.flush()
    return [created.job.id] if created.created else []


def _valid(spec: dict[str, Any]) -> JobSpec | None:
    try:
        return JobSpec.model_validate(spec)
    except ValidationError:
        return None


def _stop(session: Session, row: orm.Heal, status: str, reason: str) -> list[str]:
    row.status, row.reason, row.finished_at = status, reason, orm.utcnow()
    session.flush()
    return []


def _observed(session: Session, job: orm.Job, found: Sequence[Finding], planner: Planner
              ) -> dict[str, Any]:
    """What a round's job showed, for its entry in `rounds`; a remedy round's outcome is
    settled here (against the previous round) if the worker has not settled it yet."""
    remedies.settle(session, child_id=job.id, findings=found)
    remedy = session.get(orm.Remedy, job.id)
    observed: dict[str, Any] = {
        "status": job.status, "findings": sorted(planner.alarms(found)),
        "causes": [f.code for f in found if f.caused_by is None and f.severity != "info"],
        "best_val_loss": (job.summary or {}).get("best_val_loss"),
    }
    if remedy is not None:
        observed["outcome"] = remedy.outcome
    return observed


def _final_findings(session: Session, job_id: str) -> list[Finding]:
    return findings.list_findings(session, job_id=job_id)


def _locked(session: Session, team_id: str, heal_id: str) -> orm.Heal:
    row = session.scalars(select(orm.Heal).where(orm.Heal.id == heal_id,
                                                 orm.Heal.team_id == team_id)
                          .with_for_update()).one_or_none()
    if row is None:
        raise NotFound(f"heal {heal_id} not found", field="heal_id")
    return row


def _to_heal(row: orm.Heal) -> Heal:
    return Heal(
        id=row.id, job_id=row.job_id, status=row.status,
        max_rounds=row.max_rounds, current_job_id=row.current_job_id,
        healthy_job_id=row.healthy_job_id, reason=row.reason,
        rounds=[HealRound.model_validate(r) for r in row.rounds],
        training_steps=row.training_steps, created_at=row.created_at,
        finished_at=row.finished_at)
