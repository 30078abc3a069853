"""Every error response is built here, as application/problem+json (RFC 9457) naming the field.

Routes and dependencies raise (store errors, service errors, FastAPI's validation and HTTP
errors); the handlers installed by ``install_handlers`` turn each into a ``Problem`` so that a
client handles one shape. Unknown exceptions become a bare 500: the traceback, SQL and paths go to
the log, never to the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from gradlab_contract.models import Problem
from gradlab_contract.spec import FieldError, describe_errors
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from service import errors as service
from store import errors as store

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
# Seconds a client should wait before retrying when the database is down or a quota is full.
RETRY_AFTER = {store.Unavailable: "5", store.QuotaExceeded: "30"}
# The HTTP status of each domain error (the nearest class listed wins); the domain knows none.
STATUS: dict[type[store.DomainError], int] = {
    store.NotFound: 404,
    store.Conflict: 409,
    store.StaleAttempt: 409,
    store.QuotaExceeded: 429,
    store.Unavailable: 503,
    store.InvalidInput: 422,
    service.Unauthorized: 401,
    service.InvalidRequest: 422,
    service.InvalidSpec: 422,
    service.LimitExceeded: 422,
    service.InvalidUpload: 422,
    service.PayloadTooLarge: 413,
    service.RateLimited: 429,
}
# The driver's message (hosts, database names, SQL) goes to the log; the caller learns this.
UNAVAILABLE_DETAIL = "the database is unavailable; retry later"
# Methods a 405's Allow header can list (RFC 9110 15.5.6: all the methods the path supports).
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def problem_response(
    status: int,
    *,
    code: str,
    detail: str | None = None,
    field: str | None = None,
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    if field and detail and not errors:
        errors = [FieldError(field=field, message=detail)]
    problem = Problem(
        title=_title(status), status=status, detail=detail, code=code, field=field,
        errors=list(errors),
    )
    return JSONResponse(
        problem.model_dump(mode="json"), status_code=status, headers=headers,
        media_type=PROBLEM_JSON,
    )


def field_errors(errors: Sequence[Any]) -> list[FieldError]:
    """FastAPI's validation errors as the contract's FieldErrors.

    describe_errors is the one place that knows how a cross-field error of the spec names its
    field (model.init.scheme, model.hidden.1); it reads only ``errors()``, so FastAPI's error dicts
    are handed to it as they are, with the leading "body"/"query"/"header" location stripped.
    """
    stripped = [{**error, "loc": tuple(error["loc"])[1:]} for error in errors]
    described = describe_errors(cast(ValidationError, _Errors(stripped)))
    for index, error in enumerate(errors):
        if error.get("type") == "json_invalid":
            described[index] = FieldError(field="body", message="the body is not valid JSON")
    return described


class _Errors:
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self._errors = errors

    def errors(self, **_: Any) -> list[dict[str, Any]]:
        return self._errors


def status_of(error: store.DomainError) -> int:
    """The HTTP status a domain error answers with; one not listed is a bug: 500."""
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, store.DomainError)
    status = status_of(exc)
    headers: dict[str, str] = {}
    for kind, seconds in RETRY_AFTER.items():
        if isinstance(exc, kind):
            headers["Retry-After"] = seconds
    if isinstance(exc, service.RateLimited):
        headers["Retry-After"] = exc.retry_after
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    detail = exc.message
    if isinstance(exc, store.Unavailable):
        log.warning("%s %s: %s", request.method, request.url.path, exc.message)
        detail = UNAVAILABLE_DETAIL
    return problem_response(
        status, code=exc.code, detail=detail, field=exc.field, headers=headers or None
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc.errors())
    first = errors[0] if errors else FieldError(field="body", message="invalid request")
    return problem_response(
        422, code="invalid_request", detail=first.message, field=first.field, errors=errors
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400:
        return _unparsable_body(exc)
    code = _title(exc.status_code).lower().replace(" ", "_").replace("-", "_")
    detail = str(exc.detail) if exc.detail != _title(exc.status_code) else None
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem_response(exc.status_code, code=code, detail=detail, headers=headers or None)


def _unparsable_body(exc: HTTPException) -> JSONResponse:
    """FastAPI and Starlette raise 400 only when they cannot parse the body (bytes that are not
    UTF-8 JSON, broken multipart, too many form parts). Malformed JSON is already 422 on `body`,
    so every unparsable body is answered the same way: one documented status for one mistake."""
    generic = exc.detail in (None, "", "There was an error parsing the body")
    detail = "the body cannot be parsed" + ("" if generic else f": {exc.detail}")
    return problem_response(422, code="invalid_request", detail=detail, field="body")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. Starlette names only the methods of the
    first route that matched the path, and this API serves GET and POST of one path from two
    routes."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # Starlette re-raises the exception after this response is sent, so the server logs the
    # traceback once; the caller only learns that something failed.
    return problem_response(500, code="internal_error", detail="an unexpected error occurred")


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(store.DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_doc(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The problem responses a route may return, for the OpenAPI reader."""
    return {status: {"model": Problem, "description": _title(status)} for status in statuses}


def document_common_problems(openapi: dict[str, Any]) -> dict[str, Any]:
    """Declare the problems that do not depend on a route, on every operation they apply to,
    so that routes added later are documented too:
    - an operation that needs a key may answer 401 and 429 (service.http.ratelimit);
    - an operation with a body may answer 413 (service.http.body_limit) and 422 (an unparsable
      body);
    - FastAPI's own 422 schema (HTTPValidationError) is replaced: validation errors are problems.
    """
    problem = {"content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    for operations in openapi.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            statuses = [*((401, 429) if operation.get("security") else ()),
                        *((413, 422) if "requestBody" in operation else ())]
            for status, response in list(responses.items()):
                if "HTTPValidationError" in str(response.get("content", {})):
                    statuses.append(int(status))
                    del responses[status]
            for status in statuses:
                responses.setdefault(str(status), {"description": _title(status), **problem})
    return openapi


def document_problem_media_type(openapi: dict[str, Any]) -> dict[str, Any]:
    """FastAPI files a response `model` under application/json; error bodies are sent as
    application/problem+json, so the document says so."""
    for operations in openapi.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                schema = content.get("application/json", {}).get("schema", {})
                if schema.get("$ref", "").endswith("/Problem"):
                    content[PROBLEM_JSON] = content.pop("application/json")
    return openapi
