"""Errors the service raises itself, beside the store's domain errors (store.errors).

Both carry a stable ``code`` and an HTTP status, and both become problem details in
service.problems; routes raise, they never build error responses::

    ApiError                 base
    ├── Unauthorized    401  unauthorized      no key, or a key that matches no team
    ├── InvalidSpec     422  invalid_spec      a well-typed spec that cannot be built here (a
    │                                          conv stack that shrinks the input to nothing, an
    │                                          upload the team does not have)
    ├── LimitExceeded   422  limit_exceeded    the spec is valid but over a resource cap
    ├── InvalidUpload   422  invalid_upload    an uploaded file that is not a usable .npz
    ├── PayloadTooLarge 413  payload_too_large an upload over settings.max_upload_bytes
    ├── RangeNotSatisfiable 416 range_not_satisfiable  a download's Range past the file's end
    └── RateLimited     429  rate_limited      the key made more than settings.rate_limit_per_minute
                                               requests in a minute; `retry_after` seconds
"""

from __future__ import annotations

from typing import ClassVar


class ApiError(Exception):
    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Unauthorized(ApiError):
    code = "unauthorized"
    status = 401


class InvalidSpec(ApiError):
    code = "invalid_spec"
    status = 422


class LimitExceeded(ApiError):
    code = "limit_exceeded"
    status = 422


class InvalidUpload(ApiError):
    code = "invalid_upload"
    status = 422


class PayloadTooLarge(ApiError):
    code = "payload_too_large"
    status = 413


class RangeNotSatisfiable(ApiError):
    code = "range_not_satisfiable"
    status = 416

    def __init__(self, message: str, *, field: str | None = None, size: int) -> None:
        super().__init__(message, field=field)
        self.size = size  # the file's length, for the Content-Range: bytes */size header


class RateLimited(ApiError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # the Retry-After header: whole seconds
