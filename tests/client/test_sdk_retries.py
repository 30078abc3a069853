"""The retry policy against scripted responses: what is retried, how long it waits, and what is
never sent twice. (A retried create against the real app: test_sdk_e2e.py.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import gradlab_client as gl
import httpx
import pytest
from gradlab_client.client import Client

Script = list[httpx.Response | Exception]
SPEC = {"data": {"dataset": "spiral"}, "training": {"steps": 10}}


class Scripted:
    """Answers requests from a script, one entry per attempt, and records what was sent."""

    def __init__(self, script: Script) -> None:
        self._script: Iterator[httpx.Response | Exception] = iter(script)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = next(self._script)
        if isinstance(answer, Exception):
            raise answer
        return answer


def ok_job(request: httpx.Request | None = None) -> httpx.Response:
    return httpx.Response(201, json={
        "id": "j1", "status": "queued", "spec": SPEC, "created_at": "2024-01-01T00:00:00Z",
    })


def unavailable(retry_after: str | None = None, status: int = 503) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after else {}
    return httpx.Response(status, json={"title": "x", "status": status}, headers=headers)


MakeScripted = Callable[..., tuple[Client, Scripted, list[float]]]


@pytest.fixture
def scripted() -> MakeScripted:
    def make(script: Script, *, max_retries: int = 3) -> tuple[Client, Scripted, list[float]]:
        transport = Scripted(script)
        http = httpx.Client(transport=httpx.MockTransport(transport))
        client = Client(base_url="http://gradlab.test", api_key="k", http_client=http,
                        max_retries=max_retries)
        delays: list[float] = []
        client._http.sleep = delays.append  # no real waiting; the delays are asserted
        return client, transport, delays

    return make


def test_a_read_is_retried_on_503_502_504_and_connection_errors(scripted: MakeScripted) -> None:
    client, transport, delays = scripted(
        [unavailable(), unavailable(status=502), httpx.ConnectError("refused"), ok_job()]
    )
    assert client.jobs.get("j1").id == "j1"
    assert len(transport.requests) == 4
    # Exponential backoff with jitter: each delay in [ceiling/2, ceiling], ceiling 0.5, 1, 2.
    for delay, ceiling in zip(delays, [0.5, 1.0, 2.0], strict=True):
        assert ceiling / 2 <= delay <= ceiling


def test_retry_after_is_honoured(scripted: MakeScripted) -> None:
    client, _, delays = scripted([
        httpx.Response(429, json={"title": "Too Many Requests", "status": 429},
                       headers={"Retry-After": "12"}),
        ok_job(),
    ])
    client.jobs.get("j1")
    assert delays == [12.0]


def test_a_retry_after_beyond_the_cap_is_raised_not_slept(scripted: MakeScripted) -> None:
    client, transport, delays = scripted([unavailable(retry_after="3600", status=429)])
    with pytest.raises(gl.RateLimited) as caught:
        client.jobs.get("j1")
    assert caught.value.retry_after == 3600 and delays == [] and len(transport.requests) == 1


def test_retries_give_up_after_max_retries_with_the_last_error(scripted: MakeScripted) -> None:
    client, transport, _ = scripted([unavailable()] * 3, max_retries=2)
    with pytest.raises(gl.ServiceUnavailable):
        client.jobs.list().__next__()
    assert len(transport.requests) == 3


def test_a_create_without_a_key_is_sent_once(scripted: MakeScripted) -> None:
    client, transport, _ = scripted([unavailable()])
    with pytest.raises(gl.ServiceUnavailable):
        client.jobs.create(SPEC)
    client, transport_2, _ = scripted([httpx.ReadError("reset")])
    with pytest.raises(gl.TransportError):
        client.jobs.create(SPEC)
    assert len(transport.requests) == len(transport_2.requests) == 1


def test_a_create_with_a_key_is_retried_with_the_same_key(scripted: MakeScripted) -> None:
    client, transport, _ = scripted([httpx.ReadError("reset"), unavailable(), ok_job()])
    assert client.jobs.create(SPEC, idempotency_key="run-42").id == "j1"
    keys = [request.headers["idempotency-key"] for request in transport.requests]
    assert keys == ["run-42"] * 3
    assert transport.requests[0].content == transport.requests[2].content


def test_a_study_create_is_retried_only_with_a_key(scripted: MakeScripted) -> None:
    study = {"id": "s1", "varied": ["x"], "variants": 1, "jobs": 1, "counts": {"queued": 1},
             "created_at": "2024-01-01T00:00:00Z"}
    body = {"base": SPEC, "grid": {"optimizer.lr": [0.1]}}
    client, transport, _ = scripted([unavailable(), httpx.Response(201, json=study)])
    assert client.studies.create(body, idempotency_key="grid-1").id == "s1"
    assert [r.headers["idempotency-key"] for r in transport.requests] == ["grid-1"] * 2
    client, transport, _ = scripted([unavailable()])
    with pytest.raises(gl.ServiceUnavailable):
        client.studies.create(body)
    assert len(transport.requests) == 1 and "idempotency-key" not in transport.requests[0].headers


def test_cancel_is_retried(scripted: MakeScripted) -> None:
    client, transport, _ = scripted([httpx.ConnectError("refused"), ok_job()])
    client.jobs.cancel("j1")
    assert [r.url.path for r in transport.requests] == ["/v1/jobs/j1/cancel"] * 2


def test_client_errors_are_never_retried(scripted: MakeScripted) -> None:
    not_found = httpx.Response(404, json={"title": "Not Found", "status": 404})
    client, transport, _ = scripted([not_found])
    with pytest.raises(gl.NotFound):
        client.jobs.get("nope")
    assert len(transport.requests) == 1


def test_permanent_transport_failures_are_not_retried(scripted: MakeScripted) -> None:
    client, transport, _ = scripted([httpx.UnsupportedProtocol("ftp")])
    with pytest.raises(gl.TransportError):
        client.jobs.get("j1")
    assert len(transport.requests) == 1


def test_a_timed_out_request_raises_timeout_after_its_retries(scripted: MakeScripted) -> None:
    client, transport, _ = scripted([httpx.ReadTimeout("slow")] * 2, max_retries=1)
    with pytest.raises(gl.Timeout, match="timed out"):
        client.jobs.get("j1")
    assert len(transport.requests) == 2


def test_max_retries_zero_sends_once(scripted: MakeScripted) -> None:
    client, transport, _ = scripted([unavailable()], max_retries=0)
    with pytest.raises(gl.ServiceUnavailable):
        client.catalog()
    assert len(transport.requests) == 1
    with pytest.raises(ValueError, match="max_retries"):
        Client(max_retries=-1)
