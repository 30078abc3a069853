"""The store's domain errors: what can go wrong, in words the API and the worker act on.

Every error carries a stable ``code`` (part of the API contract: it becomes the problem
details' ``code``) and the HTTP status it means, so the service maps all of them in one handler::

    StoreError                      base; never raised itself
    ├── NotFound        404  not_found       no such row, or it belongs to another team
    ├── Conflict        409  conflict        the request contradicts stored state (an idempotency
    │                                        key reused with a different body, a duplicate name)
    ├── StaleAttempt    409  stale_attempt   a worker write fenced out: its attempt is no longer
    │                                        the job's current one, or the job is not running
    ├── QuotaExceeded   429  quota_exceeded  a team limit (queued or running jobs) is reached
    ├── Unavailable     503  unavailable     the database cannot be reached or is locked; retry
    └── InvalidInput    422  invalid_input   a malformed argument (a cursor, a range); names `field`

The worker treats StaleAttempt as "stop now, another attempt owns this job", and Unavailable as
"retry later"; everything else is a bug or a client mistake.
"""

from __future__ import annotations

from typing import ClassVar


class StoreError(Exception):
    code: ClassVar[str] = "store_error"
    status: ClassVar[int] = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(StoreError):
    code = "not_found"
    status = 404


class Conflict(StoreError):
    code = "conflict"
    status = 409


class StaleAttempt(StoreError):
    code = "stale_attempt"
    status = 409


class QuotaExceeded(StoreError):
    code = "quota_exceeded"
    status = 429


class Unavailable(StoreError):
    code = "unavailable"
    status = 503


class InvalidInput(StoreError):
    code = "invalid_input"
    status = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)
