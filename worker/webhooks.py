"""Sends webhook deliveries (store/webhooks.py's outbox) from the worker's main process.

Each delivery is signed the Standard Webhooks way (the `standardwebhooks` library: HMAC-SHA256
of id.timestamp.body with the hook's secret, in webhook-id / webhook-timestamp /
webhook-signature headers) and retried with exponential backoff by tenacity on a connection
error, a 5xx or a 429; the outcome is recorded. The address is checked after resolving the host
(a name can point anywhere): loopback, link-local and private addresses are refused unless
webhooks_allow_private is set, and the connection goes to the address that was checked.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from standardwebhooks.webhooks import Webhook as Signer
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from store import webhooks
from store.db import Database
from store.errors import Unavailable
from store.settings import Settings

log = logging.getLogger(__name__)
ATTEMPTS = 5
TIMEOUT_SECONDS = 10.0
POLL_SECONDS = 1.0


class Refused(Exception):
    """The URL may not be delivered to (SSRF guard): not retried."""


class RetryableResponse(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    attempts: int
    status: int | None
    error: str | None


def check_address(url: str, *, allow_private: bool) -> str:
    """The IP address to connect to for `url`; Refused when it is not a public one (unless
    allowed) or the URL is not http(s)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("the URL must be http:// or https:// with a host")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 0, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise Refused(f"cannot resolve {parts.hostname}: {error}") from None
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not allow_private:
        for address in addresses:
            if not address.is_global or address.is_multicast:
                raise Refused(f"{parts.hostname} resolves to {address}, which is not a public "
                              "address (set webhooks_allow_private to allow it)")
    return str(addresses[0])


def deliver(due: webhooks.DueDelivery, *, allow_private: bool, attempts: int = ATTEMPTS,
            max_wait: float = 30.0) -> Outcome:
    """Send one delivery, retrying with backoff; never raises."""
    body = json.dumps(due.payload, separators=(",", ":"))
    signer = Signer(due.secret)
    tries = 0
    status: int | None = None

    def send_once() -> None:
        nonlocal tries, status
        tries += 1
        address = check_address(due.url, allow_private=allow_private)
        moment = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": due.id,
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": signer.sign(due.id, moment, body),
        }
        response = _post(due.url, address, headers, body)
        status = response.status_code
        if status >= 500 or status == 429:
            raise RetryableResponse(status)
        if status >= 300:
            raise Refused(f"HTTP {status}")

    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.5, max=max_wait),
        retry=retry_if_exception_type((httpx.TransportError, RetryableResponse)),
        reraise=True,
    )
    try:
        retrying(send_once)
    except (Refused, RetryableResponse, httpx.HTTPError, RetryError) as error:
        return Outcome(False, tries, status, str(error)[:500])
    return Outcome(True, tries, status, None)


def _post(url: str, address: str, headers: dict[str, str], body: str) -> httpx.Response:
    """POST to the checked address (not a second lookup that could answer otherwise), with the
    URL's host in the Host header and for TLS."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    target = parts._replace(netloc=netloc).geturl()
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client:
        request = client.build_request("POST", target, content=body,
                                       headers={**headers, "host": parts.netloc},
                                       extensions=extensions)
        return client.send(request)


class WebhookDispatcher:
    """A thread that claims due deliveries and sends them, one at a time."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self._database, self._settings = database, settings
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def run_once(self) -> int:
        with self._database.transaction() as session:
            due = webhooks.claim_due(session)
        for item in due:
            outcome = deliver(item, allow_private=self._settings.webhooks_allow_private)
            with self._database.transaction() as session:
                webhooks.record_outcome(session, delivery_id=item.id, delivered=outcome.delivered,
                                        attempts=outcome.attempts,
                                        response_status=outcome.status, error=outcome.error)
        return len(due)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                sent = self.run_once()
            except Unavailable as error:
                log.warning("webhooks: %s", error)
                sent = 0
            except Exception:  # the dispatcher must outlive a bad row
                log.exception("webhook dispatch failed")
                sent = 0
            if not sent:
                self._stopped.wait(POLL_SECONDS)
