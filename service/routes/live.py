"""Following a job or a study live: server-sent events, and a job's worker log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from gradlab_contract.live import JobLogPage
from sse_starlette import EventSourceResponse

from service.deps import CurrentTeam, JobDep, ServicesDep
from service.http.problems import problem_doc
from service.live.streams import StreamSlots, Subject, event_response, parse_last_event_id
from service.routes.studies import StudyDep
from store import joblogs

router = APIRouter(tags=["live"], responses=problem_doc(401, 404, 429, 503))

LastEventId = Annotated[str | None, Header(
    alias="Last-Event-ID", description="Resume after this event id (browsers send it on "
    "reconnect); without it the stream starts with the first event.")]
STREAM_DOC: dict[int | str, dict[str, Any]] = {200: {"content": {"text/event-stream": {}},
                    "description": "A stream of server-sent events"}}


def _slots(request: Request) -> StreamSlots:
    slots: StreamSlots = request.app.state.stream_slots
    return slots


@router.get("/v1/jobs/{job_id}/events", summary="Follow a job as server-sent events",
            response_class=EventSourceResponse, responses=STREAM_DOC)
def job_events(job: JobDep, team: CurrentTeam, services: ServicesDep, request: Request,
               last_event_id: LastEventId = None) -> EventSourceResponse:
    """`text/event-stream` of the job's events from submission on: `status` (each change; an
    ending carries `error`, `stop_reason`, `stopped_early`, `best_step`), `progress`, `metrics`
    (the latest value of each main metric, about once a second) and `findings` (the live
    diagnosis' codes changed). After the ending's `status` comes `end`, and the stream closes.
    Every event has an `id`: reconnect with `Last-Event-ID` to get exactly what was missed.
    Comment lines keep an idle stream open. 429 when the team holds too many streams open."""
    subject = Subject("job", job.id, team.id, parse_last_event_id(last_event_id),
                      already_ended=job.done)
    return event_response(services, _slots(request), subject)


@router.get("/v1/studies/{study_id}/events", summary="Follow a study as server-sent events",
            response_class=EventSourceResponse, responses=STREAM_DOC)
def study_events(study: StudyDep, team: CurrentTeam, services: ServicesDep, request: Request,
                 last_event_id: LastEventId = None) -> EventSourceResponse:
    """The events of every job of the study (each with its `job_id`), as for a job, then a
    `study` event when its last job has ended, then `end`."""
    subject = Subject("study", study.id, team.id, parse_last_event_id(last_event_id))
    return event_response(services, _slots(request), subject)


@router.get("/v1/jobs/{job_id}/logs", summary="A job's worker log")
def job_logs(
    job: JobDep, services: ServicesDep,
    after: Annotated[int, Query(ge=0, le=2**62, description="Only lines after this id (the "
                                "`next_after` of the previous page): follow with it.")] = 0,
    limit: Annotated[int, Query(ge=1, le=joblogs.MAX_PAGE)] = 500,
) -> JobLogPage:
    """The worker's lines about this job, oldest first: the claim of each attempt, the data
    set, the device, warnings, and an error with its traceback (host paths removed). Kept up
    to the server's per-job cap (`truncated` says when lines were dropped)."""
    with services.db.read() as session:
        return joblogs.read_lines(session, job_id=job.id, after=after, limit=limit)
