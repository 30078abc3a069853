"""Bodies are held to their documented types: `"l2": false` is not a number, `"steps": "500"`
is not an integer.

FastAPI validates bodies in pydantic's lax mode, which converts such values quietly, so the API
would accept what its OpenAPI document calls invalid, and a caller's type mistake would train a
job nobody asked for. The contract's models are also read back from the database in Python
mode (where strict would refuse a JSON list for a tuple), so strictness is applied here, to the
request's raw JSON, in pydantic's strict JSON mode, after the caller is authenticated.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from service.deps import CurrentTeam


def strict_json_body(model: type[BaseModel]) -> Callable[..., Awaitable[None]]:
    """A route dependency: 422 (as any validation error) unless the body is `model` without
    type conversions. Use it beside the route's own `model` parameter, which documents it."""

    async def check(request: Request, team: CurrentTeam) -> None:
        body = await request.body()  # Starlette caches it: the route's own parse reuses it
        try:
            model.model_validate_json(body)
        except ValidationError:
            return  # invalid anyway: FastAPI's own validation reports it, in its usual words
        try:
            model.model_validate_json(body, strict=True)
        except ValidationError as error:
            raise RequestValidationError(_in_body(error.errors(include_url=False))) from None

    return check


def _in_body(errors: list[Any]) -> list[dict[str, Any]]:
    return [{**error, "loc": ("body", *error["loc"])} for error in errors]
