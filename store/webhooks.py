"""Webhooks: a team's hooks, and the outbox of deliveries made with the events they match.

A delivery row is written in the transaction of the event it carries (events.append), so an
event that happened is delivered even if every process dies right after; a worker-side
dispatcher (worker/webhooks.py) claims due rows, sends, and records the outcome here.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gradlab_contract.models import TERMINAL_STATUSES
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from store import orm
from store.errors import NotFound

WEBHOOK_EVENTS = ("job.finished", "job.finding", "study.finished")
MAX_HOOKS_PER_TEAM = 20
CLAIM_SECONDS = 120  # a claimed delivery is claimable again after this (its sender died)


@dataclass(frozen=True)
class WebhookRecord:
    id: str
    url: str
    events: list[str]
    created_at: datetime
    secret: str | None = None  # shown once, when created


@dataclass(frozen=True)
class DeliveryRecord:
    id: str
    webhook_id: str
    event_id: int
    type: str
    payload: dict[str, Any]
    status: str
    attempts: int
    response_status: int | None
    error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class DueDelivery:
    id: str
    url: str
    secret: str
    payload: dict[str, Any]


def new_secret() -> str:
    """A Standard Webhooks secret: whsec_ and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def create_webhook(
    session: Session, *, team_id: str, url: str, events: list[str]
) -> WebhookRecord:
    row = orm.Webhook(team_id=team_id, url=url, events=sorted(set(events)), secret=new_secret())
    session.add(row)
    session.flush()
    return WebhookRecord(row.id, row.url, list(row.events), row.created_at, row.secret)


def count_webhooks(session: Session, *, team_id: str) -> int:
    return len(session.scalars(select(orm.Webhook.id).where(orm.Webhook.team_id == team_id)).all())


def list_webhooks(session: Session, *, team_id: str) -> list[WebhookRecord]:
    rows = session.scalars(select(orm.Webhook).where(orm.Webhook.team_id == team_id)
                           .order_by(orm.Webhook.created_at, orm.Webhook.id))
    return [WebhookRecord(row.id, row.url, list(row.events), row.created_at) for row in rows]


def get_webhook(session: Session, *, team_id: str, webhook_id: str) -> WebhookRecord:
    row = session.get(orm.Webhook, webhook_id)
    if row is None or row.team_id != team_id:
        raise NotFound(f"webhook {webhook_id} not found")
    return WebhookRecord(row.id, row.url, list(row.events), row.created_at)


def delete_webhook(session: Session, *, team_id: str, webhook_id: str) -> None:
    get_webhook(session, team_id=team_id, webhook_id=webhook_id)
    session.execute(delete(orm.Webhook).where(orm.Webhook.id == webhook_id))


def list_deliveries(
    session: Session, *, team_id: str, webhook_id: str, limit: int = 100
) -> list[DeliveryRecord]:
    get_webhook(session, team_id=team_id, webhook_id=webhook_id)
    rows = session.scalars(
        select(orm.WebhookDelivery).where(orm.WebhookDelivery.webhook_id == webhook_id)
        .order_by(orm.WebhookDelivery.created_at.desc(), orm.WebhookDelivery.id).limit(limit))
    return [DeliveryRecord(row.id, row.webhook_id, row.event_id, row.type, dict(row.payload),
                           row.status, row.attempts, row.response_status, row.error,
                           row.created_at, row.delivered_at) for row in rows]


def webhook_type(event: orm.Event) -> str | None:
    """The webhook event an event is, if any."""
    if event.type == "status" and event.data.get("status") in TERMINAL_STATUSES:
        return "job.finished"
    if event.type == "findings" and event.data.get("new"):
        return "job.finding"
    if event.type == "study":
        return "study.finished"
    return None


def enqueue_deliveries(session: Session, *, event: orm.Event) -> None:
    """One pending delivery per hook of the event's team that asked for its type."""
    kind = webhook_type(event)
    if kind is None:
        return
    hooks = session.scalars(select(orm.Webhook).where(orm.Webhook.team_id == event.team_id))
    payload = {
        "type": kind,
        "timestamp": event.created_at.isoformat(),
        "data": {"event_id": event.id, "job_id": event.job_id, "study_id": event.study_id,
                 **event.data},
    }
    for hook in hooks:
        if kind in hook.events:
            session.add(orm.WebhookDelivery(webhook_id=hook.id, event_id=event.id, type=kind,
                                            payload=payload))
    session.flush()


def claim_due(
    session: Session, *, now: datetime | None = None, limit: int = 10
) -> list[DueDelivery]:
    """Take up to `limit` pending deliveries that are due; they are not due again for
    CLAIM_SECONDS, so a sender that dies leaves them to another."""
    now = now or orm.utcnow()
    query = (
        select(orm.WebhookDelivery.id).where(orm.WebhookDelivery.status == "pending",
                                             orm.WebhookDelivery.next_attempt_at <= now)
        .order_by(orm.WebhookDelivery.next_attempt_at).limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(session.scalars(query))
    if not ids:
        return []
    session.execute(update(orm.WebhookDelivery).where(orm.WebhookDelivery.id.in_(ids))
                    .values(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
                    .execution_options(synchronize_session=False))
    rows = session.execute(
        select(orm.WebhookDelivery.id, orm.Webhook.url, orm.Webhook.secret,
               orm.WebhookDelivery.payload)
        .join(orm.Webhook, orm.Webhook.id == orm.WebhookDelivery.webhook_id)
        .where(orm.WebhookDelivery.id.in_(ids)))
    return [DueDelivery(row.id, row.url, row.secret, dict(row.payload)) for row in rows]


def record_outcome(
    session: Session, *, delivery_id: str, delivered: bool, attempts: int,
    response_status: int | None, error: str | None, now: datetime | None = None,
) -> None:
    now = now or orm.utcnow()
    row = session.get(orm.WebhookDelivery, delivery_id)
    if row is None:
        return  # the hook was deleted meanwhile
    row.status = "succeeded" if delivered else "failed"
    row.attempts += attempts
    row.response_status, row.error = response_status, error
    row.delivered_at = now if delivered else None
    session.flush()
