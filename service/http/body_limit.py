"""Request body size limits that answer with a problem 413.

Starlette's own limiter (FastAPI's max_body_size) replaces any response to a request whose
Content-Length is over the limit with a plain-text 413, which would be the one error of the API
that is not problem+json. This one refuses such a request before reading it, and stops a body
without a Content-Length (chunked) as soon as it grows past the limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import PayloadTooLarge
from service.http.problems import problem_response


@dataclass(frozen=True)
class Limit:
    bytes: int
    detail: str  # what the client is told, e.g. "uploads are limited to 200,000,000 bytes"
    field: str = "body"


class BodyTooLarge(PayloadTooLarge, HTTPException):
    """Raised from `receive` while FastAPI parses the body: as an HTTPException it passes
    FastAPI's body parsing unchanged (other errors become a 400 there); as a DomainError it is
    rendered by the one domain error handler."""

    def __init__(self, limit: Limit) -> None:
        PayloadTooLarge.__init__(self, limit.detail, field=limit.field)
        HTTPException.__init__(self, 413, detail=limit.detail)


class BodyLimit:
    """ASGI middleware: `default` for every request, `routes[(method, path)]` where given."""

    def __init__(self, app: ASGIApp, *, default: Limit,
                 routes: dict[tuple[str, str], Limit]) -> None:
        self.app = app
        self.default = default
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.routes.get((scope["method"], scope["path"]), self.default)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit.bytes:
            response = problem_response(413, code=PayloadTooLarge.code, detail=limit.detail,
                                        field=limit.field)
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit.bytes:
                raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)
