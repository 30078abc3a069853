"""The live part of the API contract: stream events, job log lines, webhooks and deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EventType = Literal["status", "progress", "metrics", "findings", "study", "end"]
WebhookEvent = Literal["job.finished", "job.finding", "study.finished"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Event(_Model):
    """One server-sent event of a job or a study stream (`data` by type: see the route)."""

    id: int | None = None  # None for `end`, which is not stored
    type: EventType | str  # a newer service may add types
    job_id: str | None = None
    study_id: str | None = None
    at: datetime | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def is_end(self) -> bool:
        return self.type == "end"


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
