"""What a job recorded: metric series, its layers, and per-layer distribution snapshots."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Query
from fastapi import Path as FastApiPath
from fastapi.responses import StreamingResponse
from gradlab_contract.models import Layer, MetricsResponse, SnapshotKind, SnapshotPage

from service.deps import JobDep, Services, ServicesDep
from service.http.problems import problem_doc
from store import series, snapshots
from store.errors import InvalidInput

router = APIRouter(prefix="/v1/jobs/{job_id}", tags=["telemetry"],
                   responses=problem_doc(401, 404, 422, 503))

# Steps are INTEGER columns (32-bit on PostgreSQL); a larger number could only fail there.
MAX_STEP = 2**31 - 1
Step = Annotated[int | None, Query(ge=0, le=MAX_STEP)]
NDJSON = "application/x-ndjson"


@router.get("/metrics", summary="Metric series of a job")
def get_metrics(
    job: JobDep,
    services: ServicesDep,
    names: Annotated[list[str] | None, Query(
        description="Series to return, comma-separated or repeated (`names=loss&names=val_acc`)."
        " Default: every series of the job.")] = None,
    start_step: Step = None,
    end_step: Step = None,
    max_points: Annotated[int | None, Query(
        ge=2, le=100_000, description="Most points per series (default 1000).")] = None,
) -> MetricsResponse:
    """Per-step series (loss, accuracy, learning rate, ...) in step order. A series longer than
    `max_points` is downsampled on the server (MinMaxLTTB) keeping its shape, both ends, its
    lowest and highest point and its first non-finite one, so a spike stays visible at any zoom.
    Non-finite values (a diverged loss) are null. Every point of a series:
    `/metrics/{name}/points`."""
    with services.db.read() as session:
        found = series.query_series(
            session, job_id=job.id, names=_split_names(names), start_step=start_step,
            end_step=end_step,
            max_points=max_points or services.settings.metrics_max_points_default,
        )
    return MetricsResponse(series=found)


@router.get(
    "/metrics/{name}/points", summary="Every point of one metric series, streamed",
    response_class=StreamingResponse,
    responses={200: {"content": {NDJSON: {}},
                     "description": "One JSON object per line: `{\"steps\": [...], "
                                    "\"values\": [...]}`, in step order."}},
)
def stream_points(
    job: JobDep,
    services: ServicesDep,
    name: Annotated[str, FastApiPath(max_length=200, description="The series' name.")],
    start_step: Step = None,
    end_step: Step = None,
) -> StreamingResponse:
    """The whole series, not downsampled, as newline-delimited JSON: each line holds up to 1024
    consecutive stored points (`steps` and `values`, null where a value was not finite). Lines
    arrive while the server reads, so a million points start flowing at once and the server
    holds one block of them at a time. A name the job has not recorded (yet) streams nothing,
    as `/metrics` returns it empty."""
    if end_step is not None and start_step is not None and end_step < start_step:
        raise InvalidInput("end_step", "must not be below start_step")
    return StreamingResponse(
        _ndjson_lines(services, job.id, name, start_step, end_step), media_type=NDJSON
    )


def _ndjson_lines(
    services: Services, job_id: str, name: str, start_step: int | None, end_step: int | None
) -> Iterator[bytes]:
    with services.db.read() as session:
        for block in series.stream_blocks(
            session, job_id=job_id, name=name, start_step=start_step, end_step=end_step
        ):
            yield orjson.dumps({"steps": block.steps, "values": block.values},
                               option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE)


@router.get("/layers", summary="Layers of a job's model")
def get_layers(job: JobDep, services: ServicesDep) -> list[Layer]:
    """The model's parameterized layers from input to output, as the worker built them: name,
    type, weight shape, parameter count and depth. Empty until the job has started."""
    with services.db.read() as session:
        return snapshots.list_layers(session, job_id=job.id)


@router.get("/snapshots", summary="Distribution snapshots of a job")
def get_snapshots(
    job: JobDep,
    services: ServicesDep,
    kind: Annotated[SnapshotKind | None, Query(description="gradient, weight or activation.")]
    = None,
    layer: Annotated[str | None, Query(max_length=100, description="One layer's name.")] = None,
    step: Annotated[int | None, Query(ge=0, le=MAX_STEP, description="Exactly this step.")]
    = None,
    start_step: Step = None,
    end_step: Step = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Snapshots per page.")] = 100,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> SnapshotPage:
    """Per-layer statistics (mean, std, min, max, norm, zero fraction, NaN and Inf counts,
    percentiles) with a histogram, and for gradients a histogram of log10|g|. Ordered by step,
    then kind, then from the input layer to the output; filters combine."""
    with services.db.read() as session:
        return snapshots.query_snapshots(
            session, job_id=job.id, kind=kind, layer=layer, step=step, start_step=start_step,
            end_step=end_step, limit=limit, cursor=cursor,
        )


def _split_names(names: list[str] | None) -> list[str] | None:
    if not names:
        return None
    return [name.strip() for raw in names for name in raw.split(",") if name.strip()]
