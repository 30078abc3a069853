"""Run one job: claim it, train it with a reporter, record how it ended. Thin glue on purpose:
the training core trains, the store keeps the truth, the reporter connects them."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from store import datasets, leases, metrics
from store.errors import NotFound, StaleAttempt, Unavailable
from store.leases import JobState
from training import train
from training.types import RunResult
from worker.context import WorkerContext
from worker.diagnose import LiveDiagnosis
from worker.observability import job_started, observe_progress
from worker.reporter import AttemptFenced, Reporter
from worker.sink import StoreSink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ending:
    status: str  # a terminal job status
    summary: dict[str, float | None] | None = None
    error: str | None = None
    steps: int | None = None


def resolve_device(requested: str) -> str:
    """The device a job will use. Runs in the pool's child, never in the parent, so CUDA is
    initialised only where the job trains."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def release_device_memory() -> None:
    """Return what a finished job cached on the GPU, so the next job starts from the baseline."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()
        torch.cuda.ipc_collect()


def run_job(ctx: WorkerContext, job_id: str) -> str:
    """Train the job if it is still queued; return what happened (for logs and tests)."""
    try:
        return _claim_and_run(ctx, job_id)
    finally:
        release_device_memory()


def _claim_and_run(ctx: WorkerContext, job_id: str) -> str:
    db = ctx.database
    with db.read() as session:
        state = leases.load_job_state(session, job_id=job_id)
    device = resolve_device(state.spec.training.device)
    with db.transaction() as session:
        attempt = leases.claim_job(
            session,
            job_id=job_id,
            worker=ctx.process_name,
            device=device,
            lease_seconds=ctx.settings.lease_seconds,
        )
    if attempt is None:
        log.info("job %s is no longer queued; nothing to do", job_id)
        return "skipped"
    return _run_attempt(ctx, state, attempt)


def _run_attempt(ctx: WorkerContext, state: JobState, attempt: int) -> str:
    job_started(state.id, attempt)  # logs name the attempt; metrics count it running
    checkpoint = ctx.settings.checkpoints_dir / f"{state.id}.pt"
    resume_step = (
        state.checkpoint_step if state.checkpoint_step is not None and checkpoint.exists() else None
    )
    with ctx.database.transaction() as session:
        # Rows past the checkpoint (or all rows, when starting over) are trained again.
        metrics.truncate_after(
            session,
            job_id=state.id,
            attempt=attempt,
            step=resume_step if resume_step is not None else -1,
        )
    # The live diagnosis watches what the reporter sees (worker/diagnose.py).
    live = LiveDiagnosis.for_job(ctx.database, state, attempt, resume=resume_step is not None)
    reporter = Reporter(
        StoreSink(
            ctx.database, job_id=state.id, attempt=attempt, lease_seconds=ctx.settings.lease_seconds
        ),
        heartbeat_seconds=ctx.settings.heartbeat_seconds,
        observers=[live],
    )
    timed_out = threading.Event()
    timer = _time_limit(ctx.settings.job_time_limit_seconds, reporter, timed_out)
    reporter.start()
    ending = _train(ctx, state, reporter, checkpoint, resume_step is not None, timed_out)
    if timer is not None:
        timer.cancel()
    try:
        reporter.close()
    except AttemptFenced:
        reporter.fenced = True
    if reporter.fenced:
        log.warning("job %s attempt %d was fenced out; another attempt owns it", state.id, attempt)
        return "fenced"
    live.finish(ending.status)  # the final diagnosis, while the job is still ours (fenced)
    if _finish(ctx, state.id, attempt, ending):
        checkpoint.unlink(missing_ok=True)  # kept otherwise: the retry resumes from it
    return ending.status


def _time_limit(
    limit: float | None, reporter: Reporter, flag: threading.Event
) -> threading.Timer | None:
    if limit is None:
        return None

    def expire() -> None:
        flag.set()
        reporter.request_stop()

    timer = threading.Timer(limit, expire)
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
) -> Ending:
    try:
        result = train(
            state.spec,
            observe_progress(reporter.callbacks()),  # steps and steps/s for /metrics
            data_root=ctx.settings.data_root,
            upload_path=_upload_path(ctx, state),
            checkpoint_path=checkpoint,
            checkpoint_every=ctx.settings.checkpoint_every_steps,
            resume=resume,
        )
    except Exception as error:  # the job fails; the worker goes on serving
        log.exception("job %s failed", state.id)
        return Ending("failed", error=_reason(error))
    return _ending(result, reporter, timed_out)


def _ending(result: RunResult, reporter: Reporter, timed_out: threading.Event) -> Ending:
    summary: dict[str, float | None] = dict(result.summary)
    if result.status != "stopped":
        return Ending(result.status, summary, result.reason, result.steps_done)
    if reporter.cancel_requested:
        return Ending("cancelled", summary, "cancelled by request", result.steps_done)
    if timed_out.is_set():
        return Ending(
            "failed", summary, "timeout: the job ran past its time limit", result.steps_done
        )
    return Ending("failed", summary, "stopped", result.steps_done)


def _reason(error: Exception) -> str:
    """A one-line reason for the user: the exception's message, never a traceback or a path."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}"[:500]


def _upload_path(ctx: WorkerContext, state: JobState) -> Path | None:
    upload_id = state.spec.data.upload_id
    if upload_id is None:
        return None
    with ctx.database.read() as session:
        return Path(
            datasets.get_dataset_file(session, team_id=state.team_id, dataset_id=upload_id).path
        )


def _finish(ctx: WorkerContext, job_id: str, attempt: int, ending: Ending) -> bool:
    """Record the ending (fenced); False when it could not be recorded."""
    try:
        with ctx.database.transaction() as session:
            leases.finish_job(
                session,
                job_id=job_id,
                attempt=attempt,
                status=ending.status,
                summary=ending.summary,
                error=ending.error,
                progress_step=ending.steps,
            )
    except (StaleAttempt, NotFound):
        log.warning("job %s attempt %d was fenced out before it finished", job_id, attempt)
        return False
    except Unavailable:
        # The lease runs out and the reaper retries from the last checkpoint.
        log.error("could not record the end of job %s: database unavailable", job_id)
        return False
    return True
