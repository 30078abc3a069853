"""gradlab's Python SDK: the job spec contract, the HTTP client, its errors, and the CLI.

    from gradlab_client import Client, JobSpec

Everything public is listed in `__all__` (a test holds it to an explicit list); modules whose
name starts with an underscore are not part of the API.

The HTTP client and its errors are imported on first use: the training core and the store
import the spec and models from here and must not load httpx with them.
"""

from typing import TYPE_CHECKING, Any

from gradlab_contract.live import (
    EndEvent,
    Event,
    FindingsEvent,
    JobLogLine,
    JobLogPage,
    MetricsEvent,
    ProgressEvent,
    StatusEvent,
    StudyEvent,
    Webhook,
    WebhookDelivery,
)
from gradlab_contract.models import (
    TERMINAL_STATUSES,
    Catalog,
    CatalogValue,
    DatasetInfo,
    Diagnosis,
    Finding,
    Histogram,
    Job,
    JobStatus,
    Layer,
    MetricSeries,
    Problem,
    Progress,
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
    EarlyStoppingSpec,
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

from gradlab_client.results import MetricsResult, SnapshotIterator

_LAZY = {
    "Client": "gradlab_client.client",
    "__version__": "gradlab_client.client",
    **dict.fromkeys(
        [
            "APIError",
            "Conflict",
            "GradlabError",
            "NotFound",
            "RateLimited",
            "ServiceUnavailable",
            "Timeout",
            "TransportError",
            "Unauthorized",
            "ValidationError",
        ],
        "gradlab_client.errors",
    ),
}

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gradlab_client' has no attribute {name!r}")


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
    "EarlyStoppingSpec",
    "EndEvent",
    "Event",
    "FieldError",
    "Finding",
    "FindingsEvent",
    "GradlabError",
    "Histogram",
    "InitSpec",
    "Job",
    "JobLogLine",
    "JobLogPage",
    "JobSpec",
    "JobStatus",
    "Layer",
    "MetricSeries",
    "MetricsEvent",
    "MetricsResult",
    "ModelSpec",
    "NotFound",
    "OptimizerSpec",
    "Problem",
    "Progress",
    "ProgressEvent",
    "RateLimited",
    "RegularizationSpec",
    "ScheduleSpec",
    "ServiceUnavailable",
    "Snapshot",
    "SnapshotIterator",
    "StatusEvent",
    "Study",
    "StudyComparison",
    "StudyCreate",
    "StudyEvent",
    "StudyTemplate",
    "TelemetrySpec",
    "Timeout",
    "TrainingSpec",
    "TransportError",
    "Unauthorized",
    "ValidationError",
    "Webhook",
    "WebhookDelivery",
    "__version__",
    "describe_errors",
]
