"""Per-key rate limits: settings.rate_limit_per_minute requests per API key, then 429.

The algorithm is GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp):
each key may spend its whole minute's budget at once, then one request every 60/limit seconds,
and a refused request is told exactly how long to wait (Retry-After). A key's state is one
number, so memory does not grow with the request rate.

Where the state lives:
- With a Redis broker (settings.broker_url redis:// or rediss://, what docker compose runs) the
  state is in that Redis, under ``gradlab:ratelimit:<key hash>``, updated by one Lua script using
  Redis' own clock: every API process shares it, so the limit holds for the deployment, however
  many API replicas run. The keys expire after a minute of silence.
- Otherwise (the embedded filesystem broker, one API process) it is in this process' memory.
  With N API processes and no Redis, each process counts on its own and the effective limit
  is N times the setting.
- When Redis does not answer, the limiter falls back to this process' memory for a few seconds
  and then tries Redis again: a broken limiter store must not take the API down with it, and the
  local count still bounds each process.

Only authenticated requests are counted (the key's SHA-256, never the key): the probes and
/metrics carry no key and are never limited, and requests with an unknown key are refused with
401 before they reach a limiter, so made-up keys cannot fill its memory. Limit floods of bad keys
per client address at the proxy in front of the API.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

from store.settings import Settings

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0
# How long the limiter keeps to local counting after Redis failed, before it asks Redis again.
REDIS_RETRY_SECONDS = 5.0
# A limiter call is on every request's path: a slow Redis is treated like a down one.
REDIS_TIMEOUT_SECONDS = 0.25
REDIS_PREFIX = "gradlab:ratelimit:"

# GCRA in Redis, atomically: KEYS[1] holds the key's theoretical arrival time (microseconds of
# Redis' clock). ARGV[1]: the interval between requests, ARGV[2]: the window, both microseconds.
# Returns 0 when the request is allowed (and recorded), else the microseconds to wait.
_GCRA_LUA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + tonumber(ARGV[1])
local wait = new_tat - tonumber(ARGV[2]) - now
if wait > 0 then return math.ceil(wait) end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return 0
"""


class RateLimiter(Protocol):
    def hit(self, key: str) -> float:
        """Count one request of `key`: 0 when it is allowed, else the seconds until one is."""
        ...

    def close(self) -> None: ...


class LocalLimiter:
    """GCRA in this process' memory; thread-safe (routes run in FastAPI's thread pool)."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = WINDOW_SECONDS / per_minute
        self._clock = clock
        self._arrivals: dict[str, float] = {}  # key -> theoretical arrival time
        self._lock = threading.Lock()
        self._next_prune = 0.0

    def hit(self, key: str) -> float:
        with self._lock:
            now = self._clock()
            self._prune(now)
            arrival = max(self._arrivals.get(key, now), now) + self._interval
            wait = arrival - WINDOW_SECONDS - now
            if wait > 0:
                return wait
            self._arrivals[key] = arrival
            return 0.0

    def close(self) -> None:
        pass  # nothing held but memory

    def _prune(self, now: float) -> None:
        """Forget keys whose budget is full again (an arrival time in the past is the same as
        no entry), once per window, so memory holds only the keys of the last minute."""
        if now < self._next_prune:
            return
        self._arrivals = {key: at for key, at in self._arrivals.items() if at > now}
        self._next_prune = now + WINDOW_SECONDS


class RedisLimiter:
    """GCRA in Redis, shared by every API process; falls back to `fallback` while Redis fails."""

    def __init__(self, url: str, per_minute: int, *, fallback: RateLimiter) -> None:
        import redis

        self._client = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        self._script = self._client.register_script(_GCRA_LUA)
        self._interval_us = math.ceil(WINDOW_SECONDS / per_minute * 1_000_000)
        self._window_us = int(WINDOW_SECONDS * 1_000_000)
        self._fallback = fallback
        self._local_until = 0.0
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)

    def hit(self, key: str) -> float:
        if time.monotonic() < self._local_until:
            return self._fallback.hit(key)
        try:
            wait_us = self._script(keys=[REDIS_PREFIX + key],
                                   args=[self._interval_us, self._window_us])
        except self._errors:
            log.warning("rate limiter: Redis does not answer; counting in this process for "
                        "%.0f s", REDIS_RETRY_SECONDS, exc_info=True)
            self._local_until = time.monotonic() + REDIS_RETRY_SECONDS
            return self._fallback.hit(key)
        return int(wait_us) / 1_000_000

    def close(self) -> None:
        self._client.close()


def make_limiter(settings: Settings) -> RateLimiter:
    """The shared Redis limiter when the broker is Redis, else one in this process' memory."""
    local = LocalLimiter(settings.rate_limit_per_minute)
    if settings.broker_url.startswith(("redis://", "rediss://")):
        return RedisLimiter(settings.broker_url, settings.rate_limit_per_minute, fallback=local)
    return local


def retry_after_header(wait_seconds: float) -> str:
    """Retry-After takes whole seconds; rounding up means a client that obeys it gets through."""
    return str(max(1, math.ceil(wait_seconds)))
