"""The one Celery configuration shared by the API (which publishes) and the worker (which consumes).

The broker carries job ids only, as JSON; the database holds the truth about a job. Tasks are
acknowledged early on purpose: on Redis a late-acknowledged task that outlives the visibility
timeout is delivered again while it still runs (celery issues 5935, 2599, 7651); a job lost with
its worker is found by the reaper through its expired lease instead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

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


class QueueNames(Protocol):
    """The two queue names of the deployment (store.settings.Settings has both)."""

    @property
    def task_queue(self) -> str: ...

    @property
    def study_queue(self) -> str: ...


def queue_for(queues: QueueNames, *, study_id: str | None) -> str:
    """The one routing rule: a study's job waits in the study queue, any other job in the main
    queue. Workers take turns between the two, so a large study cannot starve single jobs; a job
    re-sent on the main queue (after a release, a lost lease or a lost message) would skip that."""
    return queues.study_queue if study_id is not None else queues.task_queue


def publish_job(app: Celery, queues: QueueNames, job_id: str, *, study_id: str | None) -> None:
    """Send a job id to the workers by task name (the API never imports the worker's code), on
    the queue queue_for picks. Every publisher (submit, study submit, release, reaper) calls
    this, so a job is routed the same way each time it is sent. (The over-quota retry of
    worker/tasks.py is Celery's: it goes back to the queue its message came from.)"""
    app.send_task(RUN_JOB_TASK, args=[job_id], queue=queue_for(queues, study_id=study_id))


def publish_or_reconcile(
    app: Celery, queues: QueueNames, job_id: str, *, study_id: str | None
) -> bool:
    """publish_job for a job already committed as queued, which is all a caller needs: a publish
    that fails is logged, not raised, because the reconciler (worker/reaper.py) sends again every
    job queued in the database that the broker does not have. True when it was sent."""
    try:
        publish_job(app, queues, job_id, study_id=study_id)
    except Exception:
        logging.getLogger(__name__).warning(
            "could not send job %s to the broker; the reconciler will", job_id, exc_info=True
        )
        return False
    return True
