"""The one place that sends requests: base URL, auth, timeouts, error mapping and retries.

Only calls the caller marks `retry=True` are retried: reads, cancel (a flag that can be set
twice), and a create that carries an Idempotency-Key. A create without a key is sent once: if its
answer is lost, the job may exist, and sending it again could start a second one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from gradlab_contract.retry import Backoff, retrying

from gradlab_client.errors import Timeout, TransportError, error_from_response, retry_after_seconds

RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Failures where the request may simply be sent again; a malformed URL or an unsupported scheme
# (the other httpx.TransportErrors) will fail the same way every time.
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    max_retries: int = 3
    backoff: float = 0.5  # seconds before the first retry, doubled after each
    max_backoff: float = 8.0
    # A longer Retry-After than this is not slept through: the error is raised for the caller.
    max_retry_after: float = 60.0

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return retry_after
        return Backoff(first=self.backoff, most=self.max_backoff).delay(retry)


class _Failed(Exception):
    """One try's failure: the error to raise, and whether (and when) to send again."""

    def __init__(self, error: Exception, *, retryable: bool, hint: float | None = None) -> None:
        self.error, self.retryable, self.hint = error, retryable, hint


class HTTP:
    """Sends requests to one gradlab service on an httpx.Client (ours, or one the caller passed)."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        timeout: float,
        http_client: httpx.Client | None,
        policy: RetryPolicy,
        user_agent: str,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy
        self.sleep: Callable[[float], None] = time.sleep
        self._owns_client = http_client is None
        self._client = http_client if http_client is not None else httpx.Client(timeout=timeout)
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    @property
    def client(self) -> httpx.Client:
        return self._client

    @property
    def headers(self) -> dict[str, str]:
        """The headers every request carries (the key among them)."""
        return dict(self._headers)

    def close(self) -> None:
        # A client the caller passed in is the caller's to close.
        if self._owns_client:
            self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        retry: bool,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        files: Any = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send once, or up to 1 + max_retries times when `retry`; raise a GradlabError. With
        `stream`, a successful response's body is not read yet: the caller closes it."""
        request = self._client.build_request(
            method,
            f"{self.base_url}{path}",
            params=_without_none(params),
            json=json,
            data=data,
            files=files,
            headers={**self._headers, **(headers or {})},
        )
        tries = retrying(
            when=lambda error: isinstance(error, _Failed) and error.retryable,
            wait=lambda retry, error: self.policy.delay(retry, getattr(error, "hint", None)),
            tries=1 + (self.policy.max_retries if retry else 0),
            sleep=lambda seconds: self.sleep(seconds),
        )
        try:
            for attempt in tries:
                with attempt:
                    return self._send(request, stream=stream)
        except _Failed as failed:
            raise failed.error from failed.error.__cause__
        raise AssertionError("unreachable: the last try returns or raises")

    def _send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        try:
            response = self._client.send(request, stream=stream)
        except httpx.HTTPError as exc:
            error = _transport_error(exc, request)
            error.__cause__ = exc
            raise _Failed(error, retryable=isinstance(exc, _TRANSIENT)) from exc
        if response.is_success:
            return response
        if stream:
            response.read()  # the problem document, for the error
        hint = retry_after_seconds(response)
        error = error_from_response(response)
        response.close()
        raise _Failed(error, retryable=self._should_retry(response.status_code, hint), hint=hint)

    def _should_retry(self, status: int, retry_after: float | None) -> bool:
        if status not in RETRY_STATUSES:
            return False
        return retry_after is None or retry_after <= self.policy.max_retry_after


def _transport_error(exc: httpx.HTTPError, request: httpx.Request) -> Exception:
    where = f"{request.method} {request.url}"
    if isinstance(exc, httpx.TimeoutException):
        return Timeout(f"{where} timed out: {str(exc) or type(exc).__name__}")
    return TransportError(f"{where} failed: {str(exc) or type(exc).__name__}")


def _without_none(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if params is None:
        return None
    return {key: value for key, value in params.items() if value is not None}

