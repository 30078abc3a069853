"""Log lines for people (`text`) or for log shippers (`json`), naming the job a line is about.

The API and the worker both call configure_logging(settings). The worker binds a job's id and
attempt while it trains it (bind_job), and every line logged meanwhile carries them, in either
format, so `docker compose logs worker | jq 'select(.job_id == "...")'` follows one job.

Lives in store because it is the one package both the API and the worker import; it needs only
the standard library.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"


@dataclass(frozen=True)
class JobFields:
    job_id: str
    attempt: int | None = None  # None until the job is claimed


_job: ContextVar[JobFields | None] = ContextVar("gradlab_job", default=None)
# A pool process trains one job at a time, and the job's own threads (the lease heartbeat, the
# time limit) start with an empty context: the process-wide copy names the job on their lines.
_process_job: JobFields | None = None


def bind_job(job_id: str, attempt: int | None = None) -> None:
    """Name this job (and attempt) on every line logged until clear_job()."""
    global _process_job
    fields = JobFields(job_id, attempt)
    _job.set(fields)
    _process_job = fields


def clear_job() -> None:
    global _process_job
    _job.set(None)
    _process_job = None


def current_job() -> JobFields | None:
    return _job.get() or _process_job


class JobContextFilter(logging.Filter):
    """Adds `job_id` and `attempt` (None outside a job) to every record a handler sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = current_job()
        record.job_id = job.job_id if job else None
        record.attempt = job.attempt if job else None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, process, message, and
    job_id/attempt when a job is bound; an exception's traceback as `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "message": record.getMessage(),
        }
        job_id = getattr(record, "job_id", None)
        if job_id is not None:
            payload["job_id"] = job_id
            payload["attempt"] = getattr(record, "attempt", None)
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return json.dumps(payload, default=str)


class TextFormatter(logging.Formatter):
    """TEXT_FORMAT, with `[job <id> attempt <n>]` appended to a job's lines."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        job_id = getattr(record, "job_id", None)
        if job_id is None:
            return line
        return f"{line} [job {job_id} attempt {getattr(record, 'attempt', None)}]"


def make_handler(log_format: LogFormat) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(JobContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    return handler


def configure_logging(level: str, log_format: LogFormat) -> None:
    """Send every logger's lines to stderr in `log_format`, replacing the root's handlers."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(make_handler(log_format))
    root.setLevel(level)
    # Python's warnings (Celery's, for one) are then lines of this format too, not raw stderr.
    logging.captureWarnings(True)
