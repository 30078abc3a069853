"""Remedy jobs and what they prove: a job submitted with its parent's remedies (POST /remedy or a
heal round) is recorded with the codes it addresses; once it has ended, its outcome is settled
once, by one conditional UPDATE, as `cured` or `not_cured`, and shown on the parent's findings.

Cured means: the child ended without an error-level finding, and its best validation metric
clearly beats the parent's (best_val_loss lower by CURE_MARGIN of it; a parent without a finite
one, a diverged run, is beaten by any finite value). Anything else is not cured, with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gradlab_contract.models import TERMINAL_STATUSES, Finding, RemedyOutcome
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store import orm

CURE_MARGIN = 0.02  # 2% of the parent's best validation loss: more than seed-to-seed noise
METRIC = "best_val_loss"


@dataclass(frozen=True)
class Verdict:
    outcome: str  # cured | not_cured
    reason: str
    parent_value: float | None
    child_value: float | None


def record_remedy(session: Session, *, parent_id: str, child_id: str, codes: Sequence[str]) -> None:
    """Note that `child_id` was made from `parent_id`'s remedies of `codes` (in the transaction
    that creates the child, so a child never exists without it); a replay adds nothing."""
    if session.get(orm.Remedy, child_id) is None:
        session.add(orm.Remedy(child_id=child_id, parent_id=parent_id, codes=list(codes)))
        session.flush()


def outcomes_by_code(session: Session, *, parent_id: str) -> dict[str, list[RemedyOutcome]]:
    """The parent's remedy jobs, oldest first, under each code they addressed."""
    query = (select(orm.Remedy).where(orm.Remedy.parent_id == parent_id)
             .order_by(orm.Remedy.created_at, orm.Remedy.child_id))
    found: dict[str, list[RemedyOutcome]] = {}
    for row in session.scalars(query):
        outcome = RemedyOutcome(
            child_id=row.child_id, codes=list(row.codes), outcome=row.outcome,
            reason=row.reason, metric=row.metric, parent_value=row.parent_value,
            child_value=row.child_value, decided_at=row.decided_at)
        for code in row.codes:
            found.setdefault(code, []).append(outcome)
    return found


def pending_children(session: Session, *, parent_id: str) -> list[str]:
    query = select(orm.Remedy.child_id).where(orm.Remedy.parent_id == parent_id,
                                              orm.Remedy.outcome == "pending")
    return list(session.scalars(query))


def settle(session: Session, *, child_id: str, findings: Sequence[Finding]) -> Verdict | None:
    """Decide a pending remedy's outcome now that its child has ended (None: not a pending
    remedy job, or the child still runs). `findings` is the child's final diagnosis."""
    remedy = session.get(orm.Remedy, child_id)
    child = session.get(orm.Job, child_id)
    if remedy is None or remedy.outcome != "pending" or child is None:
        return None
    if child.status not in TERMINAL_STATUSES:
        return None
    parent = session.get(orm.Job, remedy.parent_id)
    verdict = judge(parent.summary if parent else {}, child.status, child.summary, findings)
    stmt = (update(orm.Remedy)
            .where(orm.Remedy.child_id == child_id, orm.Remedy.outcome == "pending")
            .values(outcome=verdict.outcome, reason=verdict.reason, metric=METRIC,
                    parent_value=verdict.parent_value, child_value=verdict.child_value,
                    decided_at=orm.utcnow())
            .execution_options(synchronize_session=False))
    session.execute(stmt)
    return verdict


def judge(parent_summary: Mapping[str, float | None], child_status: str,
          child_summary: Mapping[str, float | None], findings: Sequence[Finding]) -> Verdict:
    """cured or not_cured, with the numbers compared (see the module's opening comment)."""
    before, after = _finite(parent_summary.get(METRIC)), _finite(child_summary.get(METRIC))
    errors = sorted({f.code for f in findings if f.severity == "error"})
    if child_status != "succeeded":
        return Verdict("not_cured", f"the remedy job ended {child_status}", before, after)
    if errors:
        return Verdict("not_cured", f"the remedy job still has {', '.join(errors)}", before,
                       after)
    if after is None:
        return Verdict("not_cured", "the remedy job recorded no validation loss", before, after)
    if before is None:
        return Verdict("cured", f"best validation loss {after:.4g}, where the original had none "
                       "finite", before, after)
    if after < before * (1 - CURE_MARGIN):
        return Verdict("cured", f"best validation loss {after:.4g} against {before:.4g}", before,
                       after)
    return Verdict("not_cured", f"best validation loss {after:.4g} does not clearly beat "
                   f"{before:.4g}", before, after)


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None
