"""The Celery task: a job id in, the runner does the rest."""

from __future__ import annotations

from celery import Celery

from taskqueue import RUN_JOB_TASK
from worker.context import current_context
from worker.runner import run_job


def register_tasks(app: Celery) -> None:
    @app.task(name=RUN_JOB_TASK, ignore_result=True)
    def run_job_task(job_id: str) -> str:
        return run_job(current_context(), job_id)
