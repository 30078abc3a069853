"""How gradlab tries again: one policy for the SDK's requests and the worker's store writes.

A failure the caller calls transient (`when`) is tried again after a backoff, until a number of
tries (`tries`) or a time (`seconds`) is used up; then the last error is raised as it was. The
loop is tenacity's (https://tenacity.readthedocs.io); what is decided here is the backoff:
exponential with jitter, so that many clients that failed together do not retry together, capped,
and overridden by a server's own hint (Retry-After).

It lives in the contract because both sides use it, and the server side never imports the SDK.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    stop_never,
)
from tenacity.stop import stop_base


@dataclass(frozen=True, kw_only=True)
class Backoff:
    first: float = 0.5  # seconds before the first retry, doubled after each
    most: float = 8.0
    jitter: bool = True  # a delay in [ceiling / 2, ceiling] rather than the ceiling itself

    def delay(self, retry: int) -> float:
        """The wait before retry number `retry` (0 for the first)."""
        ceiling = min(self.most, self.first * 2**retry)
        return random.uniform(ceiling / 2, ceiling) if self.jitter else ceiling


def retrying(
    *,
    when: Callable[[BaseException], bool],
    wait: Callable[[int, BaseException], float],
    tries: int | None = None,
    seconds: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, BaseException], None] | None = None,
) -> Retrying:
    """A tenacity loop: `for attempt in retrying(...): with attempt: ...`.

    wait(retry, error) gives the seconds before retry number `retry` (0 for the first), given the
    error that failed the try; on_retry(retry, error) is called before that wait (to log it).
    """
    stops: list[stop_base] = []
    if tries is not None:
        stops.append(stop_after_attempt(tries))
    if seconds is not None:
        stops.append(stop_after_delay(seconds))

    def error_of(state: RetryCallState) -> BaseException:
        assert state.outcome is not None  # tenacity waits only after a try
        error = state.outcome.exception()
        assert error is not None  # only failed tries are retried
        return error

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None:
            on_retry(state.attempt_number - 1, error_of(state))

    return Retrying(
        retry=retry_if_exception(when),
        stop=stop_any(*stops) if stops else stop_never,
        wait=lambda state: wait(state.attempt_number - 1, error_of(state)),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
