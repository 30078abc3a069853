"""The live part of the API contract: stream events, job log lines, webhooks and deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gradlab_contract.models import Progress

WebhookEvent = Literal["job.finished", "job.finding", "study.finished"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Event(_Model):
    """One event of a job's or a study's stream. `id` orders them (None for one that the SDK
    made up while polling, and for `end`); `data` is typed by `type` in the subclasses."""

    id: int | None = None
    type: str  # a newer service may add types: they arrive as this class
    job_id: str | None = None
    study_id: str | None = None
    at: datetime | None = None
    data: Any = None

    @property
    def is_end(self) -> bool:
        return self.type == "end"


class StatusData(_Model):
    status: str  # a JobStatus
    attempt: int = 0
    progress: Progress | None = None
    error: str | None = None
    stop_reason: str | None = None
    stopped_early: bool = False
    best_step: int | None = None
    summary: dict[str, float | None] | None = None  # an ending's final_* and best_* metrics


class StatusEvent(Event):
    type: Literal["status"]
    data: StatusData


class ProgressData(_Model):
    step: int
    total_steps: int


class ProgressEvent(Event):
    type: Literal["progress"]
    data: ProgressData


class MetricPoint(_Model):
    step: int
    value: float | None  # None: not finite


class MetricsData(_Model):
    step: int  # the latest step among the points
    points: dict[str, MetricPoint]  # train_loss, val_accuracy, ...: each one's latest value


class MetricsEvent(Event):
    type: Literal["metrics"]
    data: MetricsData


class FindingBrief(_Model):
    code: str
    severity: str
    title: str
    layer: str | None = None
    step: int | None = None


class FindingsData(_Model):
    final: bool
    new: list[str]  # codes not found before
    findings: list[FindingBrief]


class FindingsEvent(Event):
    type: Literal["findings"]
    data: FindingsData


class StudyEvent(Event):
    """A study's last job ended; `data` counts its jobs by status."""

    type: Literal["study"]
    data: dict[str, Any]


class EndEvent(Event):
    """The last event of a stream: the job's (or study's) ending, repeated."""

    type: Literal["end"]
    data: dict[str, Any] = Field(default_factory=dict)


EVENT_TYPES: dict[str, type[Event]] = {
    "status": StatusEvent, "progress": ProgressEvent, "metrics": MetricsEvent,
    "findings": FindingsEvent, "study": StudyEvent, "end": EndEvent,
}


def parse_event(payload: dict[str, Any]) -> Event:
    """The typed event of a stream's JSON payload (an unknown type: a plain Event)."""
    model = EVENT_TYPES.get(str(payload.get("type")), Event)
    return model.model_validate(payload)


class JobLogLine(_Model):
    id: int
    attempt: int | None = None
    level: str
    message: str
    at: datetime


class JobLogPage(_Model):
    lines: list[JobLogLine]
    next_after: int  # pass as `after` to get the lines that follow
    truncated: bool = False  # the per-job cap dropped lines


class WebhookCreate(BaseModel):
    """POST /v1/webhooks."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str = Field(min_length=8, max_length=2000, description="http(s) URL to POST to")
    events: list[WebhookEvent] = Field(min_length=1, max_length=3)


class Webhook(_Model):
    id: str
    url: str
    events: list[str]
    created_at: datetime
    # whsec_...: shown once, when the hook is made. Verify deliveries with it (Standard
    # Webhooks: webhook-id, webhook-timestamp and webhook-signature headers).
    secret: str | None = None


class WebhookDelivery(_Model):
    id: str
    webhook_id: str
    event_id: int
    type: str
    status: Literal["pending", "succeeded", "failed"] | str
    attempts: int
    response_status: int | None = None
    error: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    delivered_at: datetime | None = None
