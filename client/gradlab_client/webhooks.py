"""`client.webhooks`: be told (signed POSTs) when jobs end, find something, or studies end."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from gradlab_contract.live import Webhook, WebhookDelivery, WebhookEvent

from gradlab_client._http import HTTP

WebhookList = list[Webhook]
DeliveryList = list[WebhookDelivery]


class Webhooks:
    def __init__(self, http: HTTP) -> None:
        self._http = http

    def create(self, url: str, *, events: Sequence[WebhookEvent]) -> Webhook:
        """Register `url` for `events`; the returned `secret` (shown only now) verifies the
        deliveries' Standard Webhooks signatures. Not retried: a retry could make two hooks."""
        response = self._http.request("POST", "/v1/webhooks", retry=False,
                                      json={"url": url, "events": list(events)})
        return Webhook.model_validate_json(response.content)

    def list(self) -> WebhookList:
        response = self._http.request("GET", "/v1/webhooks", retry=True)
        return [Webhook.model_validate(item) for item in response.json()]

    def delete(self, webhook_id: str) -> None:
        self._http.request("DELETE", _path(webhook_id), retry=True)

    def deliveries(self, webhook_id: str) -> DeliveryList:
        """The hook's latest deliveries, newest first, with their outcome."""
        response = self._http.request("GET", f"{_path(webhook_id)}/deliveries", retry=True)
        return [WebhookDelivery.model_validate(item) for item in response.json()]


def _path(webhook_id: str) -> str:
    return f"/v1/webhooks/{quote(webhook_id, safe='')}"
