"""Studies: create one with all its jobs in one transaction, read, list and cancel them.

A study's jobs are ordinary jobs with jobs.study_id set; the study row keeps which variant and
seed each job runs, so a comparison groups jobs without re-reading their specs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from gradlab_contract.models import JobStatus, Study, StudyPage
from gradlab_contract.spec import JobSpec
from sqlalchemy import ColumnElement, func, select, tuple_
from sqlalchemy.orm import Session

from store import events, orm
from store._codec import check_limit, decode_cursor, encode_cursor, json_safe
from store._sql import cancel_jobs, find_replay, insert_once
from store.errors import NotFound
from store.jobs import _parse_time, reserve_queued

MAX_PAGE = 200


@dataclass(frozen=True)
class NewRun:
    variant: int
    seed: int
    spec: JobSpec
    total_steps: int


class CreatedStudy(NamedTuple):
    study: Study
    job_ids: list[str]  # to publish; empty for a replay, whose jobs were published before
    created: bool  # False: an earlier request with the same idempotency key made it


@dataclass(frozen=True)
class StudyRow:
    """What a comparison needs of a study: its varied paths, variants and runs."""

    id: str
    varied: list[str]
    variants: list[dict[str, Any]]
    runs: list[dict[str, Any]]


def create_study(
    session: Session, *, team_id: str, name: str | None, template: str | None,
    request: dict[str, Any], varied: list[str], variants: list[dict[str, Any]],
    runs: list[NewRun], max_queued: int | None = None, idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> CreatedStudy:
    """Add the study and its queued jobs (the caller commits, then publishes the job ids), or
    return the study an earlier request with the same idempotency key made, as jobs do
    (store.jobs.create_job): another request_hash with that key raises Conflict, and of two
    racing requests with one key the unique (team_id, idempotency_key) makes one study.

    Study jobs are not counted in the team's queue quota for single jobs (a study would use it
    up); instead max_queued bounds the team's queued study jobs, old and new together. A replay
    is never refused by it."""
    if idempotency_key is not None:
        existing = find_replay(session, orm.Study, team_id=team_id, key=idempotency_key,
                               request_hash=request_hash)
        if existing is not None:
            return _replayed(session, existing)
    if max_queued is not None:
        reserve_queued(session, team_id=team_id, max_queued=max_queued, adding=len(runs),
                       studies=True)
    study = orm.Study(team_id=team_id, name=name, template=template, request=json_safe(request),
                      varied=varied, variants=json_safe(variants), runs=[],
                      idempotency_key=idempotency_key, request_hash=request_hash)
    stored = insert_once(session, study)
    if stored is not study:
        return _replayed(session, stored)
    jobs = [orm.Job(team_id=team_id, name=run.spec.name or name, study_id=study.id,
                    spec=json_safe(run.spec.model_dump(mode="json")),
                    total_steps=run.total_steps) for run in runs]
    session.add_all(jobs)
    session.flush()
    study.runs = [{"job_id": job.id, "variant": run.variant, "seed": run.seed}
                  for job, run in zip(jobs, runs, strict=True)]
    session.flush()
    for job in jobs:
        events.status_changed(session, job_id=job.id)
    return CreatedStudy(_to_study(study, {JobStatus.QUEUED: len(jobs)}),
                        [job.id for job in jobs], True)


def replayed_study(
    session: Session, *, team_id: str, idempotency_key: str, request_hash: str | None
) -> CreatedStudy | None:
    """The study made with this key, Conflict when another request made it, or None (looked up
    before the study is expanded and checked, so a replay is never refused by the caps)."""
    row = find_replay(session, orm.Study, team_id=team_id, key=idempotency_key,
                      request_hash=request_hash)
    return None if row is None else _replayed(session, row)


def _replayed(session: Session, row: orm.Study) -> CreatedStudy:
    """An earlier request's study: its jobs were published by that request."""
    return CreatedStudy(_to_study(row, _counts(session, [row.id])[row.id]), [], False)


def _to_study(row: orm.Study, counts: dict[str, int]) -> Study:
    return Study(id=row.id, name=row.name, template=row.template, varied=row.varied,
                 variants=len(row.variants), jobs=len(row.runs), counts=counts,
                 created_at=row.created_at)


def _team_row(session: Session, team_id: str, study_id: str) -> orm.Study:
    query = select(orm.Study).where(orm.Study.id == study_id, orm.Study.team_id == team_id)
    row = session.scalars(query).one_or_none()
    if row is None:  # another team's study too, so ids cannot be probed
        raise NotFound(f"study {study_id} not found", field="study_id")
    return row


def _counts(session: Session, study_ids: list[str]) -> dict[str, dict[str, int]]:
    query = (select(orm.Job.study_id, orm.Job.status, func.count())
             .where(orm.Job.study_id.in_(study_ids)).group_by(orm.Job.study_id, orm.Job.status))
    counts: dict[str, dict[str, int]] = {study_id: {} for study_id in study_ids}
    for study_id, status, count in session.execute(query):
        counts[str(study_id)][status] = count
    return counts


def get_study(session: Session, *, team_id: str, study_id: str) -> Study:
    row = _team_row(session, team_id, study_id)
    return _to_study(row, _counts(session, [row.id])[row.id])


def study_row(session: Session, *, team_id: str, study_id: str) -> StudyRow:
    row = _team_row(session, team_id, study_id)
    return StudyRow(row.id, list(row.varied), list(row.variants), list(row.runs))


def list_studies(
    session: Session, *, team_id: str, limit: int = 50, cursor: str | None = None
) -> StudyPage:
    """The team's studies, newest first; pass next_cursor for the next page."""
    check_limit(limit, MAX_PAGE)
    conditions: list[ColumnElement[bool]] = [orm.Study.team_id == team_id]
    if cursor is not None:
        created_at, study_id = decode_cursor(cursor, (str, str))
        key = tuple_(orm.Study.created_at, orm.Study.id)
        conditions.append(key < tuple_(_parse_time(created_at), study_id))
    query = (select(orm.Study).where(*conditions)
             .order_by(orm.Study.created_at.desc(), orm.Study.id.desc()).limit(limit + 1))
    rows = list(session.scalars(query))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at.isoformat(), rows[-1].id)
    counts = _counts(session, [row.id for row in rows])
    return StudyPage(items=[_to_study(row, counts[row.id]) for row in rows],
                     next_cursor=next_cursor)


def cancel_study(session: Session, *, team_id: str, study_id: str) -> Study:
    """Cancel the queued jobs now and flag the running ones (their workers stop them)."""
    row = _team_row(session, team_id, study_id)
    cancel_jobs(session, orm.Job.study_id == row.id, orm.Job.team_id == team_id)
    return _to_study(row, _counts(session, [row.id])[row.id])
