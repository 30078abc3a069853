"""Refuse NUL characters in the path, the query, headers and JSON bodies, with a 422 problem.

No field of the API takes a NUL, and PostgreSQL cannot store one (text and JSONB refuse it): a
NUL that reached a query or an insert would be a 500 there. Checking the raw request here covers
every route, including routes added later, whatever their parameters. JSON can carry a NUL only
as the escape \\u0000 (a raw NUL byte is not valid JSON), so that is what bodies are searched
for; other bodies (uploads) are binary and are not searched. uvicorn (h11) already refuses a
NUL in a header; headers are checked as well so that another server cannot let one through.
"""

from __future__ import annotations

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import InvalidRequest
from service.http.problems import problem_response

ESCAPE = b"\\u0000"
DETAIL = "the {where} holds a NUL character, which no field accepts"


class NulInRequest(InvalidRequest, HTTPException):
    """Raised from `receive` while the body is parsed: as an HTTPException it passes FastAPI's
    body parsing unchanged; as a DomainError it is rendered by the domain error handler."""

    def __init__(self, where: str) -> None:
        InvalidRequest.__init__(self, DETAIL.format(where=where), field=where)
        HTTPException.__init__(self, 422, detail=self.message)


class NulGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = _nul_outside_body(scope)
        if where is not None:
            response = problem_response(422, code=NulInRequest.code, field=where,
                                        detail=DETAIL.format(where=where))
            await response(scope, receive, send)
            return
        content_type = Headers(scope=scope).get("content-type", "")
        if "json" not in content_type.lower():
            await self.app(scope, receive, send)
            return
        tail = b""

        async def guarded_receive() -> Message:
            nonlocal tail
            message = await receive()
            chunk = tail + message.get("body", b"")
            if ESCAPE in chunk.lower():
                raise NulInRequest("body")
            tail = chunk[-(len(ESCAPE) - 1):]  # an escape split across two chunks
            return message

        await self.app(scope, guarded_receive, send)


def _nul_outside_body(scope: Scope) -> str | None:
    raw_path = scope.get("raw_path") or scope["path"].encode()
    if b"\x00" in raw_path or b"%00" in raw_path or "\x00" in scope["path"]:
        return "path"
    query = scope.get("query_string", b"")
    if b"\x00" in query or b"%00" in query:
        return "query"
    if any(b"\x00" in value for _, value in scope.get("headers", [])):
        return "header"
    return None
