"""Stores the worker's log lines about a job (store/joblogs.py), beside its ordinary logs.

A logging handler keeps the records logged while a job is bound (store.logs.bind_job) and a
thread of its own writes them in small batches: never inside the caller's transaction (on
SQLite a second write transaction of the same thread would wait for itself), and a failing write
is dropped, not logged (that would loop). Tracebacks keep file names and lines, not host paths.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import threading
import traceback
from typing import Any

from celery.signals import setup_logging

from store import joblogs
from store.db import Database
from store.logs import current_job

_PATH = re.compile(r'File "(?:[^"]*[/\\])?([^"/\\]+)"')
_HOST_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?(?:/[\w.@+-]+){2,}/?")
BATCH = 100


def strip_paths(text: str) -> str:
    """Traceback frames name their file only; other absolute paths become <path>."""
    return _HOST_PATH.sub("<path>", _PATH.sub(r'File "\1"', text))


class JobLogHandler(logging.Handler):
    def __init__(self, database: Database, *, cap: int, level: int = logging.INFO) -> None:
        super().__init__(level)
        self._database, self._cap = database, cap
        self._queue: queue.Queue[joblogs.LogLine] = queue.Queue(maxsize=10_000)
        self._pid: int | None = None  # the writer thread is per process (pool children fork)

    def emit(self, record: logging.LogRecord) -> None:
        job = current_job()
        if job is None or record.name.startswith(("sqlalchemy", "celery.worker.strategy")):
            return
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        line = joblogs.LogLine(job.job_id, job.attempt, record.levelname, strip_paths(message))
        self._ensure_writer()
        with contextlib.suppress(queue.Full):  # the cap would drop it anyway
            self._queue.put_nowait(line)

    def flush(self) -> None:
        """Wait (briefly) until the lines queued so far are written."""
        if self._pid == os.getpid():
            done = threading.Event()

            def join() -> None:
                self._queue.join()
                done.set()

            threading.Thread(target=join, daemon=True).start()
            done.wait(5)

    def _ensure_writer(self) -> None:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            threading.Thread(target=self._write_forever, name="job-log", daemon=True).start()

    def _write_forever(self) -> None:
        while True:
            lines = [self._queue.get()]
            while len(lines) < BATCH:
                try:
                    lines.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                with self._database.transaction() as session:
                    joblogs.append_lines(session, lines=lines, cap=self._cap)
            except Exception:
                pass
            finally:
                for _ in lines:
                    self._queue.task_done()


def install(database: Database, *, cap: int) -> JobLogHandler:
    """Add the handler to the root logger, now and after Celery's logging setup (which
    replaces the root's handlers: worker/observability.py)."""
    handler = JobLogHandler(database, cap=cap)
    logging.getLogger().addHandler(handler)

    @setup_logging.connect(weak=False)
    def _again(**_: Any) -> None:
        root = logging.getLogger()
        if handler not in root.handlers:
            root.addHandler(handler)

    return handler
