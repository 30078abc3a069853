"""gradlab's Python SDK: the job spec contract, and (soon) the HTTP client and CLI."""

from gradlab_client.spec import (
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

__all__ = [
    "AugmentSpec",
    "ConvLayerSpec",
    "DataSpec",
    "FieldError",
    "InitSpec",
    "JobSpec",
    "ModelSpec",
    "OptimizerSpec",
    "RegularizationSpec",
    "ScheduleSpec",
    "TelemetrySpec",
    "TrainingSpec",
    "describe_errors",
]
