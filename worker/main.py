"""`gradlab-server worker`: a Celery worker that trains jobs, and the reaper beside it.

One worker process per GPU with concurrency 1 is the default: a job uses the whole device. Jobs
train in the pool's child process, never in the parent, so CUDA is never initialised in the
process the children fork from; after each job the child returns the GPU memory it cached.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutting_down

from store.event_bus import install_publisher
from store.migrate import is_at_head
from store.settings import Settings
from worker import pool_watch
from worker.context import WorkerContext, set_context
from worker.joblog import install as install_job_log
from worker.observability import install as install_observability
from worker.reaper import Reaper
from worker.shutdown import install_in_worker as install_shutdown
from worker.tasks import register_tasks
from worker.webhooks import WebhookDispatcher

log = logging.getLogger(__name__)


def make_worker_app(context: WorkerContext) -> Celery:
    app = context.celery
    settings = context.settings
    app.conf.update(
        # None: the pool keeps its process; runner.release_device_memory frees each job's memory.
        # Replacing the process after every job also frees it, but on Redis the next job then
        # waited 2-7 s for delivery (bench/submit_latency.py), against milliseconds without.
        worker_max_tasks_per_child=settings.worker_max_jobs_per_child or None,
        worker_concurrency=settings.worker_concurrency,
        # Redis: take a message only when a pool process is free. Otherwise a busy worker holds
        # one more message unacknowledged, that job waits behind a long one while other workers
        # idle, and a job released by a shutting-down worker is taken back by that very worker
        # (it comes back only when the worker closes its connection).
        worker_disable_prefetch=settings.broker_url.startswith(("redis:", "rediss:")),
    )
    register_tasks(app)
    return app


def run_worker(settings: Settings) -> int:
    context = WorkerContext.from_settings(settings)
    if not is_at_head(context.database.engine):
        log.error("the database schema is not at head: run `gradlab-server migrate` first")
        return 2
    set_context(context)
    app = make_worker_app(context)
    reaper = Reaper(context.database, context.celery, settings)

    dispatcher = WebhookDispatcher(context.database, settings)

    @worker_ready.connect(weak=False)
    def _start_reaper(**_: Any) -> None:
        reaper.start()
        dispatcher.start()  # webhooks are sent by the worker, never by an API request

    @worker_shutting_down.connect(weak=False)
    def _stop_reaper(**_: Any) -> None:
        reaper.stop()
        dispatcher.stop()

    install_observability(settings)  # logs, job hooks, metrics server: before the pool forks
    install_job_log(context.database, cap=settings.job_log_max_lines)  # GET /v1/jobs/{id}/logs
    install_publisher(context.database, settings)  # wakes event streams on Redis
    install_shutdown()  # SIGTERM checkpoints and releases running jobs (worker/shutdown.py)
    # A pool process killed mid-job: its job is handed back in about a second, not a lease.
    pool_watch.install(context.database, context.celery, settings)
    app.worker_main(
        [
            "worker",
            f"--loglevel={settings.log_level}",
            # Study jobs wait in their own queue; the consumer takes turns between the two, so
            # a single job waits behind at most about one study job (tests/integration/
            # test_studies_fairness.py).
            f"--queues={settings.task_queue},{settings.study_queue}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )
    return 0
