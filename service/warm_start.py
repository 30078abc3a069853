"""Checking a warm start at submit: `model.init: {scheme: from_job, job, which}` must name a
succeeded job of the same team that kept those weights, with the same architecture (its
recorded layers equal the layers this spec plans, name by name: type, weight shape and
parameter count). Anything else is 422 on the field to change, before anything is queued."""

from __future__ import annotations

from gradlab_contract.shapes import UploadInfo, data_shape, plan_layers
from gradlab_contract.spec import JobSpec

from service.deps import Services
from service.errors import InvalidSpec
from store import job_artifacts, jobs, snapshots
from store.errors import NotFound
from store.teams import Team

FIELD = "model.init.job"


def check_warm_start(
    services: Services, *, team: Team, spec: JobSpec, upload: UploadInfo | None
) -> None:
    init = spec.model.init
    if init.scheme != "from_job" or init.job is None:
        return
    with services.db.read() as session:
        try:
            source = jobs.get_job(session, team_id=team.id, job_id=init.job)
        except NotFound:
            raise InvalidSpec(f"job {init.job} is not one of your team's jobs",
                              field=FIELD) from None
        if source.status != "succeeded":
            raise InvalidSpec(f"job {init.job} is {source.status}: warm starts take the "
                              "weights of a succeeded job", field=FIELD)
        names = {a.name for a in job_artifacts.list_artifacts(session, job_id=source.id)}
        recorded = snapshots.list_layers(session, job_id=source.id)
    if f"weights-{init.which}.safetensors" not in names:
        raise InvalidSpec(f"job {init.job} kept no {init.which} weights (its training.keep "
                          f"was {source.spec.training.keep!r})", field="model.init.which")
    planned = [(p.name, p.type, list(p.weight_shape), p.parameters)
               for p in plan_layers(spec.model, data_shape(spec.data, upload))]
    found = [(r.name, r.type, list(r.shape), r.parameters) for r in recorded]
    if planned != found:
        raise InvalidSpec(
            f"the architecture differs from job {init.job}'s: {_difference(planned, found)}; "
            "a warm start needs the same model and input and output sizes", field=FIELD)


LayerKey = tuple[str, str, list[int], int]  # name, type, weight shape, parameters


def _difference(planned: list[LayerKey], found: list[LayerKey]) -> str:
    for mine, theirs in zip(planned, found, strict=False):
        if mine != theirs:
            return (f"layer {mine[0]} is {mine[1]} {mine[2]} here, {theirs[0]} is "
                    f"{theirs[1]} {theirs[2]} there")
    return f"{len(planned)} layers here, {len(found)} there"
