"""/v1/studies: run a grid (or random search) of job variants and compare them side by side."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from gradlab_contract.models import (
    COMPARE_METRICS,
    Study,
    StudyComparison,
    StudyCreate,
    StudyPage,
    StudyTemplate,
)

from service.deps import CurrentTeam, ServicesDep, idempotency_key_header
from service.errors import InvalidSpec
from service.http.problems import problem_doc
from service.studies.submit import submit_study
from service.studies.templates import list_templates
from store import studies, study_compare
from store.studies import StudyRow

router = APIRouter(prefix="/v1/studies", tags=["studies"], responses=problem_doc(401, 422, 503))
FIXED_COLUMNS = ("variant", "steps_to_target", "reached_target", *COMPARE_METRICS)

IdempotencyKey = Annotated[
    str | None,
    idempotency_key_header(
        "Repeating a create with the same key and the same body returns the study made the "
        "first time (status 200) and creates no jobs; the same key with a different body is "
        "refused with 409."
    ),
]


def team_study(
    study_id: Annotated[str, Path(description="The study's id, as returned when it was made.")],
    team: CurrentTeam,
    services: ServicesDep,
) -> StudyRow:
    """The caller's study; another team's is 404 like an unknown id."""
    with services.db.read() as session:
        return studies.study_row(session, team_id=team.id, study_id=study_id)


StudyDep = Annotated[StudyRow, Depends(team_study)]


@router.post(
    "", status_code=201, summary="Create a study",
    responses={200: {"model": Study, "description": "A replay: the study this Idempotency-Key "
                     "made"}, **problem_doc(409, 429)},
)
def create_study(body: StudyCreate, team: CurrentTeam, services: ServicesDep,
                 response: Response, idempotency_key: IdempotencyKey = None) -> Study:
    """Make one job per variant of `base` (each combination of the `grid`'s dotted-path
    values, or `search.n` random draws from `search.space`) and per seed, or run a built-in
    `template` (see `GET /v1/studies/templates`) with `overrides` of its base.

    Every variant is checked before anything is stored: an invalid value is 422 naming it
    (`grid.model.init.scheme[1]`), and nothing is created. All jobs are created together.

    Answers 201 with the new study, or 200 with the existing one when the Idempotency-Key was
    used before with the same body; a team with too many queued study jobs gets 429."""
    created = submit_study(services, team=team, body=body, idempotency_key=idempotency_key)
    if not created.created:
        response.status_code = 200
    response.headers["Location"] = f"/v1/studies/{created.study.id}"
    return created.study


@router.get("", summary="List studies")
def list_studies(
    team: CurrentTeam, services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=200, description="Studies per page.")] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> StudyPage:
    """Your team's studies, newest first, with their jobs counted by status."""
    with services.db.read() as session:
        return studies.list_studies(session, team_id=team.id, limit=limit, cursor=cursor)


@router.get("/templates", summary="Built-in study templates")
def templates(team: CurrentTeam) -> list[StudyTemplate]:
    """Studies that reproduce classic comparisons (initialization x activation, optimizers on
    sparse data, batch norm x learning rate, augmentation); create one with
    `POST /v1/studies {"template": name}`."""
    return list_templates()


@router.get("/{study_id}", summary="Get a study", responses=problem_doc(404))
def get_study(study: StudyDep, team: CurrentTeam, services: ServicesDep) -> Study:
    """The study, its varied paths and its jobs counted by status."""
    with services.db.read() as session:
        return studies.get_study(session, team_id=team.id, study_id=study.id)


@router.post("/{study_id}/cancel", status_code=202, summary="Cancel a study",
             responses=problem_doc(404))
def cancel_study(study: StudyDep, team: CurrentTeam, services: ServicesDep) -> Study:
    """Cancel the study's queued jobs at once and ask its running jobs to stop. Safe to repeat."""
    with services.db.transaction() as session:
        return studies.cancel_study(session, team_id=team.id, study_id=study.id)


@router.get("/{study_id}/compare", summary="Compare a study's variants",
            responses=problem_doc(404))
def compare_study(
    study: StudyDep, services: ServicesDep,
    target_metric: Annotated[str | None, Query(max_length=200, description="With target_value: "
                             "report the first step each job's series reaches it (a loss from "
                             "above, an accuracy from below).")] = None,
    target_value: Annotated[float | None, Query()] = None,
    sort: Annotated[str | None, Query(description="A column: a varied path, a summary metric "
                                      "(by its mean), steps_to_target or variant.")] = None,
    order: Annotated[study_compare.Order, Query()] = "asc",
) -> StudyComparison:
    """One row per variant, its seeds' final and best losses and accuracies as mean and spread,
    the steps to the target, and the diagnosis codes of its jobs."""
    if sort is not None and sort not in (*study.varied, *FIXED_COLUMNS):
        raise InvalidSpec(f"{sort!r} is not a column: one of {', '.join(study.varied)}, "
                          f"{', '.join(FIXED_COLUMNS)}", field="sort")
    if (target_metric is None) != (target_value is None):
        raise InvalidSpec("give target_metric and target_value together", field="target_value")
    target = (target_metric, target_value) if target_metric and target_value is not None else None
    with services.db.read() as session:
        return study_compare.compare(session, study, target=target, sort=sort, order=order)
