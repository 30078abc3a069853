"""gradlab's Python SDK: the job spec contract, the HTTP client, its errors, and the CLI.

    from gradlab_client import Client, JobSpec

Everything public is listed in `__all__` (a test holds it to an explicit list); modules whose
name starts with an underscore are not part of the API. The spec and the models are the
contract's (`gradlab_contract`, installed with the SDK), re-exported here; the server side
imports them from there, never from the SDK.
"""

from gradlab_contract.models import (
    TERMINAL_STATUSES,
    Catalog,
    CatalogValue,
    DatasetInfo,
    Diagnosis,
    Finding,
    Heal,
    HealRound,
    Histogram,
    Job,
    JobStatus,
    Layer,
    MetricSeries,
    Problem,
    Progress,
    RemedyOutcome,
    Snapshot,
    Study,
    StudyComparison,
    StudyCreate,
    StudyTemplate,
)
from gradlab_contract.spec import (
    AugmentSpec,
    ConvLayerSpec,
    DataSpec,
    FieldError,
    InitSpec,
    JobSpec,
    ModelSpec,
    OptimizerSpec,
    RegularizationSpec,
    ScheduleSpec,
    TelemetrySpec,
    TrainingSpec,
    describe_errors,
)

from gradlab_client.client import Client, __version__
from gradlab_client.errors import (
    APIError,
    Conflict,
    GradlabError,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    Timeout,
    TransportError,
    Unauthorized,
    ValidationError,
)
from gradlab_client.results import MetricsResult, SnapshotIterator

__all__ = [
    "TERMINAL_STATUSES",
    "APIError",
    "AugmentSpec",
    "Catalog",
    "CatalogValue",
    "Client",
    "Conflict",
    "ConvLayerSpec",
    "DataSpec",
    "DatasetInfo",
    "Diagnosis",
    "FieldError",
    "Finding",
    "GradlabError",
    "Heal",
    "HealRound",
    "Histogram",
    "InitSpec",
    "Job",
    "JobSpec",
    "JobStatus",
    "Layer",
    "MetricSeries",
    "MetricsResult",
    "ModelSpec",
    "NotFound",
    "OptimizerSpec",
    "Problem",
    "Progress",
    "RateLimited",
    "RegularizationSpec",
    "RemedyOutcome",
    "ScheduleSpec",
    "ServiceUnavailable",
    "Snapshot",
    "SnapshotIterator",
    "Study",
    "StudyComparison",
    "StudyCreate",
    "StudyTemplate",
    "TelemetrySpec",
    "Timeout",
    "TrainingSpec",
    "TransportError",
    "Unauthorized",
    "ValidationError",
    "__version__",
    "describe_errors",
]
