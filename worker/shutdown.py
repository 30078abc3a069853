"""Stopping a running job early so that another worker continues it from a checkpoint.

Two events stop a pool process's job before it ends, and both end the same way (the runner
checkpoints, then hands the job back to the queue with leases.release_job):

- The worker is shutting down (SIGTERM, `docker stop`). Celery's warm shutdown waits for the
  running task to finish, however long it trains, and the pool process ignores the signal; so the
  main process tells its pool processes with SIGURG (worker_shutting_down), and each asks its
  running job to stop at the next step.
- The pool process lost its parent (the main process was killed). Celery asks the kernel to kill
  pool processes with their parent (PR_SET_PDEATHSIG), so this is a second line, for where that
  fails: a watch thread sees os.getppid() change. The orphan cannot be served by anyone, so it
  stops; its writes stay fenced, so if the reaper already gave the job to another worker, the
  orphan's late writes are refused and it simply exits.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from celery.signals import worker_init, worker_process_init, worker_shutting_down

log = logging.getLogger(__name__)

# SIGURG: billiard leaves it alone, and where no handler is set yet it does nothing (its default
# is to be ignored). Not SIGUSR1 (billiard's soft time limit) nor SIGUSR2: after
# worker_process_init, billiard replaces the handler of each terminating signal in a pool
# process with one that exits, and an idle pool process that exited so made Celery's warm
# shutdown hang. Not SIGWINCH either: a terminal sends it on every resize.
STOP_SIGNAL = signal.SIGURG
PARENT_POLL_SECONDS = 1.0

_requested = threading.Event()
_reason: list[str] = []
_stoppers: set[Callable[[], None]] = set()
_lock = threading.RLock()  # re-entrant: the signal handler may run while this thread holds it


def requested() -> bool:
    """Whether this process was asked to stop its jobs (shutdown or a dead parent)."""
    return _requested.is_set()


def reason() -> str:
    return _reason[0] if _reason else ""


def request(why: str) -> None:
    """Ask every running job of this process to checkpoint and stop."""
    with _lock:
        if not _requested.is_set():
            _reason.append(why)
            _requested.set()
        stoppers = list(_stoppers)
    for stop in stoppers:
        stop()


@contextmanager
def stoppable(stop: Callable[[], None]) -> Iterator[None]:
    """While the block runs, `request` calls `stop` (a running job's Reporter.request_stop)."""
    with _lock:
        _stoppers.add(stop)
        already = _requested.is_set()
    if already:
        stop()
    try:
        yield
    finally:
        with _lock:
            _stoppers.discard(stop)


def reset() -> None:
    """Forget a request (tests, and a fresh pool process that inherited the flag by fork)."""
    with _lock:
        _requested.clear()
        _reason.clear()
        _stoppers.clear()


# -- the pool process ---------------------------------------------------------------------------


def install_in_pool_process() -> None:
    """Take SIGURG as "stop for shutdown" and watch for the death of the parent. Call in the
    pool process's main thread (worker_process_init), where Python runs signal handlers."""
    reset()
    signal.signal(STOP_SIGNAL, _on_stop_signal)
    watch_parent(os.getppid())


def _on_stop_signal(signum: int, _frame: Any) -> None:
    # Runs on the training thread between two bytecodes: setting flags only, no I/O, no locks
    # the training thread might hold (request takes _lock, which no training code holds).
    request("the worker is shutting down")


def watch_parent(parent: int, poll_seconds: float = PARENT_POLL_SECONDS) -> threading.Thread:
    """Start a daemon thread that calls request() once this process's parent is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        log.error("the worker's main process (pid %d) is gone; stopping this process's jobs",
                  parent)
        request("the worker's main process died")

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


# -- the worker's main process ------------------------------------------------------------------


def install_in_worker() -> None:
    """Connect the Celery signals: pool processes take the stop signal, and a shutting-down
    main process sends it to them. Call in the main process before the pool starts."""
    controller: list[Any] = []

    @worker_init.connect(weak=False)
    def _remember(sender: Any = None, **_: Any) -> None:
        controller[:] = [sender]

    @worker_process_init.connect(weak=False)
    def _in_pool_process(**_: Any) -> None:
        install_in_pool_process()

    @worker_shutting_down.connect(weak=False)
    def _tell_pool(**_: Any) -> None:
        for pid in pool_pids(controller[0] if controller else None):
            with suppress(ProcessLookupError):
                os.kill(pid, STOP_SIGNAL)


def pool_pids(worker: Any) -> list[int]:
    """The pids of a Celery WorkController's pool processes (none for an in-process pool)."""
    pool = getattr(worker, "pool", None)
    try:
        pids = pool.info.get("processes", []) if pool is not None else []
    except Exception:  # the pool is not started, or already gone
        return []
    return [int(pid) for pid in pids if pid and int(pid) != os.getpid()]
