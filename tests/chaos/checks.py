"""Assertions the chaos tests share: how a recovered job must look in the database."""

from __future__ import annotations

from typing import Any

from tests.chaos.reference import Comparison, compare, reference
from tests.chaos.stack import ChaosStack

RECOVERY_BOUND = 30.0  # seconds from a fault to the job's next attempt running (the bound)
FAST_RECOVERY_BOUND = 15.0  # the same, where the worker's main process saw its pool process die


class RowsLost(AssertionError):
    """The job's stored rows differ from an unbroken run's. Carries how many metric and
    snapshot rows are missing, so that the report prints the number even as the test fails
    (tests/chaos/conftest.py adds the row)."""

    def __init__(self, comparison: Comparison) -> None:
        super().__init__(str(comparison))
        self.lost = len(comparison.lost) + comparison.snapshots_lost


def rows_by_attempt(stack: ChaosStack, job_id: str) -> dict[int, tuple[int, int]]:
    """attempt -> (lowest step, highest step) of the metric rows it wrote."""
    spans: dict[int, tuple[int, int]] = {}
    for _name, step, _value, attempt in stack.metric_rows(job_id):
        low, high = spans.get(attempt, (step, step))
        spans[attempt] = (min(low, step), max(high, step))
    return spans


def assert_equals_unbroken_run(
    stack: ChaosStack, job_id: str, spec: dict[str, Any], timeout: float = 180
) -> tuple[dict[str, Any], int]:
    """The job succeeded and stored exactly the rows (one per metric and step, same values),
    snapshots and summary of `spec` trained without faults; returns its row and the rows lost.
    Rows lost, doubled or differing raise RowsLost, whose count the report keeps."""
    done = stack.wait_done(job_id, timeout)
    assert done["status"] == "succeeded", done
    expected = reference(spec)
    comparison = compare(expected, stack.metric_rows(job_id), stack.snapshot_rows(job_id))
    if not comparison.clean:
        raise RowsLost(comparison)
    assert done["summary"] == expected.summary
    return done, len(comparison.lost)


def assert_resumed_exactly(
    stack: ChaosStack, job_id: str, spec: dict[str, Any], resumed_after: int
) -> int:
    """As assert_equals_unbroken_run, and the last attempt wrote exactly the steps after the
    checkpoint it resumed from, while nothing of the first attempt past it remains."""
    done, lost = assert_equals_unbroken_run(stack, job_id, spec)
    spans = rows_by_attempt(stack, job_id)
    assert spans[1][1] <= resumed_after, spans
    assert spans[done["attempt"]][0] == resumed_after + 1, spans
    return lost
