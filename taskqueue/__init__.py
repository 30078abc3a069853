"""The one Celery configuration shared by the API (which publishes) and the worker (which consumes).

The broker carries job ids only, as JSON; the database holds the truth about a job. Tasks are
acknowledged early on purpose: on Redis a late-acknowledged task that outlives the visibility
timeout is delivered again while it still runs (celery issues 5935, 2599, 7651); a job lost with
its worker is found by the reaper through its expired lease instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import Celery

RUN_JOB_TASK = "gradlab.run_job"


def make_celery(
    broker_url: str, *, queue: str, transport_options: dict[str, Any] | None = None
) -> Celery:
    _make_folders(transport_options or {})
    app = Celery("gradlab", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],  # a pickled message is refused, never loaded
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        task_default_queue=queue,
        task_routes={RUN_JOB_TASK: {"queue": queue}},
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport_options or {},
        worker_hijack_root_logger=False,
    )
    return app


def _make_folders(transport_options: dict[str, Any]) -> None:
    """The filesystem transport fails on a folder that does not exist yet."""
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if key in transport_options:
            Path(transport_options[key]).mkdir(parents=True, exist_ok=True)


def publish_job(app: Celery, job_id: str, *, queue: str | None = None) -> None:
    """Send a job id to the workers by task name (the API never imports the worker's code).
    `queue`: another queue than the default (study jobs go to settings.study_queue)."""
    if queue is None:
        app.send_task(RUN_JOB_TASK, args=[job_id])
    else:
        app.send_task(RUN_JOB_TASK, args=[job_id], queue=queue)
