"""One poll-until-done loop for the SDK's `wait` methods (heals, studies)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from gradlab_client.errors import Timeout

T = TypeVar("T")


def poll_until_done(fetch: Callable[[], T], done: Callable[[T], bool],
                    still: Callable[[T], str], *, timeout: float | None,
                    poll_interval: float) -> T:
    """Call `fetch` every `poll_interval` seconds until `done` holds; Timeout after `timeout`
    seconds, with `still(last)` saying what the resource was still doing."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        found = fetch()
        if done(found):
            return found
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise Timeout(f"{still(found)} after {timeout:g}s")
        time.sleep(poll_interval if left is None else min(poll_interval, left))
