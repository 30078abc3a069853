"""Following a job or a study as server-sent events, with the fallbacks a pipeline needs.

A dropped stream is reopened with `Last-Event-ID`, so no event is lost or repeated. When the
stream cannot be had (an older service, too many open streams, a proxy that buffers) the job
is polled instead and status and progress events are made up from what changed (their id is
None), up to the same `end`. The parsing of the SSE wire format is httpx-sse's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import httpx
from gradlab_contract.live import (
    EndEvent,
    Event,
    ProgressData,
    ProgressEvent,
    StatusData,
    StatusEvent,
    parse_event,
)
from gradlab_contract.models import Job
from httpx_sse import SSEError, connect_sse

from gradlab_client._http import HTTP
from gradlab_client.errors import (
    ServiceUnavailable,
    Timeout,
    TransportError,
    error_from_response,
)

RECONNECTS = 3  # failed reconnects in a row before polling takes over


class _Unavailable(Exception):
    """The stream cannot be had here: poll instead."""


def follow(
    http: HTTP, path: str, *, last_event_id: int | None, deadline: float | None,
    poll: Callable[[], Job] | None, poll_interval: float,
) -> Iterator[Event]:
    cursor = last_event_id
    failures = 0
    while True:
        _check_deadline(deadline)
        try:
            for event in _stream_once(http, path, cursor, deadline):
                failures = 0
                if event.id is not None:
                    cursor = event.id
                yield event
                if event.is_end:
                    return
        except (_Unavailable, SSEError):
            failures = RECONNECTS
        except (httpx.TransportError, TransportError, ServiceUnavailable):
            failures += 1
        if failures >= RECONNECTS:
            if poll is None:
                raise Timeout(f"the event stream {path} keeps failing")
            yield from _polled(poll, deadline, poll_interval)
            return
        time.sleep(min(2.0 ** failures * 0.25, 5.0))


def _stream_once(
    http: HTTP, path: str, cursor: int | None, deadline: float | None
) -> Iterator[Event]:
    headers = dict(http.headers) | {"Accept": "text/event-stream"}
    if cursor is not None:
        headers["Last-Event-ID"] = str(cursor)
    read = None if deadline is None else max(0.1, deadline - time.monotonic())
    timeout = httpx.Timeout(10.0, read=read if read is not None else 60.0)
    with connect_sse(http.client, "GET", f"{http.base_url}{path}", headers=headers,
                     timeout=timeout) as source:
        response = source.response
        if response.status_code in (404, 405, 406, 429):
            raise _Unavailable(str(response.status_code))
        if not response.is_success:
            response.read()
            raise error_from_response(response)
        for sse in source.iter_sse():
            if not sse.data:
                continue
            yield parse_event(json.loads(sse.data))
            _check_deadline(deadline)


def _polled(poll: Callable[[], Job], deadline: float | None, interval: float) -> Iterator[Event]:
    seen: tuple[str, int] | None = None
    while True:
        job = poll()
        if seen is None or job.status != seen[0]:
            yield StatusEvent(type="status", job_id=job.id, data=_status(job))
        elif job.progress.step != seen[1]:
            yield ProgressEvent(type="progress", job_id=job.id, data=ProgressData(
                step=job.progress.step, total_steps=job.progress.total_steps))
        seen = (job.status, job.progress.step)
        if job.done:
            yield EndEvent(type="end", job_id=job.id, data=_status(job).model_dump())
            return
        _check_deadline(deadline)
        time.sleep(interval)


def _status(job: Job) -> StatusData:
    return StatusData(status=job.status, attempt=job.attempt, error=job.error,
                      stop_reason=job.stop_reason, stopped_early=job.stopped_early,
                      best_step=job.best_step)


def _check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise Timeout("the event stream ran past its timeout")
