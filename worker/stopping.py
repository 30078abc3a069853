"""training.stop_on: stop a job as soon as the live diagnosis finds one of the listed codes at
error severity, instead of letting a diverged or stuck run burn its budget.

An observer beside the live diagnosis (worker/diagnose.py), reading the record it builds: it
diagnoses at every snapshot step (milliseconds; the live diagnosis throttles only its writes),
so the job stops within one snapshot interval of the evidence. The runner then ends the job as
failed with the finding as its reason (and the final diagnosis records the finding).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gradlab_contract.models import Layer, Snapshot

from diagnosis import Finding, RecordBuilder, diagnose

log = logging.getLogger(__name__)


class StopOnFindings:
    def __init__(
        self, codes: list[str], builder: RecordBuilder, *, total_steps: int,
        stop: Callable[[], None] = lambda: None,
    ) -> None:
        self._codes = frozenset(codes)
        self._builder = builder  # the live diagnosis' record, filled by its own observer calls
        self._total_steps = total_steps
        self.stop = stop  # set by the runner once the reporter exists
        self.finding: Finding | None = None

    @property
    def reason(self) -> str | None:
        if self.finding is None:
            return None
        return f"stop_on {self.finding.code} at step {self.finding.step}: {self.finding.title}"

    def on_layers(self, layers: list[Layer]) -> None:
        pass

    def on_metrics(self, step: int, metrics: dict[str, float]) -> None:
        pass

    def on_snapshots(self, step: int, snapshots: list[Snapshot]) -> None:
        if self.finding is not None:
            return
        found = diagnose(self._builder.record(total_steps=self._total_steps))
        for finding in found:
            if finding.code in self._codes and finding.severity == "error":
                self.finding = finding
                log.warning("stopping at step %d: %s", step, self.reason)
                self.stop()
                return
