"""gradlab's domain errors: what can go wrong, in words the API and the worker act on.

Every error carries a stable ``code`` (part of the API contract: it becomes the problem
details' ``code``), a message and, where one is to blame, the offending ``field``. They know
nothing of HTTP: the service's one handler (service/http/problems.py) gives each its status.
The store raises these; the service adds its own below the same base (service/errors.py)::

    DomainError                    base; never raised itself
    ├── NotFound      not_found      no such row, or it belongs to another team
    ├── Conflict      conflict       the request contradicts stored state (an idempotency key
    │                                reused with a different body, a duplicate name)
    ├── StaleAttempt  stale_attempt  a worker write fenced out: its attempt is no longer the
    │                                job's current one, or the job is not running
    ├── QuotaExceeded quota_exceeded a team limit (queued or running jobs) is reached
    ├── Unavailable   unavailable    the database cannot be reached or is locked; retry
    └── InvalidInput  invalid_input  a malformed argument (a cursor, a range); names `field`

The worker treats StaleAttempt as "stop now, another attempt owns this job", and Unavailable as
"retry later"; everything else is a bug or a client mistake.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    code: ClassVar[str] = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class StaleAttempt(DomainError):
    code = "stale_attempt"


class QuotaExceeded(DomainError):
    code = "quota_exceeded"


class Unavailable(DomainError):
    code = "unavailable"


class InvalidInput(DomainError):
    code = "invalid_input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)
