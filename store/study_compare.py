"""A study's comparison: one row per variant, its seeds' summaries reduced to mean and spread.

Read-only; the numbers come from the jobs' summaries (final_* and best_*), the metric series
(the first step a series reaches a target) and the findings (diagnosis codes).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

from gradlab_contract.models import COMPARE_METRICS, ComparisonRow, Stat, StudyComparison
from sqlalchemy import select
from sqlalchemy.orm import Session

from store import orm, series
from store.studies import StudyRow

Order = Literal["asc", "desc"]


def stat(values: Sequence[float]) -> Stat | None:
    if not values:
        return None
    mean = sum(values) / len(values)
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return Stat(mean=mean, std=spread, n=len(values))


def compare(
    session: Session, study: StudyRow, *, target: tuple[str, float] | None = None,
    sort: str | None = None, order: Order = "asc",
) -> StudyComparison:
    job_ids = [run["job_id"] for run in study.runs]
    jobs = {row.id: row for row in session.scalars(select(orm.Job).where(orm.Job.id.in_(job_ids)))}
    codes = _codes(session, job_ids)
    reached = _first_steps(session, job_ids, target) if target else {}
    rows = []
    for index, values in enumerate(study.variants):
        runs = [run for run in study.runs if run["variant"] == index]
        rows.append(_row(index, values, runs, jobs, codes, reached))
    described = f"{target[0]} {_op(target[0])} {target[1]:g}" if target else None
    return StudyComparison(study_id=study.id, varied=study.varied, target=described,
                           rows=sort_rows(rows, sort, order))


def _row(index: int, values: dict[str, Any], runs: list[dict[str, Any]],
         jobs: dict[str, orm.Job], codes: dict[str, set[str]],
         reached: dict[str, int]) -> ComparisonRow:
    mine = [jobs[run["job_id"]] for run in runs if run["job_id"] in jobs]
    metrics = {name: stat([float(v) for job in mine if (v := job.summary.get(name)) is not None])
               for name in COMPARE_METRICS}
    steps = [float(reached[job.id]) for job in mine if job.id in reached]
    return ComparisonRow(
        variant=index, values=values, seeds=[run["seed"] for run in runs],
        job_ids=[job.id for job in mine], statuses=dict(Counter(job.status for job in mine)),
        metrics=metrics, steps_to_target=stat(steps), reached_target=len(steps),
        codes=sorted(set().union(*(codes.get(job.id, set()) for job in mine))),
    )


def _codes(session: Session, job_ids: list[str]) -> dict[str, set[str]]:
    query = select(orm.Finding.job_id, orm.Finding.code).where(orm.Finding.job_id.in_(job_ids))
    found: dict[str, set[str]] = {}
    for job_id, code in session.execute(query):
        found.setdefault(job_id, set()).add(code)
    return found


def _op(metric: str) -> str:
    # Losses reach a target from above; accuracies and AUC from below.
    return "<=" if metric.endswith("loss") else ">="


def _first_steps(session: Session, job_ids: list[str], target: tuple[str, float]) -> dict[str, int]:
    metric, value = target
    return series.first_steps_reaching(
        session, job_ids=job_ids, name=metric, value=value, from_above=_op(metric) == "<="
    )


def sort_key(row: ComparisonRow, column: str) -> Any:
    """The value a column sorts by: a varied path, a metric (its mean), steps_to_target,
    reached_target or variant. None when the row has no value."""
    if column in row.values:
        value = row.values[column]
        return value if isinstance(value, int | float | str) else str(value)
    if column == "steps_to_target":
        return row.steps_to_target.mean if row.steps_to_target else None
    if column in ("variant", "reached_target"):
        return getattr(row, column)
    found = row.metrics.get(column)
    return found.mean if found else None


def sort_rows(rows: list[ComparisonRow], column: str | None, order: Order) -> list[ComparisonRow]:
    if column is None:
        return rows
    present = [row for row in rows if sort_key(row, column) is not None]
    missing = [row for row in rows if sort_key(row, column) is None]
    present.sort(key=lambda row: sort_key(row, column), reverse=order == "desc")
    return present + missing  # rows without a value last, in either order
