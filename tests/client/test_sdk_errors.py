"""Parsing error responses into the exception tree: problem+json bodies, and the bodies a proxy
or a bare framework sends instead. (The same classes from a real server: test_sdk_e2e.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import gradlab_client as gl
import httpx
import pytest
from gradlab_client.errors import error_from_response, retry_after_seconds


def problem(status: int, **fields: Any) -> httpx.Response:
    body = {"type": "about:blank", "title": "Title", "status": status, **fields}
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, gl.ValidationError), (401, gl.Unauthorized), (403, gl.Unauthorized),
        (404, gl.NotFound), (409, gl.Conflict), (413, gl.ValidationError),
        (422, gl.ValidationError), (429, gl.RateLimited), (503, gl.ServiceUnavailable),
        (500, gl.APIError), (502, gl.APIError), (504, gl.APIError),
    ],
)
def test_each_status_maps_to_its_class(status: int, cls: type[gl.APIError]) -> None:
    error = error_from_response(problem(status, code="c"))
    assert type(error) is cls
    assert isinstance(error, gl.APIError) and isinstance(error, gl.GradlabError)
    assert error.status == status and error.code == "c"


def test_problem_fields_and_field_errors_are_kept() -> None:
    response = problem(
        422, code="invalid_request", detail="'he' is not one of ...", field="model.init.scheme",
        errors=[{"field": "model.init.scheme", "message": "'he' is not one of ..."},
                {"field": "optimizer.lr", "message": "greater than 0"}],
    )
    error = error_from_response(response)
    assert isinstance(error, gl.ValidationError)
    assert (error.title, error.field) == ("Title", "model.init.scheme")
    assert error.code == "invalid_request"
    assert [e.field for e in error.errors] == ["model.init.scheme", "optimizer.lr"]
    assert "optimizer.lr: greater than 0" in str(error)
    assert error.problem.status == 422


def test_a_non_json_body_still_gives_the_status_and_text() -> None:
    error = error_from_response(httpx.Response(502, text="<html>Bad gateway</html>"))
    assert type(error) is gl.APIError
    assert error.status == 502 and error.title == "Bad Gateway"
    assert error.detail == "<html>Bad gateway</html>"


def test_an_empty_body_gives_no_detail() -> None:
    error = error_from_response(httpx.Response(503, content=b""))
    assert isinstance(error, gl.ServiceUnavailable) and error.detail is None


def test_fastapi_default_validation_body_names_the_field() -> None:
    body = {"detail": [{"loc": ["body", "data", "dataset"], "msg": "Field required", "type": "x"}]}
    error = error_from_response(httpx.Response(422, json=body))
    assert isinstance(error, gl.ValidationError)
    assert error.field == "data.dataset" and error.detail == "Field required"


def test_a_json_body_that_is_not_an_object() -> None:
    error = error_from_response(httpx.Response(404, json=["nope"]))
    assert isinstance(error, gl.NotFound) and error.detail == "['nope']"


def test_rate_limited_reads_retry_after_seconds_and_dates() -> None:
    limited = error_from_response(
        httpx.Response(429, json={"title": "Too Many", "status": 429}, headers={"Retry-After": "7"})
    )
    assert isinstance(limited, gl.RateLimited) and limited.retry_after == 7.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    seconds = retry_after_seconds(httpx.Response(429, headers={"Retry-After": later}))
    assert seconds is not None and 25 <= seconds <= 30
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    assert retry_after_seconds(httpx.Response(429)) is None


def test_timeout_and_transport_errors_are_gradlab_errors_but_not_api_errors() -> None:
    for cls in (gl.Timeout, gl.TransportError):
        assert issubclass(cls, gl.GradlabError) and not issubclass(cls, gl.APIError)
    assert gl.Timeout("late").job is None
