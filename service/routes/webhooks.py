"""/v1/webhooks: be told when a job ends, a job's diagnosis finds something, a study ends."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Path, Response
from gradlab_contract.live import Webhook, WebhookCreate, WebhookDelivery

from service.deps import CurrentTeam, ServicesDep
from service.errors import InvalidSpec
from service.http.problems import problem_doc
from store import webhooks
from store.errors import QuotaExceeded
from store.webhooks import WebhookRecord

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"],
                   responses=problem_doc(401, 422, 503))


def team_webhook(
    webhook_id: Annotated[str, Path(description="The webhook's id.")],
    team: CurrentTeam, services: ServicesDep,
) -> WebhookRecord:
    with services.db.read() as session:
        return webhooks.get_webhook(session, team_id=team.id, webhook_id=webhook_id)


WebhookDep = Annotated[WebhookRecord, Depends(team_webhook)]


def _out(record: WebhookRecord) -> Webhook:
    return Webhook(id=record.id, url=record.url, events=record.events,
                   created_at=record.created_at, secret=record.secret)


@router.post("", status_code=201, summary="Register a webhook", responses=problem_doc(429))
def create_webhook(body: WebhookCreate, team: CurrentTeam, services: ServicesDep) -> Webhook:
    """POST a signed JSON body to `url` on each of `events`: `job.finished` (a job ended, with
    its status and reason), `job.finding` (its diagnosis found something new), `study.finished`.
    The answer's `secret` (shown only now) verifies deliveries the Standard Webhooks way:
    HMAC-SHA256 over `webhook-id.webhook-timestamp.body` in the `webhook-signature` header.
    Deliveries are retried with backoff and never sent to private or loopback addresses."""
    parts = urlsplit(body.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidSpec("must be an http:// or https:// URL with a host", field="url")
    with services.db.transaction() as session:
        if webhooks.count_webhooks(session, team_id=team.id) >= \
                services.settings.max_webhooks_per_team:
            raise QuotaExceeded(
                f"a team may have {services.settings.max_webhooks_per_team} webhooks")
        record = webhooks.create_webhook(session, team_id=team.id, url=body.url,
                                         events=list(body.events))
    return _out(record)


@router.get("", summary="List the team's webhooks")
def list_webhooks(team: CurrentTeam, services: ServicesDep) -> list[Webhook]:
    """The team's webhooks, oldest first (their secrets are shown only when made)."""
    with services.db.read() as session:
        return [_out(record) for record in webhooks.list_webhooks(session, team_id=team.id)]


@router.get("/{webhook_id}/deliveries", summary="A webhook's deliveries",
            responses=problem_doc(404))
def list_deliveries(hook: WebhookDep, team: CurrentTeam,
                    services: ServicesDep) -> list[WebhookDelivery]:
    """The latest 100 deliveries, newest first: pending, succeeded or failed, with the number of
    attempts and the receiver's last status."""
    with services.db.read() as session:
        found = webhooks.list_deliveries(session, team_id=team.id, webhook_id=hook.id)
    return [WebhookDelivery(id=d.id, webhook_id=d.webhook_id, event_id=d.event_id, type=d.type,
                            status=d.status, attempts=d.attempts,
                            response_status=d.response_status, error=d.error, payload=d.payload,
                            created_at=d.created_at, delivered_at=d.delivered_at)
            for d in found]


@router.delete("/{webhook_id}", status_code=204, summary="Delete a webhook",
               responses=problem_doc(404))
def delete_webhook(hook: WebhookDep, team: CurrentTeam, services: ServicesDep) -> Response:
    """Stop sending to this webhook; its pending deliveries are dropped with it."""
    with services.db.transaction() as session:
        webhooks.delete_webhook(session, team_id=team.id, webhook_id=hook.id)
    return Response(status_code=204)
