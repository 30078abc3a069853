"""The Celery task: a job id in, the runner does the rest."""

from __future__ import annotations

from celery import Celery, Task

from taskqueue import RUN_JOB_TASK
from worker.context import current_context
from worker.healing import after_job
from worker.runner import Outcome, run_job


def register_tasks(app: Celery) -> None:
    # max_retries=None: a job over its team's running quota waits as long as the team's other
    # jobs run; each retry is one message, re-sent to the queue it came from.
    @app.task(name=RUN_JOB_TASK, ignore_result=True, bind=True, max_retries=None)
    def run_job_task(self: Task, job_id: str) -> str:
        context = current_context()
        outcome = run_job(context, job_id)
        if outcome not in (Outcome.OVER_QUOTA, Outcome.DEFERRED):
            after_job(context, job_id)  # a remedy's outcome, a heal's next round
        if outcome == Outcome.OVER_QUOTA:
            # Look again after a reaper interval rather than the reconciler's much longer
            # republish_after_seconds, so a freed slot is taken within seconds.
            raise self.retry(countdown=context.settings.reaper_interval_seconds)
        return outcome
