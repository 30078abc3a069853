"""Run one job: claim it, train it with a reporter, record how it ended. Thin glue on purpose:
the training core trains, the store keeps the truth, the reporter connects them."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from gradlab_contract.models import JobStatus
from gradlab_contract.retry import retrying

from store import datasets, leases, series
from store.db import Database
from store.errors import NotFound, QuotaExceeded, StaleAttempt, Unavailable
from store.leases import JobState
from taskqueue import publish_or_reconcile
from training import train
from training.runtime import resolve_device
from training.types import RunResult
from worker import shutdown
from worker.checkpoints import CheckpointFiles
from worker.context import WorkerContext
from worker.diagnose import LiveDiagnosis
from worker.keep import ModelKeeper
from worker.observability import job_started, observe_progress
from worker.reporter import STORE_BACKOFF, AttemptFenced, Reporter, TransientStoreError
from worker.sink import StoreSink
from worker.stopping import StopOnFindings
from worker.uploads import local_upload
from worker.warm_start import initial_weights

log = logging.getLogger(__name__)
T = TypeVar("T")


class Outcome(StrEnum):
    """What run_job did with a job when it did not end it (then it answers the job's status)."""

    RELEASED = "released"  # handed back to the queue mid-run: this worker is shutting down
    DEFERRED = "deferred"  # not claimed: this process is stopping; sent to the broker again
    OVER_QUOTA = "over_quota"  # not claimed: the team already runs as many jobs as it may
    SKIPPED = "skipped"  # no longer queued: nothing to do
    UNFINISHED = "unfinished"  # the database stayed unavailable: left to the reaper
    FENCED = "fenced"  # another attempt owns the job now


@dataclass(frozen=True)
class Ending:
    status: JobStatus | Outcome  # a terminal job status, or RELEASED
    summary: dict[str, float | None] | None = None
    error: str | None = None
    steps: int | None = None
    stop_reason: str | None = None  # ended before its last step: early stopping or stop_on
    stopped_early: bool = False
    best_step: int | None = None


def device_name(requested: str) -> str:
    """The device a job will use, as the training core resolves it. A device this machine lacks
    is recorded as asked: training then fails the job, saying why."""
    try:
        return str(resolve_device(requested))
    except RuntimeError:
        return requested


def release_device_memory() -> None:
    """Return what a finished job cached on the GPU, so the next job starts from the baseline."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()
        torch.cuda.ipc_collect()


def run_job(ctx: WorkerContext, job_id: str) -> JobStatus | Outcome:
    """Train the job if it is still queued; return what happened (for logs and tests)."""
    try:
        return _claim_and_run(ctx, job_id)
    finally:
        release_device_memory()


def _claim_and_run(ctx: WorkerContext, job_id: str) -> JobStatus | Outcome:
    db = ctx.database
    with db.read() as session:
        state = leases.load_job_state(session, job_id=job_id)
    if shutdown.requested():
        # This process is stopping, and the message is already acknowledged: send it again
        # for another worker rather than leave the job to the reconciler's longer wait.
        publish_or_reconcile(ctx.celery, ctx.settings, state.id, study_id=state.study_id)
        log.info("job %s handed back to the broker: %s", job_id, shutdown.reason())
        return Outcome.DEFERRED
    device = device_name(state.spec.training.device)
    try:
        with db.transaction() as session:
            attempt = leases.claim_job(
                session,
                job_id=job_id,
                worker=ctx.process_name,
                device=device,
                lease_seconds=ctx.settings.lease_seconds,
                max_running=ctx.settings.max_running_jobs_per_team,
            )
    except QuotaExceeded:
        # The job stays queued; the task sends it again after a pause (worker/tasks.py), so
        # the reconciler need not: its clock restarts now.
        with db.transaction() as session:
            leases.mark_enqueued(session, job_ids=[job_id])
        log.info("job %s waits: its team runs as many jobs as it may", job_id)
        return Outcome.OVER_QUOTA
    if attempt is None:
        log.info("job %s is no longer queued; nothing to do", job_id)
        return Outcome.SKIPPED
    log.info("job %s attempt %d trains on device %s", job_id, attempt, device)
    with db.read() as session:  # as of the claim: the checkpoint a lost attempt recorded last
        state = leases.load_job_state(session, job_id=job_id)
    return _run_attempt(ctx, state, attempt)


def _run_attempt(ctx: WorkerContext, state: JobState, attempt: int) -> JobStatus | Outcome:
    job_started(state.id, attempt)  # logs name the attempt; metrics count it running
    files = CheckpointFiles(ctx.settings.checkpoints_dir, state.id, ctx.artifacts)
    recorded = state.checkpoint_step
    resume_step = recorded if recorded is not None and files.restore(attempt, recorded) else None
    log.info("job %s attempt %d claimed; %s; data set %s", state.id, attempt,
             f"resuming after step {resume_step}" if resume_step is not None else "from step 0",
             state.spec.data.dataset)
    with ctx.database.transaction() as session:
        # Rows past the checkpoint (or all rows, when starting over) are trained again.
        series.truncate_after(
            session,
            job_id=state.id,
            attempt=attempt,
            step=resume_step if resume_step is not None else -1,
        )
    # The live diagnosis watches what the reporter sees (worker/diagnose.py).
    live = LiveDiagnosis.for_job(ctx.database, state, attempt, resume=resume_step is not None)
    watch = StopOnFindings(state.spec.training.stop_on, live.builder,
                           total_steps=state.total_steps)
    reporter = Reporter(
        CheckpointSink(
            files, ctx.database, job_id=state.id, attempt=attempt,
            lease_seconds=ctx.settings.lease_seconds,
        ),
        heartbeat_seconds=ctx.settings.heartbeat_seconds,
        observers=[live, watch] if state.spec.training.stop_on else [live],
        retry_seconds=max(30.0, ctx.settings.lease_seconds),
    )
    watch.stop = reporter.request_stop
    timed_out = threading.Event()
    timer = _time_limit(_time_left(ctx.settings.job_time_limit_seconds, state), reporter,
                        timed_out)
    keeper = ModelKeeper(ctx.database, ctx.artifacts, state, attempt)  # worker/keep.py
    reporter.start()
    with shutdown.stoppable(reporter.request_stop):  # SIGURG or a dead parent stops the loop
        ending = _train(
            ctx, state, reporter, files.working(attempt), resume_step is not None, timed_out,
            keeper,
        )
    ending = stopped_on(ending, watch.reason)
    timer.cancel()
    try:
        reporter.close()
    except AttemptFenced:
        reporter.fenced = True
    except TransientStoreError:
        # Rows past the last checkpoint are not stored, so the job cannot end now: its lease
        # runs out and the reaper retries it from that checkpoint.
        log.error("job %s attempt %d: the database stayed unavailable; leaving the job to the "
                  "reaper", state.id, attempt)
        return Outcome.UNFINISHED
    finally:
        files.remove_working(attempt)  # a retry resumes from the published checkpoint
    if reporter.fenced:
        log.warning("job %s attempt %d was fenced out; another attempt owns it", state.id, attempt)
        return Outcome.FENCED
    if ending.status == Outcome.RELEASED:
        return _release(ctx, state, attempt, ending, files)
    if ending.status == Outcome.UNFINISHED:
        log.error("job %s attempt %d: the database stayed unavailable during setup; leaving the "
                  "job to the reaper", state.id, attempt)
        return Outcome.UNFINISHED
    with suppress(Unavailable):  # after an outage, wait for the store before the last writes
        _retrying(ctx.settings.lease_seconds, ctx.database.ping)
    status = JobStatus(ending.status)
    findings = live.finish(status)  # the final diagnosis, while the job is still ours (fenced)
    if status == JobStatus.SUCCEEDED:
        keeper.keep(ending.summary, findings)  # weights, exports, model card: before "succeeded"
    if _finish(ctx, state.id, attempt, ending):
        files.remove_all()  # kept otherwise: the retry resumes from them
    return status


class CheckpointSink(StoreSink):
    """The store sink that also publishes each checkpoint file under its step, once its rows
    are stored and before the step is recorded (worker/checkpoints.py says why)."""

    def __init__(
        self, files: CheckpointFiles, database: Database, *, job_id: str, attempt: int,
        lease_seconds: float,
    ) -> None:
        super().__init__(database, job_id=job_id, attempt=attempt, lease_seconds=lease_seconds)
        self._files = files

    def record_checkpoint(self, step: int) -> None:
        self._files.publish(self._attempt, step)
        super().record_checkpoint(step)
        self._files.prune(keep_step=step)


def _time_left(limit: float, state: JobState) -> float:
    """Seconds left of the job's time limit, which counts from its first start over all its
    attempts: a retry or a hand-back does not start the clock again."""
    if state.started_at is None:
        return limit
    return limit - (datetime.now(UTC) - state.started_at).total_seconds()


def _time_limit(seconds: float, reporter: Reporter, flag: threading.Event) -> threading.Timer:
    """Stop the job after `seconds` (at once when none are left) and flag it as timed out."""

    def expire() -> None:
        flag.set()
        reporter.request_stop()

    timer = threading.Timer(max(0.0, seconds), expire)
    timer.daemon = True
    timer.start()
    return timer


def _train(
    ctx: WorkerContext,
    state: JobState,
    reporter: Reporter,
    checkpoint: Path,
    resume: bool,
    timed_out: threading.Event,
    keeper: ModelKeeper,
) -> Ending:
    try:
        # Retried through an outage like the other reads and writes of the job.
        upload_path = _retrying(ctx.settings.lease_seconds, lambda: _upload_path(ctx, state))
        result = train(
            state.spec,
            keeper.attach(observe_progress(reporter.callbacks())),  # steps/s for /metrics
            data_root=ctx.settings.data_root,
            upload_path=upload_path,
            checkpoint_path=checkpoint,
            checkpoint_every=ctx.settings.checkpoint_every_steps,
            resume=resume,
            initial_weights=initial_weights(ctx.database, ctx.artifacts, state),  # warm start
        )
    except Unavailable:
        # The database stayed down for a lease: the job is left to the reaper, like rows that
        # could not be stored, rather than failed.
        return Ending(Outcome.UNFINISHED)
    except Exception as error:  # the job fails; the worker goes on serving
        log.exception("job %s failed", state.id)
        return Ending(JobStatus.FAILED, error=_reason(error))
    return _ending(result, reporter, timed_out)


def stopped_on(ending: Ending, reason: str | None) -> Ending:
    """A run stopped by a stop_on finding fails with it as the reason (a cancel or a shutdown
    that came first keeps its own ending)."""
    if reason is None or ending.status != JobStatus.FAILED or ending.error != "stopped":
        return ending
    return Ending(JobStatus.FAILED, ending.summary, reason, ending.steps, stop_reason=reason)


def _ending(result: RunResult, reporter: Reporter, timed_out: threading.Event) -> Ending:
    summary: dict[str, float | None] = dict(result.summary)
    if result.stopped_early:  # succeeded: the reason is why it stopped, not an error
        return Ending(JobStatus.SUCCEEDED, summary, None, result.steps_done,
                      stop_reason=result.reason, stopped_early=True, best_step=result.best_step)
    if result.status != "stopped":
        return Ending(JobStatus(result.status), summary, result.reason, result.steps_done,
                      best_step=result.best_step)
    if reporter.cancel_requested:
        return Ending(JobStatus.CANCELLED, summary, "cancelled by request", result.steps_done)
    if timed_out.is_set():
        return Ending(
            JobStatus.FAILED, summary, "timeout: the job ran past its time limit",
            result.steps_done,
        )
    if shutdown.requested():
        return Ending(Outcome.RELEASED, summary, shutdown.reason(), result.steps_done)
    return Ending(JobStatus.FAILED, summary, "stopped", result.steps_done)


_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?(?:/[\w.@+-]+){2,}/?")


def _reason(error: Exception) -> str:
    """A one-line reason for the user: the exception's message, never a traceback or a path."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    # Paths on the worker's disk (a missing upload, the data folder) are not the caller's business.
    return f"{type(error).__name__}: {_PATH.sub('<path>', text)}"[:500]


def _upload_path(ctx: WorkerContext, state: JobState) -> Path | None:
    upload_id = state.spec.data.upload_id
    if upload_id is None:
        return None
    with ctx.database.read() as session:
        upload = datasets.get_dataset_file(session, team_id=state.team_id, dataset_id=upload_id)
    return local_upload(ctx.artifacts, upload, ctx.settings.home / "cache" / "uploads")


def _finish(ctx: WorkerContext, job_id: str, attempt: int, ending: Ending) -> bool:
    """Record the ending (fenced), trying through an outage for up to a lease; False when it
    could not be recorded."""

    def finish() -> None:
        with ctx.database.transaction() as session:
            leases.finish_job(
                session,
                job_id=job_id,
                attempt=attempt,
                status=JobStatus(ending.status),
                summary=ending.summary,
                error=ending.error,
                progress_step=ending.steps,
                stop_reason=ending.stop_reason,
                stopped_early=ending.stopped_early,
                best_step=ending.best_step,
            )

    try:
        _retrying(ctx.settings.lease_seconds, finish)
    except (StaleAttempt, NotFound):
        if _ended_as(ctx, job_id, attempt, ending.status):
            return True  # an earlier try committed, but its answer was lost with the connection
        log.warning("job %s attempt %d was fenced out before it finished", job_id, attempt)
        return False
    except Unavailable:
        # The lease runs out and the reaper retries from the last checkpoint.
        log.error("could not record the end of job %s: database unavailable", job_id)
        return False
    return True


def _release(
    ctx: WorkerContext, state: JobState, attempt: int, ending: Ending, files: CheckpointFiles
) -> JobStatus | Outcome:
    """Give the job back to the queue (fenced) and to the broker: another worker resumes it
    from its checkpoint at once, instead of after the lease runs out."""
    job_id = state.id

    def release() -> str:
        with ctx.database.transaction() as session:
            return leases.release_job(
                session, job_id=job_id, attempt=attempt, progress_step=ending.steps
            )

    try:
        status = _retrying(ctx.settings.lease_seconds, release)
    except (StaleAttempt, NotFound):
        log.warning("job %s attempt %d was fenced out before it was released", job_id, attempt)
        return Outcome.FENCED
    except Unavailable:
        log.error("could not release job %s: database unavailable; the reaper will", job_id)
        return Outcome.UNFINISHED
    if status != JobStatus.QUEUED:  # cancelled meanwhile
        files.remove_all()
        return JobStatus(status)
    log.warning("job %s attempt %d released after step %s (%s)", job_id, attempt, ending.steps,
                ending.error)
    publish_or_reconcile(ctx.celery, ctx.settings, state.id, study_id=state.study_id)
    return Outcome.RELEASED



def _retrying(seconds: float, action: Callable[[], T]) -> T:
    """`action()`, tried again every half second while the database is unavailable, for up to
    `seconds`; then Unavailable is raised."""

    def warn_once(retry: int, error: BaseException) -> None:
        if retry == 0:
            log.warning("%s; retrying for up to %.0f s", error, seconds)

    for attempt in retrying(when=lambda error: isinstance(error, Unavailable),
                            wait=lambda retry, error: STORE_BACKOFF.delay(retry),
                            seconds=seconds, on_retry=warn_once):
        with attempt:
            return action()
    raise AssertionError("unreachable: the last try returns or raises")


def _ended_as(ctx: WorkerContext, job_id: str, attempt: int, status: str) -> bool:
    try:
        with ctx.database.read() as session:
            state = leases.load_job_state(session, job_id=job_id)
    except (Unavailable, NotFound):
        return False
    return state.attempt == attempt and state.status == status
