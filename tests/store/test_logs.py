"""store.logs: JSON lines a log shipper parses, text lines for people, and the job a line is
about on both, from any thread of the process that trains it."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator

import pytest

from store.logs import JobContextFilter, JsonFormatter, TextFormatter, bind_job, clear_job


@pytest.fixture(autouse=True)
def _no_job() -> Iterator[None]:
    clear_job()
    yield
    clear_job()


def record(message: str = "hello %s", *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    made = logging.LogRecord("gradlab.test", logging.INFO, __file__, 1, message, args or ("x",),
                             exc_info)
    JobContextFilter().filter(made)
    return made


def test_a_json_line_without_a_job() -> None:
    line = json.loads(JsonFormatter().format(record()))
    assert line["message"] == "hello x"
    assert (line["level"], line["logger"]) == ("INFO", "gradlab.test")
    assert line["time"].endswith("+00:00")
    assert "job_id" not in line and "attempt" not in line


def test_a_json_line_names_the_bound_job_and_attempt() -> None:
    bind_job("job-1")
    assert json.loads(JsonFormatter().format(record()))["attempt"] is None  # not claimed yet
    bind_job("job-1", 2)
    line = json.loads(JsonFormatter().format(record()))
    assert (line["job_id"], line["attempt"]) == ("job-1", 2)
    clear_job()
    assert "job_id" not in json.loads(JsonFormatter().format(record()))


def test_an_exception_stays_inside_its_json_line() -> None:
    text = JsonFormatter().format(record(exc=True))
    assert "\n" not in text
    assert "ValueError: boom" in json.loads(text)["exception"]


def test_the_jobs_own_threads_name_it_too() -> None:
    bind_job("job-2", 1)
    seen: list[logging.LogRecord] = []
    thread = threading.Thread(target=lambda: seen.append(record()))  # a fresh context
    thread.start()
    thread.join()
    assert (seen[0].job_id, seen[0].attempt) == ("job-2", 1)  # type: ignore[attr-defined]


def test_a_text_line_ends_with_the_job() -> None:
    bind_job("job-3", 1)
    line = TextFormatter().format(record())
    assert line.endswith("gradlab.test: hello x [job job-3 attempt 1]")
