"""The domain errors only the service raises, below the store's base (store.errors.DomainError).

Like the store's, each carries a stable ``code`` and no HTTP status: service/http/problems.py
maps every DomainError to its status in one handler; routes raise, they never build responses::

    DomainError (store.errors)
    ├── Unauthorized     unauthorized       no key, or a key that matches no team
    ├── InvalidRequest   invalid_request    a request no route can read (a NUL character)
    ├── InvalidSpec      invalid_spec       a well-typed spec that cannot be built here (a conv
    │                                       stack that shrinks the input to nothing, an upload
    │                                       the team does not have)
    ├── LimitExceeded    limit_exceeded     the spec is valid but over a resource cap
    ├── InvalidUpload    invalid_upload     an uploaded file that is not a usable .npz
    ├── PayloadTooLarge  payload_too_large  a body over its size limit
    └── RateLimited      rate_limited       the key made more than settings.rate_limit_per_minute
                                            requests in a minute; `retry_after` seconds
"""

from __future__ import annotations

from store.errors import DomainError


class Unauthorized(DomainError):
    code = "unauthorized"


class InvalidRequest(DomainError):
    code = "invalid_request"


class InvalidSpec(DomainError):
    code = "invalid_spec"


class LimitExceeded(DomainError):
    code = "limit_exceeded"


class InvalidUpload(DomainError):
    code = "invalid_upload"


class PayloadTooLarge(DomainError):
    code = "payload_too_large"


class RateLimited(DomainError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # the Retry-After header: whole seconds
