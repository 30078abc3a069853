"""Server-sent event streams of a job or a study, replayed from the event table (store/events.py).

Each SSE event's id is the event's id in the table, so a client that reconnects with
`Last-Event-ID` gets exactly what it missed. A stream ends with an `end` event once the job (or
study) has ended; it also closes after event_stream_seconds (the client reconnects and resumes).
Cost is bounded: max_event_streams_per_team open streams per team and API process (429 past
that), each reading at most one page of events per wake-up.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import anyio
from gradlab_contract.models import TERMINAL_STATUSES
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from service.deps import Services
from service.errors import RateLimited
from service.live.wakeup import waiter
from store import events
from store.events import EventRecord


@dataclass(frozen=True)
class Subject:
    """What a stream follows: a job or a study of a team, from one event id on."""

    kind: str  # "job" | "study"
    key: str
    team_id: str
    after: int
    # The job had ended when the stream opened: a first read that finds nothing more (it
    # ended before the event log existed, or the client resumes after its last event) ends.
    already_ended: bool = False


class StreamSlots:
    """Open streams per team, in this process. A slot is released once, by whichever of the
    stream's end and the response's background task comes first."""

    def __init__(self) -> None:
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    def take(self, team_id: str, limit: int) -> Callable[[], None]:
        with self._lock:
            if self._open[team_id] >= limit:
                raise RateLimited(f"a team may hold {limit} event streams open at once",
                                  retry_after="5")
            self._open[team_id] += 1
        released = threading.Event()

        def release() -> None:
            with self._lock:
                if not released.is_set():
                    released.set()
                    self._open[team_id] -= 1

        return release


def parse_last_event_id(header: str | None) -> int:
    """The id to resume after; anything that is not an id of ours starts from the beginning."""
    if header is None:
        return 0
    try:
        return max(0, int(header.strip()))
    except ValueError:
        return 0


def event_response(services: Services, slots: StreamSlots, subject: Subject) -> EventSourceResponse:
    settings = services.settings
    release = slots.take(subject.team_id, settings.max_event_streams_per_team)
    return EventSourceResponse(
        _events(services, subject, release), ping=int(max(1, settings.event_heartbeat_seconds)),
        background=BackgroundTask(release),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(
    services: Services, subject: Subject, release: Callable[[], None]
) -> AsyncIterator[ServerSentEvent]:
    settings = services.settings
    cursor = subject.after
    try:
        with anyio.move_on_after(settings.event_stream_seconds):
            async with waiter(settings, subject.kind, subject.key) as wake:
                first = True
                while True:
                    page = await anyio.to_thread.run_sync(_read, services, subject, cursor)
                    if first and not page and subject.already_ended:
                        yield _end_without_events(subject)
                        return
                    first = False
                    for record in page:
                        cursor = record.id
                        yield _sse(record)
                        if _ends(subject, record):
                            yield _end(record)
                            return
                    if len(page) < events.MAX_PAGE:
                        await wake.wait()
    finally:
        release()


def _read(services: Services, subject: Subject, after: int) -> list[EventRecord]:
    with services.db.read() as session:
        if subject.kind == "job":
            return events.read_after(session, team_id=subject.team_id, after=after,
                                     job_id=subject.key)
        return events.read_after(session, team_id=subject.team_id, after=after,
                                 study_id=subject.key)


def _ends(subject: Subject, record: EventRecord) -> bool:
    if subject.kind == "study":
        return record.type == "study"
    return record.type == "status" and record.data.get("status") in TERMINAL_STATUSES


def _sse(record: EventRecord) -> ServerSentEvent:
    body = {"id": record.id, "type": record.type, "job_id": record.job_id,
            "study_id": record.study_id, "at": record.created_at.isoformat(), "data": record.data}
    return ServerSentEvent(id=str(record.id), event=record.type, data=json.dumps(body))


def _end(record: EventRecord) -> ServerSentEvent:
    body = {"type": "end", "job_id": record.job_id, "study_id": record.study_id,
            "data": record.data}
    return ServerSentEvent(event="end", data=json.dumps(body))


def _end_without_events(subject: Subject) -> ServerSentEvent:
    key = "job_id" if subject.kind == "job" else "study_id"
    body = {"type": "end", key: subject.key, "data": {}}
    return ServerSentEvent(event="end", data=json.dumps(body))
