"""gradlab's diagnosis: pure functions over a run's recorded statistics and metric series that
say what went wrong, show the evidence and propose a spec change.

    from diagnosis import RunRecord, diagnose
    for finding in diagnose(record):
        print(finding.severity, finding.code, finding.title)

No torch, database or web framework here (a test enforces it): the worker runs it live and at the
end of a job, the service on what the store holds. Every threshold is in diagnosis.thresholds.
"""

from diagnosis.builder import RecordBuilder
from diagnosis.engine import diagnose
from diagnosis.findings import CODES, Finding, Severity
from diagnosis.record import LayerRecord, RunRecord, Series, SnapshotRecord, metrics_of
from diagnosis.remedy import RemedyError, apply_remedies
from diagnosis.thresholds import DEFAULT, Thresholds

__all__ = [
    "CODES",
    "DEFAULT",
    "Finding",
    "LayerRecord",
    "RecordBuilder",
    "RemedyError",
    "RunRecord",
    "Series",
    "Severity",
    "SnapshotRecord",
    "Thresholds",
    "apply_remedies",
    "diagnose",
    "metrics_of",
]
