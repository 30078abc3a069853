"""OWASP API4: each API key gets settings.rate_limit_per_minute requests a minute, then 429 with
Retry-After (problem+json, code rate_limited). Probes and /metrics are never limited. With a Redis
broker the count is shared by every API process (service/ratelimit.py)."""

from __future__ import annotations

import pytest
from celery import Celery
from fastapi.testclient import TestClient

from service import create_app
from service.http.ratelimit import LocalLimiter, RedisLimiter, retry_after_header
from store.settings import Settings
from tests.service.support import PROBLEM_JSON, SPIRAL

LIMIT = 5


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_spends_its_minute_at_once_then_one_request_per_interval() -> None:
    clock = Clock()
    limiter = LocalLimiter(LIMIT, clock=clock)
    assert [limiter.hit("a") for _ in range(LIMIT)] == [0.0] * LIMIT
    wait = limiter.hit("a")
    assert wait == pytest.approx(60 / LIMIT)
    assert limiter.hit("b") == 0.0  # keys are counted apart
    clock.now += wait - 0.01
    assert limiter.hit("a") > 0
    clock.now += 0.01
    assert limiter.hit("a") == 0.0
    assert limiter.hit("a") > 0


def test_refused_requests_do_not_extend_the_wait() -> None:
    clock = Clock()
    limiter = LocalLimiter(LIMIT, clock=clock)
    for _ in range(LIMIT):
        limiter.hit("a")
    waits = [limiter.hit("a") for _ in range(100)]
    assert max(waits) == pytest.approx(60 / LIMIT)


def test_idle_keys_are_forgotten() -> None:
    clock = Clock()
    limiter = LocalLimiter(LIMIT, clock=clock)
    for index in range(1000):
        limiter.hit(f"key-{index}")
    clock.now += 61
    limiter.hit("fresh")
    assert len(limiter._arrivals) == 1


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert [retry_after_header(s) for s in (0.001, 1.0, 1.2, 11.9)] == ["1", "1", "2", "12"]


@pytest.fixture
def limited(app_settings: Settings, celery_app: Celery) -> TestClient:
    settings = app_settings.model_copy(update={"rate_limit_per_minute": LIMIT})
    return TestClient(create_app(settings, celery_app=celery_app))


def test_a_key_over_its_limit_gets_429_with_retry_after(
    limited: TestClient, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    with limited:
        answers = [limited.get("/v1/jobs", headers=auth).status_code for _ in range(LIMIT)]
        refused = limited.get("/v1/catalog", headers=auth)  # every route shares the budget
        other = limited.get("/v1/jobs", headers=other_auth)
    assert answers == [200] * LIMIT
    assert refused.status_code == 429
    assert refused.headers["content-type"] == PROBLEM_JSON
    assert int(refused.headers["retry-after"]) == 60 // LIMIT
    body = refused.json()
    assert (body["code"], body["status"]) == ("rate_limited", 429)
    assert str(LIMIT) in body["detail"]
    assert other.status_code == 200  # per key, not global


def test_probes_metrics_and_refused_keys_are_not_limited(
    limited: TestClient, auth: dict[str, str]
) -> None:
    with limited:
        for _ in range(LIMIT * 3):
            assert limited.get("/healthz").status_code == 200
            assert limited.get("/readyz").status_code == 200
            assert limited.get("/metrics").status_code == 200
            bad = {"Authorization": "Bearer glk_not-a-key"}
            assert limited.get("/v1/jobs", headers=bad).status_code == 401
        assert limited.get("/v1/jobs", headers=auth).status_code == 200


@pytest.mark.integration
def test_api_processes_share_the_limit_through_a_redis_broker(
    app_settings: Settings, redis_url: str, auth: dict[str, str]
) -> None:
    settings = app_settings.model_copy(update={"rate_limit_per_minute": LIMIT,
                                               "broker_url": redis_url})
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings)) as second:
        statuses = [(first if index % 2 else second).get("/v1/jobs", headers=auth).status_code
                    for index in range(LIMIT)]
        assert statuses == [200] * LIMIT
        assert first.get("/v1/jobs", headers=auth).status_code == 429
        refused = second.get("/v1/jobs", headers=auth)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60 // LIMIT


def test_a_redis_that_does_not_answer_falls_back_to_counting_locally() -> None:
    clock = Clock()
    limiter = RedisLimiter("redis://127.0.0.1:1/0", LIMIT,
                           fallback=LocalLimiter(LIMIT, clock=clock))
    assert [limiter.hit("a") for _ in range(LIMIT)] == [0.0] * LIMIT
    assert limiter.hit("a") > 0
    limiter.close()


def test_a_request_is_counted_once_however_many_dependencies_need_the_key(
    limited: TestClient, auth: dict[str, str]
) -> None:
    """POST /v1/jobs resolves the caller's team for the route and for its strict body check."""
    with limited:
        statuses = [limited.post("/v1/jobs", json=SPIRAL, headers=auth).status_code
                    for _ in range(LIMIT)]
        assert statuses == [201] * LIMIT
        assert limited.get("/v1/jobs", headers=auth).status_code == 429
