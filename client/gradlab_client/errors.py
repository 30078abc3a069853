"""Every error the SDK raises, so a pipeline can catch exactly what it can act on::

    GradlabError                 base of everything below; catch it to catch all of the SDK
    ├── APIError                 the service answered with an error (status, code, title, detail,
    │   │                        field, errors: a problem+json body, RFC 9457)
    │   ├── NotFound             404  no such job or data set, or it belongs to another team
    │   ├── Unauthorized         401, 403  missing, wrong or revoked API key
    │   ├── ValidationError      400, 413, 422  the request is wrong: `field` and `errors` say where
    │   ├── Conflict             409  e.g. an idempotency key reused with a different spec
    │   ├── RateLimited          429  a quota or rate limit; `retry_after` in seconds when known
    │   └── ServiceUnavailable   503  the service is up but cannot serve now; try again later
    ├── TransportError           no usable answer: connection refused or reset, bad protocol
    └── Timeout                  a request timed out, or `jobs.wait()` passed its deadline

Statuses without a class of their own (500, 502, 504, ...) raise a plain `APIError`. Idempotent
calls are retried on 429, 502, 503, 504 and transport failures before any of these is raised.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx
from gradlab_contract.models import Problem
from gradlab_contract.spec import FieldError

if TYPE_CHECKING:
    from gradlab_contract.models import Job


class GradlabError(Exception):
    """Base of every error raised by gradlab_client."""


class APIError(GradlabError):
    """The service answered with an error status; the fields come from its problem+json body."""

    def __init__(
        self,
        *,
        status: int,
        title: str,
        detail: str | None = None,
        code: str | None = None,
        field: str | None = None,
        errors: Sequence[FieldError] = (),
        type: str = "about:blank",
    ) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.code = code
        self.field = field
        self.errors = list(errors)
        self.type = type
        super().__init__(self.problem.describe())

    @property
    def problem(self) -> Problem:
        return Problem(
            type=self.type, title=self.title, status=self.status, detail=self.detail,
            code=self.code, field=self.field, errors=self.errors,
        )

    def __str__(self) -> str:
        lines = [self.problem.describe()]
        lines += [f"  {error.field}: {error.message}" for error in self.errors]
        return "\n".join(lines)


class NotFound(APIError):
    """404: the resource does not exist, or is not visible to this key's team."""


class Unauthorized(APIError):
    """401 or 403: the API key is missing, wrong, revoked, or not allowed to do this."""


class ValidationError(APIError):
    """400, 413 or 422: the request is wrong; `field` and `errors` name the offending fields."""


class Conflict(APIError):
    """409: the request contradicts stored state (an idempotency key reused with another body)."""


class RateLimited(APIError):
    """429: a rate limit or a team quota; `retry_after` is the server's hint in seconds, if any."""

    def __init__(self, *, retry_after: float | None = None, **fields: Any) -> None:
        self.retry_after = retry_after
        super().__init__(**fields)


class ServiceUnavailable(APIError):
    """503: the service cannot serve now (database locked or down); worth retrying later."""


class TransportError(GradlabError):
    """No usable response: the connection failed, was reset, or the protocol broke."""


class Timeout(GradlabError):
    """A request timed out, or `jobs.wait()` passed its deadline (`job` is the last state seen)."""

    def __init__(self, message: str, *, job: Job | None = None) -> None:
        super().__init__(message)
        self.job = job


_BY_STATUS: dict[int, type[APIError]] = {
    400: ValidationError,
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: ValidationError,
    422: ValidationError,
    429: RateLimited,
    503: ServiceUnavailable,
}


def error_from_response(response: httpx.Response) -> APIError:
    """The APIError subclass for an error response, built from its problem+json body.

    Bodies that are not problem details (a proxy's HTML page, FastAPI's default `{"detail": ...}`)
    still give an error with the status and whatever text there is.
    """
    fields = _problem_fields(response)
    cls = _BY_STATUS.get(response.status_code, APIError)
    if cls is RateLimited:
        return RateLimited(retry_after=retry_after_seconds(response), **fields)
    return cls(**fields)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds: either delay-seconds or an HTTP date (RFC 9110)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _problem_fields(response: httpx.Response) -> dict[str, Any]:
    status = response.status_code
    fallback_title = response.reason_phrase or f"HTTP {status}"
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        text = response.text.strip()
        return {"status": status, "title": fallback_title, "detail": text[:500] or None}
    if not isinstance(body, dict):
        return {"status": status, "title": fallback_title, "detail": str(body)[:500]}
    if "title" in body:
        try:
            problem = Problem.model_validate({**body, "status": status})
        except ValueError:
            pass
        else:
            return {name: getattr(problem, name) for name in _PROBLEM_FIELDS}
    return {"status": status, "title": fallback_title, **_plain_detail(body.get("detail"))}


_PROBLEM_FIELDS = ("type", "title", "status", "detail", "code", "field", "errors")


def _plain_detail(detail: object) -> dict[str, Any]:
    """FastAPI's default error body: a string, or a list of pydantic errors with `loc` and `msg`."""
    if not isinstance(detail, list):
        return {"detail": None if detail is None else str(detail)}
    errors = [
        FieldError(
            field=".".join(str(part) for part in item.get("loc", ()) if part != "body") or "body",
            message=str(item.get("msg", "")),
        )
        for item in detail
        if isinstance(item, dict)
    ]
    first = errors[0] if errors else None
    return {
        "detail": first.message if first else None,
        "field": first.field if first else None,
        "errors": errors,
    }
