"""The dependencies routes declare: the app's services, the caller's team, the job in the path.

The store is synchronous, so these (and the routes) are plain functions that FastAPI runs in its
thread pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from celery import Celery
from fastapi import Depends, Header, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from gradlab_contract.models import Job

from service.errors import RateLimited, Unauthorized
from service.http.ratelimit import RateLimiter, retry_after_header
from store import jobs, teams
from store.db import Database
from store.settings import Settings
from store.teams import Team


def idempotency_key_header(repeat: str) -> Any:
    """The Idempotency-Key header of a create route; ``repeat`` says what a repeat does."""
    return Header(
        alias="Idempotency-Key", min_length=1, max_length=200,
        description=f"Any unique string (a UUID). {repeat}",
    )


@dataclass(frozen=True)
class Services:
    """What create_app builds once and every request shares."""

    settings: Settings
    db: Database
    celery: Celery
    limiter: RateLimiter  # requests per API key (service.http.ratelimit)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

# auto_error=False: a missing or malformed header becomes our own 401 problem, not FastAPI's.
_bearer = HTTPBearer(
    auto_error=False, scheme_name="api_key",
    description="An API key of your team: `Authorization: Bearer glk_...`.",
)


def current_team(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Team:
    if credentials is None:
        raise Unauthorized("send an API key as `Authorization: Bearer <key>`",
                           field="Authorization")
    with services.db.read() as session:
        team = teams.authenticate(session, key=credentials.credentials)
    if team is None:
        raise Unauthorized("the API key is unknown or revoked", field="Authorization")
    _count_request(services, key=credentials.credentials)
    return team


def _count_request(services: Services, *, key: str) -> None:
    """Raise RateLimited when the key is over its budget. After authentication, so that only
    live keys are counted, and here, so that every route with a key is limited and the routes
    without one (probes, /metrics) are not."""
    wait = services.limiter.hit(teams.hash_key(key))
    if wait > 0:
        limit = services.settings.rate_limit_per_minute
        raise RateLimited(f"this API key is limited to {limit} requests per minute",
                          retry_after=retry_after_header(wait))


CurrentTeam = Annotated[Team, Depends(current_team)]


def team_job(
    job_id: Annotated[str, Path(description="The job's id, as returned when it was submitted.")],
    team: CurrentTeam,
    services: ServicesDep,
) -> Job:
    """The caller's job; another team's job is 404 like an unknown id, so ids cannot be probed."""
    with services.db.read() as session:
        return jobs.get_job(session, team_id=team.id, job_id=job_id)


JobDep = Annotated[Job, Depends(team_job)]
